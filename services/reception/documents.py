"""The printed intake sheet and estimate, in Chinese or English (shared/pdf.py's frame).

Amounts come already rounded from pricing; a document only formats them. Customer text
(concerns, notes) is printed as written, in whatever language the customer used.
"""

import asyncio
import io
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import Flowable, Image, Table, TableStyle
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reception import estimates, service
from services.reception.config import Settings
from services.reception.models import Customer, EstimatePublic, Intake, Language, Vehicle
from shared import pdf
from shared.auth import User

# The walk-around every car gets; anything else the advisor checked follows these.
CHECKLIST: list[tuple[str, str, str]] = [
    ("lights", "灯光", "Lights"),
    ("tyre_front_left", "左前轮胎", "Tyre front left"),
    ("tyre_front_right", "右前轮胎", "Tyre front right"),
    ("tyre_rear_left", "左后轮胎", "Tyre rear left"),
    ("tyre_rear_right", "右后轮胎", "Tyre rear right"),
    ("spare_tyre", "备胎", "Spare tyre"),
    ("wipers", "雨刮", "Wipers"),
    ("battery", "蓄电池", "Battery"),
    ("engine_oil", "机油", "Engine oil"),
    ("coolant", "冷却液", "Coolant"),
    ("brake_fluid", "制动液", "Brake fluid"),
    ("washer_fluid", "玻璃水", "Washer fluid"),
    ("windscreen", "前挡风玻璃", "Windscreen"),
    ("horn", "喇叭", "Horn"),
]
STATES = {
    "ok": ("正常", "OK"),
    "attention": ("需注意", "Attention"),
    "urgent": ("紧急", "Urgent"),
}
DAMAGE_KINDS = {
    "scratch": ("划痕", "Scratch"),
    "dent": ("凹陷", "Dent"),
    "crack": ("裂纹", "Crack"),
    "chip": ("崩漆/石击", "Chip"),
    "other": ("其他", "Other"),
}
PAY_TYPES = {
    "customer": ("客户付费", "Customer"),
    "warranty": ("保修", "Warranty"),
    "internal": ("内部", "Internal"),
}
LINE_KINDS = {"labour": ("工时", "Labour"), "part": ("配件", "Part"), "fee": ("费用", "Fee")}
ANSWERS = {"approved": ("同意", "Approved"), "declined": ("拒绝", "Declined")}
INTAKE_STATUS = {
    "open": ("接待中", "Open"),
    "completed": ("已完成", "Completed"),
    "cancelled": ("已取消", "Cancelled"),
}
FUEL = ("燃油", "Fuel")
CHARGE = ("电量", "Charge")
VALUABLES = (
    "请随身带走车内贵重物品（现金、证件、电子设备等）。本店不对遗留在车内的贵重物品负责。",
    "Please take your valuables (cash, documents, electronics) with you. The workshop is "
    "not liable for valuables left in the vehicle.",
)


def choose_language(lang: str | None, customer: Customer) -> str:
    """The `lang` asked for, else the customer's own language."""
    return lang or str(customer.language or Language.zh_cn)


def _at(value: datetime | None, settings: Settings) -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(settings.time_zone)).strftime("%Y-%m-%d %H:%M")


def _label(pairs: dict[str, tuple[str, str]], key: str | None, lang: str) -> str:
    if key is None:
        return ""
    zh, en = pairs.get(key, (key, key))
    return pdf.pick(lang, zh, en)


def _vehicle_fields(vehicle: Vehicle, lang: str) -> list[tuple[str, Any]]:
    p = pdf.pick
    make_model = " ".join(x for x in (vehicle.make, vehicle.model) if x)
    return [
        (p(lang, "车牌", "Plate"), vehicle.plate or ""),
        (p(lang, "车架号", "VIN"), vehicle.vin),
        (p(lang, "品牌车型", "Make / model"), make_model),
        (
            p(lang, "年款 / 颜色", "Year / colour"),
            f"{vehicle.model_year or ''} {vehicle.colour or ''}",
        ),
    ]


def _customer_fields(customer: Customer, lang: str) -> list[tuple[str, Any]]:
    p = pdf.pick
    name = customer.name + (f"（{customer.company}）" if customer.company else "")
    return [
        (p(lang, "客户", "Customer"), name),
        (
            p(lang, "手机", "Mobile"),
            ", ".join(x for x in [customer.mobile, *customer.other_mobiles] if x),
        ),
    ]


def _picture(data: bytes | None, width: float, height: float) -> Flowable | None:
    """The image scaled into width x height, or None when it cannot be read (HEIC)."""
    if data is None:
        return None
    try:
        w, h = ImageReader(io.BytesIO(data)).getSize()
    except Exception:
        return None
    scale = min(width / w, height / h)
    return Image(io.BytesIO(data), width=w * scale, height=h * scale)


def _photo_strip(photos: list[tuple[str, Flowable]]) -> Table:
    """Damage photos four to a row, each captioned with its mark's number."""
    st = pdf.styles()
    rows: list[list[object]] = []
    for start in range(0, len(photos), 4):
        chunk = photos[start : start + 4]
        rows.append([image for _, image in chunk] + [""] * (4 - len(chunk)))
        rows.append([pdf.text(caption, st.small) for caption, _ in chunk] + [""] * (4 - len(chunk)))
    table = Table(rows, colWidths=[45 * mm] * 4)
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "BOTTOM")]))
    return table


def intake_files(intake: Intake) -> list[uuid.UUID]:
    """The files the sheet shows: damage photos, then the signature."""
    ids = [
        uuid.UUID(str(m["photo_file_id"])) for m in intake.damage_marks if m.get("photo_file_id")
    ]
    return ids + ([intake.signature_file_id] if intake.signature_file_id else [])


def intake_sheet(
    intake: Intake,
    customer: Customer,
    vehicle: Vehicle,
    lang: str,
    settings: Settings,
    images: dict[uuid.UUID, bytes] | None = None,
) -> bytes:
    """`images`: file bytes by id (from records); a picture not there prints as on file."""
    p, st = pdf.pick, pdf.styles()
    images = images or {}
    level = (
        f"{p(lang, *FUEL)} {intake.fuel_level_pct}%" if intake.fuel_level_pct is not None else ""
    )
    if intake.charge_level_pct is not None:
        level = (level + "  " if level else "") + f"{p(lang, *CHARGE)} {intake.charge_level_pct}%"
    story: list[Any] = [
        pdf.fields(
            [
                (p(lang, "接待单号", "Intake"), str(intake.id)[:8].upper()),
                (p(lang, "接待时间", "Opened"), _at(intake.opened_at, settings)),
                *_customer_fields(customer, lang),
                *_vehicle_fields(vehicle, lang),
                (p(lang, "里程 (km)", "Odometer (km)"), f"{intake.odometer_km:,}"),
                (p(lang, "燃油 / 电量", "Fuel / charge"), level),
                (p(lang, "服务顾问", "Advisor"), intake.advisor),
                (p(lang, "状态", "Status"), _label(INTAKE_STATUS, str(intake.status), lang)),
            ]
        ),
        pdf.text(p(lang, "环车检查", "Walk-around check"), st.heading),
    ]
    recorded = {str(entry.get("item")): entry for entry in intake.checklist}
    known = {key for key, _, _ in CHECKLIST}
    # An item not checked yet prints its choices, to tick on paper.
    blank = "  ".join("□" + p(lang, zh, en) for zh, en in STATES.values())
    rows = []
    for key, zh, en in CHECKLIST + [(k, k, k) for k in recorded if k not in known]:
        entry = recorded.get(key, {})
        depth = entry.get("tread_depth_mm")
        rows.append(
            [
                p(lang, zh, en),
                _label(STATES, entry.get("state"), lang) if entry else blank,
                f"{depth} mm" if depth is not None else "",
                entry.get("note", ""),
            ]
        )
    story.append(
        pdf.grid(
            [
                p(lang, "项目", "Item"),
                p(lang, "状态", "State"),
                p(lang, "花纹深度", "Tread"),
                p(lang, "备注", "Note"),
            ],
            rows,
            [0.22, 0.30, 0.12, 0.36],
        )
    )
    story.append(pdf.text(p(lang, "外观损伤标记", "Damage marks"), st.heading))
    marks = [
        [
            str(i),
            mark.get("position", ""),
            _label(DAMAGE_KINDS, mark.get("kind"), lang),
            p(lang, "有照片", "photo on file") if mark.get("photo_file_id") else "",
            mark.get("note", ""),
        ]
        for i, mark in enumerate(intake.damage_marks, start=1)
    ]
    if marks:
        story.append(
            pdf.grid(
                [
                    "#",
                    p(lang, "位置", "Position"),
                    p(lang, "类型", "Kind"),
                    p(lang, "照片", "Photo"),
                    p(lang, "备注", "Note"),
                ],
                marks,
                [0.06, 0.26, 0.14, 0.16, 0.38],
            )
        )
        photos = []
        for i, mark in enumerate(intake.damage_marks, start=1):
            file_id = mark.get("photo_file_id")
            image = _picture(
                images.get(uuid.UUID(str(file_id))) if file_id else None, 42 * mm, 30 * mm
            )
            if image is not None:
                photos.append((f"#{i} {mark.get('position', '')}", image))
        if photos:
            story.append(_photo_strip(photos))
    else:
        story.append(pdf.text(p(lang, "未发现外观损伤。", "No damage marked."), st.body))
    story.append(
        pdf.text(p(lang, "客户描述的问题", "Concerns (in the customer's words)"), st.heading)
    )
    if intake.concerns:
        for i, concern in enumerate(intake.concerns, start=1):
            story.append(pdf.text(f"{i}. {concern}", st.body))
    else:
        story.append(pdf.text("—", st.body))
    story.append(pdf.text(p(lang, "贵重物品提示", "Valuables reminder"), st.heading))
    acknowledged = (
        p(lang, "客户已确认：", "Acknowledged by the customer: ")
        + _at(intake.valuables_acknowledged_at, settings)
        if intake.valuables_acknowledged_at
        else p(lang, "□ 客户已知悉", "□ Read and understood by the customer")
    )
    story += [pdf.text(p(lang, *VALUABLES), st.body), pdf.text(acknowledged, st.small)]
    if intake.signature_file_id is not None:
        story.append(
            pdf.text(
                p(
                    lang,
                    "客户已在平板上签名（签名存档）。",
                    "Signed by the customer on the tablet (signature on file).",
                ),
                st.small,
            )
        )
        signature = _picture(images.get(intake.signature_file_id), 60 * mm, 20 * mm)
        if signature is not None:
            signature.hAlign = "LEFT"
            story.append(signature)
    story.append(
        pdf.signature_boxes(
            [
                p(lang, "客户签字 / 日期", "Customer signature / date"),
                p(lang, "服务顾问签字", "Service advisor"),
            ]
        )
    )
    return pdf.render(
        story,
        title=p(lang, "接车单 / 环车检查单", "Vehicle intake sheet"),
        lang=lang,
        dealer=settings.dealer_name,
        reference=f"{p(lang, '接待', 'Intake')} {str(intake.id)[:8].upper()}",
    )


def _quantity(line: Any, lang: str) -> tuple[str, str]:
    if line.kind == "labour":
        return f"{line.flat_rate_hours:.2f} h", pdf.money(line.labour_rate)
    return f"{line.quantity.normalize():f}", pdf.money(line.unit_price)


def estimate_sheet(
    estimate: EstimatePublic,
    customer: Customer,
    vehicle: Vehicle,
    intake: Intake,
    lang: str,
    settings: Settings,
) -> bytes:
    p, st = pdf.pick, pdf.styles()
    number = f"{str(estimate.id)[:8].upper()}-R{estimate.revision}"
    story: list[Any] = [
        pdf.fields(
            [
                (p(lang, "估价单号", "Estimate"), number),
                (p(lang, "日期", "Date"), _at(estimate.created_at, settings)),
                *_customer_fields(customer, lang),
                *_vehicle_fields(vehicle, lang),
                (p(lang, "里程 (km)", "Odometer (km)"), f"{intake.odometer_km:,}"),
                (p(lang, "服务顾问", "Advisor"), estimate.advisor),
                (
                    p(lang, "预计交车时间", "Promised for"),
                    _at(estimate.promised_at, settings) or "—",
                ),
                (p(lang, "币种", "Currency"), estimate.currency),
            ]
        ),
        pdf.text(p(lang, "维修项目", "Work and parts"), st.heading),
    ]
    rows = []
    for i, line in enumerate(estimate.lines, start=1):
        quantity, unit = _quantity(line, lang)
        code = line.op_code if line.kind == "labour" else (line.part_number or "")
        rows.append(
            [
                str(i),
                f"{_label(LINE_KINDS, line.kind.value, lang)}\n{code}",
                line.description,
                quantity,
                unit,
                pdf.money(line.discount) if line.discount else "",
                pdf.money(line.net),
                _label(PAY_TYPES, line.pay_type.value, lang),
                _label(ANSWERS, line.answer.decision.value, lang) if line.answer else "□",
            ]
        )
    story.append(
        pdf.grid(
            [
                "#",
                p(lang, "类别 / 代码", "Kind / code"),
                p(lang, "描述", "Description"),
                p(lang, "数量/工时", "Qty / hours"),
                p(lang, "单价/工时费", "Unit / rate"),
                p(lang, "折扣", "Discount"),
                p(lang, "金额", "Net"),
                p(lang, "付费方", "Pay type"),
                p(lang, "客户意见", "Answer"),
            ],
            rows,
            [0.04, 0.16, 0.22, 0.08, 0.11, 0.09, 0.11, 0.10, 0.09],
            right=[3, 4, 5, 6],
        )
    )
    rate = (estimate.tax_rate * 100).normalize()
    pairs: list[tuple[str, str]] = []
    for total in estimate.totals.by_pay_type:
        name = _label(PAY_TYPES, total.pay_type.value, lang)
        pairs += [
            (f"{name} · {p(lang, '不含税金额', 'net')}", pdf.money(total.net)),
            (f"{name} · {p(lang, '税额', 'tax')} {rate:f}%", pdf.money(total.tax)),
        ]
    pairs += [
        (p(lang, "不含税合计", "Net"), pdf.money(estimate.totals.net)),
        (p(lang, f"税额 ({rate:f}%)", f"Tax ({rate:f}%)"), pdf.money(estimate.totals.tax)),
        (p(lang, "含税总计", "Total"), pdf.money(estimate.totals.total)),
    ]
    story += [
        pdf.totals(pairs),
        pdf.text(
            p(
                lang,
                "金额按行四舍五入至分，税额按付费方合计计算一次。未经客户同意的项目不会施工。",
                "Each line is rounded to the cent; tax is computed once per pay type. "
                "No work is done on a line the customer has not approved.",
            ),
            st.small,
        ),
    ]
    if estimate.note:
        story.append(pdf.text(estimate.note, st.body))
    story.append(
        pdf.signature_boxes(
            [
                p(lang, "客户签字 / 日期", "Customer signature / date"),
                p(lang, "服务顾问签字", "Service advisor"),
            ]
        )
    )
    return pdf.render(
        story,
        title=p(lang, "维修估价单", "Repair estimate"),
        lang=lang,
        dealer=settings.dealer_name,
        reference=f"{p(lang, '估价', 'Estimate')} {number}",
    )


async def intake_parts(
    session: AsyncSession, intake_id: uuid.UUID, by: User
) -> tuple[Intake, Customer, Vehicle]:
    intake = await service.get_intake(session, intake_id, by)
    customer = await session.get(Customer, intake.customer_id)
    vehicle = await session.get(Vehicle, intake.vehicle_id)
    assert customer is not None and vehicle is not None  # foreign keys
    return intake, customer, vehicle


async def intake_pdf(
    parts: tuple[Intake, Customer, Vehicle],
    lang: str | None,
    settings: Settings,
    images: dict[uuid.UUID, bytes],
) -> bytes:
    intake, customer, vehicle = parts
    # Laying out a PDF is CPU work: off the event loop, so other requests keep flowing.
    return await asyncio.to_thread(
        intake_sheet, intake, customer, vehicle, choose_language(lang, customer), settings, images
    )


async def estimate_pdf(
    session: AsyncSession,
    estimate_id: uuid.UUID,
    by: User,
    lang: str | None,
    revision: int | None,
    settings: Settings,
) -> bytes:
    estimate = await estimates.get_estimate(session, estimate_id, by)
    row = await estimates.get_revision(session, estimate, revision) if revision else None
    public = await estimates.public(session, estimate, row)
    customer = await session.get(Customer, estimate.customer_id)
    vehicle = await session.get(Vehicle, estimate.vehicle_id)
    intake = await session.get(Intake, estimate.intake_id)
    assert customer is not None and vehicle is not None and intake is not None
    return await asyncio.to_thread(
        estimate_sheet, public, customer, vehicle, intake, choose_language(lang, customer), settings
    )
