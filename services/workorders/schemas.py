"""Workorders' request bodies: what tablets send, validated before any use case runs."""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from services.workorders.states import PartStatus, RepairOrderStatus
from shared.types import Day, Instant

# --- request bodies -------------------------------------------------------------------


class OrderTransition(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"to": "qc"}, {"to": "cancelled", "reason": "customer withdrew"}]
        },
    )

    to: RepairOrderStatus
    reason: str | None = Field(default=None, max_length=500)


class JobAssignment(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "technician_id": "tech-li",
                    "bay": "B3",
                    "planned_start_at": "2026-11-30T01:30:00Z",
                }
            ]
        },
    )

    technician_id: str = Field(min_length=1, max_length=64)
    bay: str = Field(min_length=1, max_length=32)
    planned_start_at: Instant | None = None


class StopReason(StrEnum):
    finished = "finished"
    break_ = "break"
    waiting_parts = "waiting_parts"
    end_of_shift = "end_of_shift"
    other = "other"


class ClockOff(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "finished"}, {"reason": "waiting_parts"}]},
    )

    reason: StopReason = StopReason.finished


class ProposedLine(BaseModel):
    """A line of extra work as the technician proposes it, without a price (the advisor
    prices it at reception); complete for its kind, as reception needs it to be."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["labour", "part", "fee"]
    description: str = Field(default="", max_length=500)
    op_code: str | None = Field(default=None, max_length=32)
    op_group: str | None = Field(default=None, max_length=32)
    flat_rate_hours: Decimal = Field(default=Decimal("0"), ge=0, le=100, decimal_places=2)
    part_number: str | None = Field(default=None, max_length=64)
    quantity: Decimal = Field(default=Decimal("1"), gt=0, le=10000, decimal_places=3)

    @model_validator(mode="after")
    def _complete_for_its_kind(self) -> "ProposedLine":
        # Reception refuses an incomplete line when it writes the revision for consent: the
        # finding would never reach the customer, so it is refused here, at the tablet.
        if self.kind == "labour" and not (self.op_code or "").strip():
            raise ValueError("op_code: a labour line needs its op code")
        if self.kind == "labour" and self.flat_rate_hours <= 0:
            raise ValueError("flat_rate_hours: a labour line needs its hours, above zero")
        if self.kind == "part" and not (self.part_number or "").strip():
            raise ValueError("part_number: a parts line needs its part number")
        if self.kind == "fee" and not self.description.strip():
            raise ValueError("description: a fee needs its description")
        return self


class ExtraWorkCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "job_id": "6f1c2a57-8a43-4a53-9d5b-0f4d2b8e9c11",
                    "findings": "前刹车片磨损至2mm / front pads worn to 2 mm",
                    "photo_file_ids": ["0b5f0a3e-7d0e-4bd4-8d1e-5f7b3c2a9e10"],
                    "proposed_lines": [
                        {
                            "kind": "labour",
                            "op_code": "BRK-010",
                            "op_group": "brakes",
                            "description": "Replace front pads",
                            "flat_rate_hours": "0.8",
                        },
                        {
                            "kind": "part",
                            "part_number": "BP-4411",
                            "quantity": "1",
                            "description": "Front pad set",
                        },
                    ],
                }
            ]
        },
    )

    job_id: uuid.UUID | None = None
    findings: str = Field(min_length=1, max_length=4000)
    photo_file_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    proposed_lines: list[ProposedLine] = Field(min_length=1, max_length=50)


class ChecklistItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: str = Field(min_length=1, max_length=200)
    ok: bool


class QcVerdict(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "passed": True,
                    "road_test": True,
                    "checklist": [{"item": "torque checked", "ok": True}],
                },
                {
                    "passed": False,
                    "reason": "pads squeal on braking",
                    "checklist": [{"item": "no noise", "ok": False}],
                },
            ]
        },
    )

    passed: StrictBool
    checklist: list[ChecklistItem] = Field(default_factory=list, max_length=100)
    reason: str | None = Field(default=None, max_length=2000)
    road_test: StrictBool = False


class QcInspectionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    job_id: uuid.UUID
    inspector: str
    passed: bool
    checklist: list[ChecklistItem]
    reason: str | None
    road_test: bool
    inspected_at: datetime


class PaymentMethod(StrEnum):
    cash = "cash"
    card = "card"
    wechat = "wechat"
    alipay = "alipay"
    transfer = "transfer"


class Payment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: PaymentMethod
    amount: Decimal = Field(ge=0, le=Decimal("10000000"), decimal_places=2)


class Discount(BaseModel):
    """A discount at settlement: on one invoice line (`line_id`) or, without it, on the
    whole customer-paid part of the order; a percentage or an amount, always with a reason."""

    model_config = ConfigDict(extra="forbid")

    line_id: uuid.UUID | None = None
    percent: Decimal | None = Field(default=None, gt=0, le=100, decimal_places=2)
    amount: Decimal | None = Field(default=None, gt=0, le=Decimal("10000000"), decimal_places=2)
    reason: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def one_kind(self) -> "Discount":
        if (self.percent is None) == (self.amount is None):
            raise ValueError("give either percent or amount")
        return self


class Settlement(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"payments": [{"method": "wechat", "amount": "1130.00"}]},
                {
                    "discounts": [{"percent": "5", "reason": "会员折扣 / loyalty member"}],
                    "payments": [{"method": "card", "amount": "1073.50"}],
                },
            ]
        },
    )

    payments: list[Payment] = Field(default_factory=list, max_length=10)
    discounts: list[Discount] = Field(default_factory=list, max_length=50)


class Handover(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "charges_explained": True,
                    "old_parts_offered": True,
                    "keys_returned": True,
                    "declined_work_told": True,
                    "work_explained": True,
                    "car_cleaned": True,
                    "valuables_returned": True,
                    "next_service_on": "2027-06-01",
                    "next_service_km": 20000,
                }
            ]
        },
    )

    charges_explained: StrictBool
    old_parts_offered: StrictBool
    keys_returned: StrictBool
    declined_work_told: StrictBool
    # The rest of the hand-over checklist; absent means not done (older tablets).
    work_explained: StrictBool = False
    car_cleaned: StrictBool = False
    valuables_returned: StrictBool = False
    # When and at what odometer reading the car is due back (the sticker on the windscreen).
    next_service_on: Day | None = None
    next_service_km: int | None = Field(default=None, gt=0, le=2_000_000)
    note: str | None = Field(default=None, max_length=2000)


class HandoverRecord(Handover):
    """The checklist as the advisor ticked it, and who handed the car over."""

    model_config = ConfigDict(extra="ignore")

    by: str


class PartRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"part_number": "CL-0091", "quantity": "2", "description": "clips"}]
        },
    )

    part_number: str = Field(min_length=1, max_length=64)
    quantity: Decimal = Field(default=Decimal("1"), gt=0, le=10000, decimal_places=3)
    description: str = Field(default="", max_length=500)


class PartMove(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"to": "ordered", "eta_at": "2026-12-01T06:00:00Z"}, {"to": "issued"}]
        },
    )

    to: PartStatus
    eta_at: Instant | None = None


class NewPromise(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"promised_at": "2026-11-30T10:30:00Z", "told_at": "2026-11-30T07:05:00Z"}]
        },
    )

    promised_at: Instant
    told_at: Instant | None = None
