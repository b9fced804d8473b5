"""Events reception publishes."""

import uuid
from datetime import datetime

from shared.contracts.common import CustomerSnapshot, VehicleSnapshot
from shared.events import Contract


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
