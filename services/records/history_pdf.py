"""A vehicle's history on paper, in Chinese or English (shared/pdf.py frames it): the card,
one row per visit, then every entry of the archive oldest first.

Built from the archive as stored, so an erased customer's data stays erased on paper too;
the owner's name is never printed (the history goes with the car, e.g. to its next owner).
"""

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image as PILImage
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Image, Spacer, Table, TableStyle

from services.records.service import ERASED
from shared import pdf

Label = tuple[str, str]

KIND: dict[str, Label] = {
    "customer.registered": ("客户登记", "Customer registered"),
    "vehicle.registered": ("车辆登记", "Vehicle registered"),
    "appointment.booked": ("预约", "Appointment booked"),
    "appointment.closed": ("预约结束", "Appointment closed"),
    "intake.opened": ("接车", "Check-in"),
    "intake.inspected": ("环车检查", "Walk-around"),
    "estimate.approved": ("估价确认", "Estimate approved"),
    "repair_order.opened": ("开工单", "Repair order opened"),
    "extra_work.found": ("增项发现", "Extra work found"),
    "job.clocked": ("维修工时", "Work clocked"),
    "job.qc_recorded": ("质检", "Quality check"),
    "inspection.completed": ("多项检查", "Multi-point inspection"),
    "repair_order.settled": ("结算", "Invoice"),
    "payment.confirmed": ("付款确认", "Payment confirmed"),
    "repair_order.delivered": ("交车", "Delivered"),
    "complaint.opened": ("投诉", "Complaint"),
    "complaint.escalated": ("投诉升级", "Complaint escalated"),
    "followup.visit_expired": ("回访未联系上", "Follow-up not reached"),
    "followup.visit_closed": ("回访", "Follow-up call"),
    "survey.answered": ("满意度调查", "Satisfaction survey"),
    "comeback.recorded": ("返修", "Comeback"),
    "reminder.sent": ("保养提醒", "Service reminder"),
}
OUTCOME: dict[str, Label] = {
    "arrived": ("已到店", "arrived"),
    "no_show": ("未到店", "no show"),
    "cancelled": ("已取消", "cancelled"),
    "surveyed": ("已完成调查", "surveyed"),
    "declined_survey": ("拒绝调查", "declined the survey"),
    "contact_refused": ("拒绝联系", "refused contact"),
    "wrong_number": ("号码错误", "wrong number"),
    "done": ("完工", "done"),
    "waiting_parts": ("等待配件", "waiting for parts"),
    "break": ("休息", "break"),
}
METHOD: dict[str, Label] = {
    "cash": ("现金", "cash"),
    "card": ("银行卡", "card"),
    "wechat": ("微信支付", "WeChat Pay"),
    "alipay": ("支付宝", "Alipay"),
    "transfer": ("转账", "bank transfer"),
    "fleet_account": ("车队账户", "fleet account"),
}


@dataclass
class Visit:
    """What the history's visit table shows of one repair order."""

    number: str = ""
    opened_at: datetime | None = None
    delivered_at: datetime | None = None
    odometer_km: int | None = None
    work: list[str] = field(default_factory=list)
    technicians: set[str] = field(default_factory=set)
    hours: Decimal = Decimal(0)
    gross: str = ""
    comeback: bool = False


class _Printer:
    def __init__(self, lang: str, zone: str):
        self.lang, self.zone = lang, ZoneInfo(zone)

    def p(self, zh: str, en: str) -> str:
        return pdf.pick(self.lang, zh, en)

    def t(self, table: dict[str, Label], key: Any) -> str:
        zh, en = table.get(str(key), (str(key), str(key)))
        return self.p(zh, en)

    def when(self, value: datetime | str | None, *, time: bool = True) -> str:
        if not value:
            return ""
        at = datetime.fromisoformat(value) if isinstance(value, str) else value
        return at.astimezone(self.zone).strftime("%Y-%m-%d %H:%M" if time else "%Y-%m-%d")

    def value(self, value: Any) -> str:
        if value == ERASED:
            return self.p("（已删除）", "(erased)")
        return "" if value is None else str(value)

    def lines(self, lines: list[dict[str, Any]]) -> str:
        names = (str(ln.get("description") or ln.get("op_code") or "") for ln in lines)
        return self.p("、", ", ").join(names)

    def details(self, kind: str, s: dict[str, Any]) -> str:
        p = self.p
        marks, photos = len(s.get("damage_marks") or []), s.get("photo_count", 0)
        describe: dict[str, Callable[[], list[str]]] = {
            "vehicle.registered": lambda: [f"VIN {s.get('vin', '')}"],
            "appointment.booked": lambda: [
                p("预约到店 ", "for ") + self.when(s.get("scheduled_for")),
                p(f"计划 {s.get('planned_hours')} 小时", f"{s.get('planned_hours')} h planned"),
                p("（改期）", "(rescheduled)") if s.get("rescheduled") else "",
            ],
            "appointment.closed": lambda: [self.t(OUTCOME, s.get("outcome"))],
            "intake.opened": lambda: [
                p("里程 ", "odometer ") + f"{s.get('odometer_km', 0):,} km",
                p("客户描述：", "concerns: ") + "；".join(s.get("concerns") or []),
            ],
            "intake.inspected": lambda: [
                p(f"损伤 {marks} 处", f"{marks} damage marks"),
                p(f"照片 {photos} 张", f"{photos} photos"),
                p("客户已签字", "signed by the customer") if s.get("signature_file_id") else "",
            ],
            "estimate.approved": lambda: [
                p(f"第 {s.get('revision')} 版", f"revision {s.get('revision')}"),
                p("同意：", "approved: ") + self.lines(s.get("approved_lines") or []),
                (p("拒绝：", "declined: ") + self.lines(s.get("declined_lines") or []))
                if s.get("declined_lines")
                else "",
            ],
            "repair_order.opened": lambda: [str(s.get("number", ""))],
            "extra_work.found": lambda: [
                str(s.get("findings", "")),
                p("技师 ", "by ") + str(s.get("found_by", "")),
                p(f"照片 {len(s.get('photo_file_ids') or [])} 张", "")
                if s.get("photo_file_ids")
                else "",
            ],
            "job.clocked": lambda: [
                f"{s.get('op_code', '')}",
                str(s.get("technician_id", "")),
                p(f"{s.get('hours')} 小时", f"{s.get('hours')} h"),
                self.t(OUTCOME, s.get("reason")),
            ],
            "inspection.completed": lambda: [
                p(
                    "绿 {green} · 黄 {amber} · 红 {red}".format(**_counts(s)),
                    "green {green} · amber {amber} · red {red}".format(**_counts(s)),
                ),
                p("技师 ", "by ") + str(s.get("completed_by", "")),
            ],
            "job.qc_recorded": lambda: [
                f"{s.get('op_code', '')}",
                p("通过", "passed") if s.get("passed") else p("未通过", "failed"),
                str(s.get("reason") or ""),
                p("含路试", "road test") if s.get("road_test") else "",
            ],
            "repair_order.settled": lambda: [
                p("发票 ", "invoice ") + str(s.get("invoice_number", "")),
                pdf.money(s.get("gross_total")),
            ],
            "payment.confirmed": lambda: [
                pdf.money(s.get("amount")),
                self.t(METHOD, s.get("method")),
                p("发票 ", "invoice ") + str(s.get("invoice_number", "")),
            ],
            "repair_order.delivered": lambda: [
                p("里程 ", "odometer ") + f"{s.get('odometer_km', 0):,} km",
                p("按时", "on time") if s.get("on_time") else p("延迟", "late"),
                (p("未做：", "declined: ") + p("、", ", ").join(s.get("declined_work") or []))
                if s.get("declined_work")
                else "",
            ],
            "complaint.opened": lambda: [str(s.get("severity", "")), str(s.get("category", ""))],
            "complaint.escalated": lambda: [
                str(s.get("severity", "")),
                p("转交 ", "to ") + str(s.get("escalated_to", "")),
            ],
            "followup.visit_expired": lambda: [
                p(f"尝试 {s.get('attempts')} 次", f"{s.get('attempts')} attempts")
            ],
            "followup.visit_closed": lambda: [self.t(OUTCOME, s.get("outcome"))],
            "survey.answered": lambda: [
                p(f"总体 {s.get('overall')}/10", f"overall {s.get('overall')}/10"),
                f"NPS {s.get('nps')}",
            ],
            "comeback.recorded": lambda: [
                p("同一项目返修：", "same op group: ") + str(s.get("op_group", ""))
            ],
            "reminder.sent": lambda: [
                str(s.get("kind", "")),
                p("到期 ", "due ") + str(s.get("due_on") or ""),
                str(s.get("channel", "")),
            ],
        }
        if kind in describe:
            parts = describe[kind]()
        else:
            parts = [f"{k}: {self.value(v)}" for k, v in s.items() if not isinstance(v, list)]
        return self.p("；", "; ").join(self.value(part) for part in parts if part)


def visits_of(entries: list[Any]) -> dict[Any, Visit]:
    """The visits the entries belong to, by repair order id, in the order they began."""
    visits: dict[Any, Visit] = {}
    for entry in entries:
        if entry.repair_order_id is None:
            continue
        visit = visits.setdefault(entry.repair_order_id, Visit())
        s = entry.summary
        visit.number = visit.number or str(s.get("number") or "")
        if entry.kind == "repair_order.opened":
            visit.opened_at = entry.occurred_at
        elif entry.kind == "repair_order.delivered":
            visit.delivered_at = entry.occurred_at
            visit.odometer_km = s.get("odometer_km")
            for job in s.get("jobs") or []:
                visit.work.append(str(job.get("description") or job.get("op_code") or ""))
            visit.technicians |= set(s.get("technicians") or [])
        elif entry.kind == "job.clocked":
            visit.technicians.add(str(s.get("technician_id", "")))
            with contextlib.suppress(InvalidOperation):
                visit.hours += Decimal(str(s.get("hours", "0")))
        elif entry.kind == "repair_order.settled":
            visit.gross = pdf.money(s.get("gross_total"))
        elif entry.kind == "comeback.recorded":
            visit.comeback = True
        elif entry.kind == "intake.opened" and visit.odometer_km is None:
            visit.odometer_km = s.get("odometer_km")
    return dict(
        sorted(
            visits.items(),
            key=lambda kv: (kv[1].opened_at or kv[1].delivered_at or datetime.max, kv[1].number),
        )
    )


THUMBNAIL_MM = 22
THUMBNAIL_PX = 160  # enough for 22 mm at ~185 dpi


def thumbnail_jpeg(data: bytes) -> bytes | None:
    """A small JPEG of a photo for the page, or None when it is not a readable image. JPEGs
    are decoded at a fraction of their size (draft mode), so a phone photo costs little."""
    try:
        with PILImage.open(io.BytesIO(data)) as img:
            img.draft("RGB", (THUMBNAIL_PX, THUMBNAIL_PX))
            img.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            small = img.convert("RGB")
    except (OSError, ValueError, PILImage.DecompressionBombError):
        return None
    out = io.BytesIO()
    small.save(out, "JPEG", quality=70)
    return out.getvalue()


def _image(jpeg: bytes) -> Image:
    width, height = PILImage.open(io.BytesIO(jpeg)).size
    scale = THUMBNAIL_MM * mm / max(width, height)
    return Image(io.BytesIO(jpeg), width=width * scale, height=height * scale)


def _with_photos(details: str, summary: dict[str, Any], photos: dict[str, bytes]) -> Any:
    """The walk-around's details with its photos' thumbnails under them, when printed."""
    images = [
        _image(photos[str(photo.get("file_id"))])
        for photo in summary.get("photos") or []
        if str(photo.get("file_id")) in photos
    ]
    if not images:
        return details
    strip = Table([images], colWidths=[(THUMBNAIL_MM + 2) * mm] * len(images), hAlign="LEFT")
    strip.setStyle(
        TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("VALIGN", (0, 0), (-1, -1), "TOP")])
    )
    return [pdf.text(details, pdf.styles().cell), strip]


def vehicle_history_pdf(
    card: Any,
    entries: list[Any],
    *,
    lang: str,
    dealer: str,
    zone: str,
    printed_at: datetime,
    photos: dict[str, bytes] | None = None,
) -> bytes:
    """`card`: the ArchivedVehicle (or None when only entries are known); `entries`:
    TimelineEntry rows, oldest first; `photos`: thumbnails (`thumbnail_jpeg`) of the
    walk-around photos to print, by file id (the others are counted only)."""
    st = pdf.styles()
    pr = _Printer(lang, zone)
    p = pr.p
    photos = photos or {}
    visits = visits_of(entries)
    story: list[Flowable] = [
        pdf.fields(
            [
                ("VIN", card.vin if card else ""),
                (p("车牌", "Plate"), (card.plate if card else None) or ""),
                (p("品牌", "Make"), (card.make if card else None) or ""),
                (p("车型", "Model"), (card.model if card else None) or ""),
                (p("年款", "Model year"), (card.model_year if card else None) or ""),
                (p("进厂次数", "Visits"), len(visits)),
                (p("记录条数", "Entries"), len(entries)),
                (p("打印时间", "Printed"), pr.when(printed_at)),
            ]
        ),
        Spacer(1, 4),
        pdf.text(p("维修记录", "Service visits"), st.heading),
    ]
    if visits:
        story.append(
            pdf.grid(
                [
                    p("工单号", "Repair order"),
                    p("开单", "Opened"),
                    p("交车", "Delivered"),
                    p("里程", "km"),
                    p("维修项目", "Work done"),
                    p("技师", "Technicians"),
                    p("工时", "Hours"),
                    p("金额", "Invoice"),
                ],
                [
                    [
                        v.number + (p("（返修）", " (comeback)") if v.comeback else ""),
                        pr.when(v.opened_at, time=False),
                        pr.when(v.delivered_at, time=False),
                        f"{v.odometer_km:,}" if v.odometer_km is not None else "",
                        p("、", ", ").join(w for w in v.work if w),
                        p("、", ", ").join(sorted(t for t in v.technicians if t)),
                        f"{v.hours.normalize():f}" if v.hours else "",
                        v.gross,
                    ]
                    for v in visits.values()
                ],
                [0.17, 0.11, 0.11, 0.08, 0.18, 0.13, 0.07, 0.15],
                right=[3, 6, 7],
            )
        )
    else:
        story.append(pdf.text(p("暂无维修记录。", "No visits yet."), st.small))
    story += [
        Spacer(1, 4),
        pdf.text(p("全部记录", "Full history"), st.heading),
        pdf.grid(
            [p("时间", "When"), p("事项", "What"), p("工单", "Order"), p("详情", "Details")],
            [
                [
                    pr.when(e.occurred_at),
                    pr.t(KIND, e.kind),
                    visits[e.repair_order_id].number if e.repair_order_id in visits else "",
                    _with_photos(pr.details(e.kind, e.summary), e.summary, photos)
                    if e.kind == "intake.inspected" and photos
                    else pr.details(e.kind, e.summary),
                ]
                for e in entries
            ],
            [0.16, 0.2, 0.15, 0.49],
        ),
    ]
    vin = card.vin if card else ""
    return pdf.render(
        story,
        title=p("车辆档案", "Vehicle history"),
        lang=lang,
        dealer=dealer,
        reference=vin,
    )


def _counts(summary: dict[str, Any]) -> dict[str, int]:
    counts = summary.get("counts") or {}
    return {k: int(counts.get(k, 0)) for k in ("green", "amber", "red")}
