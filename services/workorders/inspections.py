"""Multi-point inspection (多项检查): the branch's template and the inspection a
technician fills per repair order on the phone. Completing it sends the amber and red items
to the customer through the extra-work flow (reception's revision, the approval link)."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.workorders import service
from services.workorders.models import ExtraWork, Inspection, InspectionTemplate, RepairOrder
from services.workorders.schemas import ExtraWorkCreate, ProposedLine
from services.workorders.states import WORKING
from shared.auth import User
from shared.concurrency import check_if_match
from shared.contracts.workorders import InspectionCompleted, InspectionItemResult
from shared.outbox import add_event
from shared.problems import Conflict, InvalidInput, NotFound

Status = Literal["green", "amber", "red"]
_CODE = r"^[a-z0-9][a-z0-9_-]{0,31}$"


class Measurement(BaseModel):
    """What to measure and its limits: below `amber_below` is amber, below `red_below`
    red (tread depth, pad thickness: less is worse)."""

    model_config = ConfigDict(extra="forbid")

    unit: str = Field(min_length=1, max_length=16)
    amber_below: Decimal = Field(ge=0, le=10000)
    red_below: Decimal = Field(ge=0, le=10000)

    @model_validator(mode="after")
    def _red_under_amber(self) -> "Measurement":
        if self.red_below > self.amber_below:
            raise ValueError("red_below: the red limit must not be above the amber limit")
        return self


class TemplateItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=_CODE)
    label_zh: str = Field(min_length=1, max_length=80)
    label_en: str = Field(min_length=1, max_length=80)
    measurement: Measurement | None = None
    # The canned work proposed when the item is amber or red (op code of a canned job).
    proposed_lines: list[ProposedLine] = Field(default_factory=list, max_length=10)


class TemplateArea(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=_CODE)
    label_zh: str = Field(min_length=1, max_length=80)
    label_en: str = Field(min_length=1, max_length=80)
    items: list[TemplateItem] = Field(min_length=1, max_length=60)


class TemplateReplace(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "areas": [
                        {
                            "code": "brakes",
                            "label_zh": "制动",
                            "label_en": "Brakes",
                            "items": [
                                {
                                    "code": "pads-front",
                                    "label_zh": "前刹车片厚度",
                                    "label_en": "Front brake pads",
                                    "measurement": {
                                        "unit": "mm",
                                        "amber_below": "4",
                                        "red_below": "2",
                                    },
                                    "proposed_lines": [
                                        {
                                            "kind": "labour",
                                            "op_code": "BRK-010",
                                            "flat_rate_hours": "0.8",
                                            "description": "更换前刹车片",
                                        }
                                    ],
                                },
                                {
                                    "code": "brake-fluid",
                                    "label_zh": "制动液",
                                    "label_en": "Brake fluid",
                                },
                            ],
                        }
                    ]
                }
            ]
        },
    )

    areas: list[TemplateArea] = Field(min_length=1, max_length=20)

    @field_validator("areas")
    @classmethod
    def _codes_unique(cls, areas: list[TemplateArea]) -> list[TemplateArea]:
        codes = [item.code for area in areas for item in area.items]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"item codes must be unique ({', '.join(twice)})")
        return areas


class TemplatePublic(BaseModel):
    branch: str
    areas: list[TemplateArea]
    version: int
    updated_by: str | None = None
    updated_at: datetime | None = None


class ItemFill(BaseModel):
    """What the technician records on an item; a measurement without a status takes the
    status its limits give."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"status": "green"},
                {
                    "value": "1.5",
                    "note": "露出金属 / down to the metal",
                    "photo_file_ids": ["0b5f0a3e-7d0e-4bd4-8d1e-5f7b3c2a9e10"],
                },
            ]
        },
    )

    status: Status | None = None
    note: str = Field(default="", max_length=1000)
    value: Decimal | None = Field(default=None, ge=0, le=10000, decimal_places=2)
    photo_file_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10)


class InspectionItem(BaseModel):
    code: str
    area: str
    area_zh: str
    area_en: str
    label_zh: str
    label_en: str
    status: Status | None = None
    note: str = ""
    value: Decimal | None = None
    unit: str | None = None
    amber_below: Decimal | None = None
    red_below: Decimal | None = None
    photo_file_ids: list[uuid.UUID] = []
    proposed_lines: list[ProposedLine] = []


class InspectionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    repair_order_id: uuid.UUID
    status: str
    items: list[InspectionItem]
    started_by: str
    started_at: datetime
    completed_by: str | None = None
    completed_at: datetime | None = None
    extra_work_id: uuid.UUID | None = None
    version: int


def _item(code: str, zh: str, en: str, **more: Any) -> dict[str, Any]:
    return {"code": code, "label_zh": zh, "label_en": en, **more}


def _measure(unit: str, amber: str, red: str) -> dict[str, Any]:
    return {"unit": unit, "amber_below": amber, "red_below": red}


def _labour(op_code: str, hours: str, description: str) -> dict[str, Any]:
    return {
        "kind": "labour",
        "op_code": op_code,
        "flat_rate_hours": hours,
        "description": description,
    }


# Every branch starts from this one until its manager replaces it.
DEFAULT_AREAS: list[dict[str, Any]] = [
    {
        "code": "tyres",
        "label_zh": "轮胎",
        "label_en": "Tyres",
        "items": [
            _item(
                "tread-fl",
                "左前轮胎花纹深度",
                "Front left tyre tread",
                measurement=_measure("mm", "3", "1.6"),
                proposed_lines=[_labour("TYR-010", "0.5", "Replace tyre / 更换轮胎")],
            ),
            _item(
                "tread-fr",
                "右前轮胎花纹深度",
                "Front right tyre tread",
                measurement=_measure("mm", "3", "1.6"),
                proposed_lines=[_labour("TYR-010", "0.5", "Replace tyre / 更换轮胎")],
            ),
            _item(
                "tread-rl",
                "左后轮胎花纹深度",
                "Rear left tyre tread",
                measurement=_measure("mm", "3", "1.6"),
                proposed_lines=[_labour("TYR-010", "0.5", "Replace tyre / 更换轮胎")],
            ),
            _item(
                "tread-rr",
                "右后轮胎花纹深度",
                "Rear right tyre tread",
                measurement=_measure("mm", "3", "1.6"),
                proposed_lines=[_labour("TYR-010", "0.5", "Replace tyre / 更换轮胎")],
            ),
        ],
    },
    {
        "code": "brakes",
        "label_zh": "制动",
        "label_en": "Brakes",
        "items": [
            _item(
                "pads-front",
                "前刹车片厚度",
                "Front brake pads",
                measurement=_measure("mm", "4", "2"),
                proposed_lines=[_labour("BRK-010", "0.8", "Replace front pads / 更换前刹车片")],
            ),
            _item(
                "pads-rear",
                "后刹车片厚度",
                "Rear brake pads",
                measurement=_measure("mm", "4", "2"),
                proposed_lines=[_labour("BRK-011", "0.8", "Replace rear pads / 更换后刹车片")],
            ),
            _item(
                "brake-fluid",
                "制动液",
                "Brake fluid",
                proposed_lines=[_labour("BRK-030", "0.5", "Brake fluid change / 更换制动液")],
            ),
        ],
    },
    {
        "code": "under-hood",
        "label_zh": "发动机舱",
        "label_en": "Under the hood",
        "items": [
            _item("engine-oil", "机油液位", "Engine oil level"),
            _item("coolant", "冷却液", "Coolant"),
            _item(
                "battery",
                "蓄电池",
                "Battery",
                proposed_lines=[_labour("ELE-020", "0.3", "Replace battery / 更换蓄电池")],
            ),
        ],
    },
    {
        "code": "lights-wipers",
        "label_zh": "灯光与雨刮",
        "label_en": "Lights and wipers",
        "items": [
            _item("lights", "灯光", "Lights"),
            _item(
                "wipers",
                "雨刮片",
                "Wiper blades",
                proposed_lines=[
                    {"kind": "part", "part_number": "WB-22", "description": "Wiper blades / 雨刮片"}
                ],
            ),
        ],
    },
]


def default_template() -> TemplateReplace:
    return TemplateReplace.model_validate({"areas": DEFAULT_AREAS})


async def read_template(session: AsyncSession, by: User) -> TemplatePublic:
    row = await session.get(InspectionTemplate, by.branch)
    if row is None:
        return TemplatePublic(branch=by.branch, areas=default_template().areas, version=0)
    return TemplatePublic(
        branch=row.branch,
        areas=[TemplateArea.model_validate(a) for a in row.areas],
        version=row.version,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


async def replace_template(
    session: AsyncSession, body: TemplateReplace, by: User, now: datetime, *, if_match: str | None
) -> TemplatePublic:
    row = await session.get(InspectionTemplate, by.branch)
    check_if_match(if_match, row.version if row else 0)
    areas = [a.model_dump(mode="json") for a in body.areas]
    if row is None:
        row = InspectionTemplate(branch=by.branch, areas=areas, updated_by=by.id, updated_at=now)
        session.add(row)
    else:
        row.areas, row.updated_by, row.updated_at = areas, by.id, now
    await session.flush()
    return await read_template(session, by)


async def _inspection(session: AsyncSession, order: RepairOrder) -> Inspection:
    found = (
        await session.exec(select(Inspection).where(Inspection.repair_order_id == order.id))
    ).first()
    if found is None:
        raise NotFound(f"repair order {order.number} has no inspection yet")
    return found


async def get_inspection(session: AsyncSession, order_id: uuid.UUID, by: User) -> Inspection:
    order = await service.get_repair_order(session, order_id, by)
    return await _inspection(session, order)


async def start_inspection(
    session: AsyncSession, order_id: uuid.UUID, by: User, now: datetime
) -> Inspection:
    order = await service.get_repair_order(session, order_id, by)
    if order.status not in WORKING:
        raise Conflict(f"a repair order in {order.status} takes no inspection")
    exists = (
        await session.exec(select(Inspection.id).where(Inspection.repair_order_id == order.id))
    ).first()
    if exists is not None:
        raise Conflict(f"repair order {order.number} already has its inspection")
    template = await read_template(session, by)
    items = [
        InspectionItem(
            code=item.code,
            area=area.code,
            area_zh=area.label_zh,
            area_en=area.label_en,
            label_zh=item.label_zh,
            label_en=item.label_en,
            unit=item.measurement.unit if item.measurement else None,
            amber_below=item.measurement.amber_below if item.measurement else None,
            red_below=item.measurement.red_below if item.measurement else None,
            proposed_lines=item.proposed_lines,
        ).model_dump(mode="json")
        for area in template.areas
        for item in area.items
    ]
    inspection = Inspection(
        repair_order_id=order.id, branch=order.branch, items=items, started_by=by.id, started_at=now
    )
    session.add(inspection)
    await session.flush()
    return inspection


def _status_of(item: InspectionItem, fill: ItemFill) -> Status | None:
    if fill.status is not None:
        return fill.status
    if fill.value is None or item.amber_below is None or item.red_below is None:
        return None
    if fill.value < item.red_below:
        return "red"
    return "amber" if fill.value < item.amber_below else "green"


async def fill_item(
    session: AsyncSession,
    order_id: uuid.UUID,
    code: str,
    fill: ItemFill,
    by: User,
    *,
    if_match: str | None,
) -> Inspection:
    inspection = await get_inspection(session, order_id, by)
    check_if_match(if_match, inspection.version)
    if inspection.status != "open":
        raise Conflict("the inspection is completed; it takes no more changes")
    items = [InspectionItem.model_validate(i) for i in inspection.items]
    item = next((i for i in items if i.code == code), None)
    if item is None:
        raise NotFound(f"the inspection has no item {code}")
    if fill.value is not None and item.unit is None:
        raise InvalidInput("value", f"item {code} takes no measurement")
    item.status = _status_of(item, fill)
    item.note, item.value = fill.note, fill.value
    item.photo_file_ids = fill.photo_file_ids
    inspection.items = [i.model_dump(mode="json") for i in items]
    await session.flush()
    return inspection


def _proposal(items: list[InspectionItem]) -> ExtraWorkCreate | None:
    """Amber and red items as extra work: each item's canned lines (or, without any, a fee
    line naming it for the advisor to price), the findings item by item, their photos."""
    found = [i for i in items if i.status in ("amber", "red")]
    if not found:
        return None
    lines: list[ProposedLine] = []
    findings: list[str] = []
    photos: list[uuid.UUID] = []
    for item in found:
        measured = f" {item.value} {item.unit}" if item.value is not None else ""
        what = f"[{item.status}] {item.label_zh} / {item.label_en}{measured}"
        findings.append(f"{what}: {item.note}" if item.note else what)
        label = f"{item.label_zh} / {item.label_en}"
        if not item.proposed_lines:
            lines.append(ProposedLine(kind="fee", description=label))
        for line in item.proposed_lines:
            described = f"{label}: {line.description}" if line.description else label
            lines.append(line.model_copy(update={"description": described[:500]}))
        photos.extend(item.photo_file_ids)
    return ExtraWorkCreate(
        findings="\n".join(findings)[:4000],
        photo_file_ids=photos[:20],
        proposed_lines=lines[:50],
    )


async def complete_inspection(
    session: AsyncSession,
    order_id: uuid.UUID,
    by: User,
    now: datetime,
    *,
    if_match: str | None,
) -> Inspection:
    order = await service.get_repair_order(session, order_id, by)
    inspection = await _inspection(session, order)
    check_if_match(if_match, inspection.version)
    if inspection.status != "open":
        raise Conflict("the inspection is already completed")
    items = [InspectionItem.model_validate(i) for i in inspection.items]
    unanswered = [i.code for i in items if i.status is None]
    if unanswered:
        raise InvalidInput(
            "items", f"every item needs green, amber or red: {', '.join(unanswered)}"
        )
    proposal = _proposal(items)
    extra: ExtraWork | None = None
    if proposal is not None:
        extra = await service.report_extra_work(session, order.id, proposal, by, now)
    inspection.status = "completed"
    inspection.completed_by, inspection.completed_at = by.id, now
    inspection.extra_work_id = extra.id if extra else None
    counts = {s: sum(1 for i in items if i.status == s) for s in ("green", "amber", "red")}
    add_event(
        session,
        InspectionCompleted(
            inspection_id=inspection.id,
            repair_order_id=order.id,
            repair_order_number=order.number,
            branch=order.branch,
            vehicle_id=order.vehicle_id,
            vin=order.vin,
            plate=order.plate,
            completed_by=by.id,
            completed_at=now,
            counts=counts,
            items=[
                InspectionItemResult(
                    code=i.code,
                    area=i.area,
                    label_zh=i.label_zh,
                    label_en=i.label_en,
                    status=i.status or "green",
                    note=i.note,
                    value=i.value,
                    unit=i.unit,
                    photo_file_ids=i.photo_file_ids,
                )
                for i in items
            ],
            extra_work_id=inspection.extra_work_id,
        ),
        subject=order.id,
    )
    await session.flush()
    return inspection
