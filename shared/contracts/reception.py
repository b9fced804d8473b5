"""Events reception publishes."""

import uuid
from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel

from shared.contracts.common import CustomerSnapshot, EstimateLine, VehicleSnapshot
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


class DamageMarkRef(BaseModel):
    """A damage mark of the walk-around: where, what, and its photo (a file in records)."""

    position: str
    kind: str  # scratch, dent, crack, chip, other
    note: str = ""
    photo_file_id: uuid.UUID | None = None


class IntakeInspected(Contract):
    """The walk-around (环车检查) as it stands after a change to its damage marks, photos or
    signature: the whole current state, not the difference. `version` is the intake's
    version after the change and only grows, so a consumer keeps the highest it has seen
    and ignores repeats and stragglers, whatever order they arrive in."""

    type = "reception.intake.inspected.v1"

    intake_id: uuid.UUID
    branch: str
    version: int
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID
    vin: str
    damage_marks: list[DamageMarkRef] = []
    signature_file_id: uuid.UUID | None = None
    inspected_by: str
    inspected_at: datetime


class ConsentRef(BaseModel):
    """Who consented, how and when: the ledger entry behind an approved or declined line."""

    line_id: uuid.UUID
    decision: str  # approved, declined
    by: str
    channel: str  # in_person, phone, link
    at: datetime


class EstimateApproved(Contract):
    """The customer has answered every line of an estimate revision. Workorders opens
    the repair order from the approved lines, or extends it when `repair_order_id` or
    `extra_work_id` says the revision answers work found in the workshop. Every line of
    the revision is carried (the workshop adds what it does not hold yet), each naming the
    extra work it answers in its own `extra_work_id`."""

    type = "reception.estimate.approved.v1"

    estimate_id: uuid.UUID
    revision: int
    intake_id: uuid.UUID
    branch: str
    customer_id: uuid.UUID
    customer_name: str
    vehicle_id: uuid.UUID
    vin: str
    plate: str | None = None
    advisor: str
    odometer_km: int
    currency: str = "CNY"
    promised_at: datetime
    approved_lines: list[EstimateLine] = []
    declined_lines: list[EstimateLine] = []
    consents: list[ConsentRef] = []
    approved_at: datetime
    repair_order_id: uuid.UUID | None = None
    extra_work_id: uuid.UUID | None = None


class AppointmentBooked(Contract):
    """A booking took capacity on a branch's day (also sent again after a reschedule,
    with the new slot: the latest event per `appointment_id` is the booking)."""

    type = "reception.appointment.booked.v1"

    appointment_id: uuid.UUID
    branch: str
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID | None = None
    scheduled_for: datetime
    planned_hours: Decimal = Decimal("0")
    booked_by: str
    booked_at: datetime


class AppointmentClosed(Contract):
    """How a booking ended: the car arrived, did not come, or the booking was cancelled.
    Show rate = arrived ÷ (arrived + no_show) over the appointments scheduled in a period."""

    type = "reception.appointment.closed.v1"

    appointment_id: uuid.UUID
    branch: str
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID | None = None
    scheduled_for: datetime
    outcome: str  # arrived, no_show, cancelled
    closed_by: str
    closed_at: datetime


class CustomerUpdated(Contract):
    """A customer's details changed at the desk (name, numbers, channel, language,
    consent to be contacted): the snapshot is the customer as it is now."""

    type = "reception.customer.updated.v1"

    branch: str
    customer: CustomerSnapshot
    mobiles: list[str] = []
    updated_by: str
    updated_at: datetime


class VehicleOwnerChanged(Contract):
    """A vehicle passed to another customer; the earlier owner's history stays theirs."""

    type = "reception.vehicle.owner_changed.v1"

    branch: str
    vehicle: VehicleSnapshot
    previous_customer_id: uuid.UUID
    customer_id: uuid.UUID
    reason: str = ""
    changed_by: str
    changed_at: datetime


class OpeningHours(BaseModel):
    """One weekday's opening hours, or a working shift, on the branch's local clock."""

    start: str  # "08:30"
    end: str  # "17:30"


class BranchChanged(Contract):
    """A branch of the directory as it is now (created or edited): its zone, hours, tax
    rate, daily capacity, follow-up day and targets. `version` only grows: a consumer keeps
    the highest it has seen and ignores repeats and stragglers."""

    type = "reception.branch.changed.v1"

    branch: str
    version: int
    name: str
    address: str = ""
    time_zone: str
    # Weekday ("mon" … "sun") → opening hours; a weekday left out is closed.
    business_hours: dict[str, OpeningHours] = {}
    tax_rate: Decimal
    daily_bays: int
    daily_technician_hours: Decimal
    follow_up_day: int
    # KPI name → target (on_time_delivery, first_time_fix, csi, major_complaint_rate …).
    targets: dict[str, Decimal] = {}
    changed_by: str
    changed_at: datetime


class StaffMemberChanged(Contract):
    """A member of a branch's staff roster as they are now: `staff_id` is the `sub` of
    their token, the id a job is dispatched to. `active` false: left the roster. `version`
    only grows, per member."""

    type = "reception.staff_member.changed.v1"

    branch: str
    staff_id: str
    version: int
    name: str
    roles: list[str] = []
    skills: list[str] = []
    bay: str | None = None
    # Weekday ("mon" … "sun") → shift; a weekday left out is a day off every week.
    working_hours: dict[str, OpeningHours] = {}
    days_off: list[date] = []
    active: bool = True
    changed_by: str
    changed_at: datetime
