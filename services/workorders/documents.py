"""The repair order and the invoice on paper, in Chinese or English (shared/pdf.py frames
them). Amounts are printed as settled; a document never computes a total."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.platypus import Flowable, Spacer

from services.workorders.models import RepairOrderDetail
from shared import pdf

STATUS = {
    "draft": ("待确认", "Awaiting approval"),
    "open": ("待派工", "Open"),
    "in_progress": ("维修中", "In progress"),
    "waiting_parts": ("等待配件", "Waiting for parts"),
    "qc": ("质检中", "Quality check"),
    "washing": ("洗车中", "Washing"),
    "ready": ("已完工", "Ready"),
    "settled": ("已结算", "Settled"),
    "delivered": ("已交车", "Delivered"),
    "cancelled": ("已取消", "Cancelled"),
}
PAY_TYPE = {
    "customer": ("客户付费", "Customer"),
    "warranty": ("保修", "Warranty"),
    "internal": ("内部", "Internal"),
}
JOB_STATUS = {
    "pending": ("待派工", "Pending"),
    "assigned": ("已派工", "Assigned"),
    "in_progress": ("进行中", "In progress"),
    "paused": ("暂停", "Paused"),
    "done": ("已完工", "Done"),
    "qc_passed": ("质检通过", "QC passed"),
    "qc_failed": ("质检未通过", "QC failed"),
    "rework": ("返工", "Rework"),
    "cancelled": ("已取消", "Cancelled"),
}
METHOD = {
    "cash": ("现金", "Cash"),
    "card": ("银行卡", "Card"),
    "wechat": ("微信支付", "WeChat Pay"),
    "alipay": ("支付宝", "Alipay"),
    "transfer": ("转账", "Bank transfer"),
}


def _t(lang: str, table: dict[str, tuple[str, str]], key: str) -> str:
    zh, en = table.get(key, (key, key))
    return pdf.pick(lang, zh, en)


def _when(value: datetime | str | None, zone: str) -> str:
    if value is None:
        return ""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _num(value: Any) -> str:
    return f"{Decimal(str(value)).normalize():f}"


def _rate(value: Any, symbol: str) -> str:
    """A unit price as agreed: to the fen, or to the fraction of a fen it was set with (oil
    at 45.3333 a litre), so that quantity x price on the page gives the line's net."""
    amount = Decimal(str(value or 0))
    if amount == amount.quantize(Decimal("0.01")):
        return pdf.money(amount, symbol)
    return f"{symbol}{amount.normalize():,f}"


def repair_order_pdf(order: RepairOrderDetail, *, lang: str, dealer: str, zone: str) -> bytes:
    st = pdf.styles()
    p = lambda zh, en: pdf.pick(lang, zh, en)  # noqa: E731
    story: list[Flowable] = [
        pdf.fields(
            [
                (p("工单号", "Repair order"), order.number),
                (p("状态", "Status"), _t(lang, STATUS, order.status)),
                (p("车牌", "Plate"), order.plate or ""),
                ("VIN", order.vin),
                (p("客户", "Customer"), order.customer_name),
                (p("服务顾问", "Advisor"), order.advisor),
                (p("进厂里程", "Odometer"), f"{order.odometer_km:,} km"),
                (p("开单时间", "Opened"), _when(order.opened_at, zone)),
                (p("承诺交车", "Promised"), _when(order.promised_at, zone)),
                (p("交车时间", "Delivered"), _when(order.delivered_at, zone)),
            ]
        ),
        pdf.text(p("维修项目", "Jobs"), st.heading),
        pdf.grid(
            [
                p("工时代码", "Op code"),
                p("项目", "Description"),
                p("付费方", "Pay type"),
                p("技师", "Technician"),
                p("工位", "Bay"),
                p("标准工时", "Flat rate h"),
                p("实际工时", "Actual h"),
                p("状态", "Status"),
            ],
            [
                [
                    job.op_code,
                    job.description,
                    _t(lang, PAY_TYPE, job.pay_type),
                    job.technician_id or "",
                    job.bay or "",
                    _num(job.flat_rate_hours),
                    _num(job.actual_hours),
                    _t(lang, JOB_STATUS, job.status)
                    + (f" ({p('返工', 'rework')} {job.rework_count})" if job.rework_count else ""),
                ]
                for job in order.jobs
            ],
            [0.11, 0.25, 0.1, 0.12, 0.07, 0.1, 0.1, 0.15],
            right=(5, 6),
        ),
    ]
    if order.part_lines:
        story += [
            pdf.text(p("配件", "Parts"), st.heading),
            pdf.grid(
                [p("零件号", "Part number"), p("名称", "Description"), p("数量", "Qty"), "ETA"],
                [
                    [
                        line.part_number,
                        line.description,
                        _num(line.quantity),
                        _when(line.eta_at, zone),
                    ]
                    for line in order.part_lines
                ],
                [0.22, 0.46, 0.12, 0.2],
                right=(2,),
            ),
        ]
    if order.declined_lines:
        story += [
            pdf.text(p("客户暂不维修的项目", "Work the customer declined"), st.heading),
            *[
                pdf.text(f"• {line.description or line.op_code or line.part_number or ''}")
                for line in order.declined_lines
            ],
        ]
    story += [
        Spacer(1, 4),
        pdf.signature_boxes([p("客户签字", "Customer"), p("服务顾问签字", "Advisor")]),
    ]
    return pdf.render(
        story, title=p("维修工单", "Repair order"), lang=lang, dealer=dealer, reference=order.number
    )


def invoice_pdf(
    order: RepairOrderDetail, *, lang: str, dealer: str, zone: str, printed: int
) -> bytes:
    """The settled invoice; print 1 is the original, every later print says it is copy n.
    `printed` 0: read before any print was recorded, marked as a preview so that it is
    never taken for the original."""
    assert order.invoice is not None
    invoice = order.invoice
    st = pdf.styles()
    p = lambda zh, en: pdf.pick(lang, zh, en)  # noqa: E731
    symbol = "¥" if order.currency == "CNY" else order.currency + " "
    copy = printed > 1
    title = p("结算单", "Invoice") + (f" — {p('副本', 'COPY')} {printed - 1}" if copy else "")
    story: list[Flowable] = []
    if printed == 0:
        title = p("结算单", "Invoice") + f" — {p('预览', 'PREVIEW')}"
        story.append(
            pdf.text(
                p(
                    "预览：尚未打印，不作为结算凭证",
                    "PREVIEW: not printed yet; this is not the original",
                ),
                st.heading,
            )
        )
    if copy:
        story.append(
            pdf.text(
                p(
                    f"副本（第 {printed} 次打印）：原件已于先前打印",
                    f"COPY (print {printed}): the original was printed before",
                ),
                st.heading,
            )
        )
    story += [
        pdf.fields(
            [
                (p("发票号", "Invoice"), invoice["invoice_number"]),
                (p("工单号", "Repair order"), order.number),
                (p("客户", "Customer"), order.customer_name),
                (p("车牌", "Plate"), order.plate or ""),
                ("VIN", order.vin),
                (p("结算时间", "Settled"), _when(order.settled_at, zone)),
            ]
        ),
        pdf.text(p("明细", "Lines"), st.heading),
    ]
    lines = invoice.get("lines", [])
    story.append(
        pdf.grid(
            [
                p("项目", "Description"),
                p("付费方", "Pay type"),
                p("数量", "Qty"),
                p("单价", "Unit price"),
                p("折扣", "Discount"),
                p("金额（未税）", "Net"),
            ],
            [
                [
                    line.get("description") or line.get("op_code") or line.get("part_number"),
                    _t(lang, PAY_TYPE, line.get("pay_type", "customer")),
                    _num(line.get("quantity", "1")),
                    _rate(line.get("unit_price"), symbol),
                    pdf.money(line.get("discount"), symbol)
                    if Decimal(str(line.get("discount") or 0))
                    else "",
                    pdf.money(line.get("net"), symbol),
                ]
                for line in lines
            ],
            [0.36, 0.12, 0.08, 0.14, 0.14, 0.16],
            right=(2, 3, 4, 5),
        )
    )
    reasons = sorted({line["discount_reason"] for line in lines if line.get("discount_reason")})
    if reasons:
        story.append(pdf.text(p("折扣原因：", "Discount reason: ") + "; ".join(reasons), st.small))
    rows: list[tuple[str, str]] = []
    for total in invoice.get("totals", []):
        payer = _t(lang, PAY_TYPE, total["pay_type"])
        rows += [
            (f"{payer} {p('未税金额', 'net')}", pdf.money(total["net"], symbol)),
            (f"{payer} {p('税额', 'tax')}", pdf.money(total["tax"], symbol)),
        ]
    if Decimal(str(invoice.get("discount_total") or 0)):
        rows.append((p("折扣合计", "Discounts"), pdf.money(invoice["discount_total"], symbol)))
    rows.append(
        (
            p("客户应付（含税）", "Customer pays (incl. tax)"),
            pdf.money(invoice["customer_due"], symbol),
        )
    )
    story += [Spacer(1, 4), pdf.totals(rows)]
    payments = invoice.get("payments", [])
    if payments:
        story += [
            pdf.text(p("收款", "Payments"), st.heading),
            pdf.grid(
                [p("方式", "Method"), p("金额", "Amount")],
                [
                    [_t(lang, METHOD, pay["method"]), pdf.money(pay["amount"], symbol)]
                    for pay in payments
                ],
                [0.7, 0.3],
                right=(1,),
            ),
        ]
    story.append(pdf.signature_boxes([p("客户签字", "Customer"), p("收银员", "Cashier")]))
    return pdf.render(
        story,
        title=title,
        lang=lang,
        dealer=dealer,
        reference=invoice["invoice_number"] + (f" · {p('副本', 'COPY')}" if copy else ""),
    )
