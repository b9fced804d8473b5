"""Every event contract of the platform, in one place.

Producers build these; consumers receive them. Fields are only ever added (optional);
a breaking change gets a new `.v2` class beside the old one.
"""

import uuid
from datetime import datetime

from pydantic import BaseModel

from shared.events import Contract


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


# --- reception ---------------------------------------------------------------------


class CustomerRegistered(Contract):
    type = "reception.customer.registered.v1"

    branch: str
    customer: CustomerSnapshot
    registered_at: datetime


class VehicleRegistered(Contract):
    type = "reception.vehicle.registered.v1"

    branch: str
    customer_id: uuid.UUID
    vehicle: VehicleSnapshot
    registered_at: datetime


class IntakeOpened(Contract):
    type = "reception.intake.opened.v1"

    intake_id: uuid.UUID
    branch: str
    opened_at: datetime
    advisor: str
    customer: CustomerSnapshot
    vehicle: VehicleSnapshot
    odometer_km: int
    concerns: list[str] = []
    appointment_id: uuid.UUID | None = None


# --- workorders --------------------------------------------------------------------


class RepairOrderOpened(Contract):
    type = "workorders.repair_order.opened.v1"

    repair_order_id: uuid.UUID
    number: str
    branch: str
    intake_id: uuid.UUID
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID
    vin: str
    status: str
    opened_at: datetime
