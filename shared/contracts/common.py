"""Snapshots that several contracts carry."""

import uuid
from decimal import Decimal

from pydantic import BaseModel


class CustomerSnapshot(BaseModel):
    id: uuid.UUID
    name: str
    mobile: str | None = None
    preferred_channel: str = "phone"
    language: str = "zh-CN"
    contact_consent: bool = True


class VehicleSnapshot(BaseModel):
    id: uuid.UUID
    vin: str
    plate: str | None = None
    make: str | None = None
    model: str | None = None
    model_year: int | None = None


class EstimateLine(BaseModel):
    """One line of an estimate as it travels between reception and workorders.

    Labour lines carry op code, flat-rate hours and rate; parts lines part number, quantity
    and unit price; fees a description and unit price. Money is Decimal, in `currency` of
    the carrying event, before tax; `net` is the line total after discount."""

    line_id: uuid.UUID
    kind: str  # labour, part, fee
    description: str = ""
    op_code: str | None = None
    op_group: str | None = None
    job_kind: str = "repair"  # repair, maintenance, recall, warranty
    flat_rate_hours: Decimal = Decimal("0")
    labour_rate: Decimal = Decimal("0")
    part_number: str | None = None
    quantity: Decimal = Decimal("1")
    unit_price: Decimal = Decimal("0")
    discount: Decimal = Decimal("0")
    tax_rate: Decimal = Decimal("0.13")
    net: Decimal = Decimal("0")
    pay_type: str = "customer"  # customer, warranty, internal
    # The extra work found in the workshop that this line answers (None: the advisor's own
    # line). Reception sends the key on every line; a line without it comes from an event
    # written before it existed, whose lines all answer the event's `extra_work_id`.
    extra_work_id: uuid.UUID | None = None
