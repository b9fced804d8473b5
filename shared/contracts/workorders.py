"""Events workorders publishes."""

import uuid
from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel

from shared.contracts.common import EstimateLine
from shared.events import Contract


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


class DeliveredJob(BaseModel):
    """A job of a delivered repair order, as followup and records need it."""

    job_id: uuid.UUID
    op_code: str
    op_group: str
    description: str = ""
    kind: str = "repair"  # repair, maintenance, recall, warranty
    technician_id: str | None = None
    flat_rate_hours: Decimal = Decimal("0")


class RepairOrderDelivered(Contract):
    type = "workorders.repair_order.delivered.v1"

    repair_order_id: uuid.UUID
    number: str
    branch: str
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID
    vin: str
    plate: str | None = None
    advisor: str
    odometer_km: int
    delivered_at: datetime
    promised_at: datetime | None = None
    jobs: list[DeliveredJob] = []
    declined_work: list[str] = []
    # The next service the advisor wrote on the hand-over checklist, if any.
    next_service_on: date | None = None
    next_service_km: int | None = None


class ExtraWorkFound(Contract):
    """A technician found more work; reception turns it into a revision for consent.
    None of `proposed_lines` starts before an EstimateApproved with this
    `extra_work_id` arrives."""

    type = "workorders.extra_work.found.v1"

    extra_work_id: uuid.UUID
    repair_order_id: uuid.UUID
    repair_order_number: str
    intake_id: uuid.UUID
    estimate_id: uuid.UUID | None = None
    branch: str
    found_by: str
    findings: str
    photo_file_ids: list[uuid.UUID] = []
    proposed_lines: list[EstimateLine] = []
    found_at: datetime


class InvoiceLine(BaseModel):
    """One line of a settlement invoice, before tax: quantity x unit_price - discount =
    net, rounded half up to the fen once (the sum of the lines' nets is the invoice's net).
    A labour line's quantity is its flat-rate hours and its unit_price the labour rate."""

    line_id: uuid.UUID
    kind: str  # labour, part, fee
    description: str = ""
    op_code: str | None = None
    part_number: str | None = None
    quantity: Decimal = Decimal("1")
    unit_price: Decimal = Decimal("0")
    net: Decimal = Decimal("0")
    tax_rate: Decimal = Decimal("0.13")
    pay_type: str = "customer"  # customer, warranty, internal
    # Every discount on the line, already taken off `net`: the one agreed on the estimate
    # and any granted at settlement (`discount_reason` says why the latter was granted).
    discount: Decimal = Decimal("0")
    discount_reason: str | None = None
    # The part of `discount` agreed on the estimate; the rest was granted at settlement.
    agreed_discount: Decimal = Decimal("0")


class PayTypeTotal(BaseModel):
    """What one payer owes: net, tax (rounded once per pay type) and gross."""

    pay_type: str
    net: Decimal
    tax: Decimal
    gross: Decimal


class PaymentTaken(BaseModel):
    method: str  # cash, card, wechat, alipay, transfer
    amount: Decimal


class RepairOrderSettled(Contract):
    """The cashier settled the repair order: what the ERP needs to book the invoice."""

    type = "workorders.repair_order.settled.v1"

    repair_order_id: uuid.UUID
    number: str
    invoice_number: str
    branch: str
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID
    vin: str
    currency: str = "CNY"
    lines: list[InvoiceLine] = []
    totals: list[PayTypeTotal] = []
    net_total: Decimal = Decimal("0")
    tax_total: Decimal = Decimal("0")
    gross_total: Decimal = Decimal("0")
    customer_due: Decimal = Decimal("0")
    payments: list[PaymentTaken] = []
    # Sum of the lines' discounts, agreed and granted at settlement (totals are after it).
    discount_total: Decimal = Decimal("0")
    settled_by: str
    settled_at: datetime


class RepairOrderAtRisk(Contract):
    """The projected finish of a repair order has passed its promise (or is within the
    branch's margin of it): the advisor should call the customer now."""

    type = "workorders.repair_order.at_risk.v1"

    repair_order_id: uuid.UUID
    number: str
    branch: str
    advisor: str
    customer_id: uuid.UUID
    plate: str | None = None
    promised_at: datetime
    projected_finish_at: datetime
    remaining_hours: Decimal = Decimal("0")
    detected_at: datetime


class JobClocked(Contract):
    """A technician clocked off a job (finished it, or paused it with a reason): one
    closed clock segment. Sum of `hours` per technician and day is the time worked on jobs;
    the repair order's flat-rate hours over it is the technician's efficiency."""

    type = "workorders.job.clocked.v1"

    clock_id: uuid.UUID
    repair_order_id: uuid.UUID
    number: str
    branch: str
    job_id: uuid.UUID
    op_code: str
    technician_id: str
    flat_rate_hours: Decimal = Decimal("0")
    started_at: datetime
    ended_at: datetime
    hours: Decimal
    reason: str = "done"  # done, or the pause reason (waiting_parts, break, ...)


class QcRecorded(Contract):
    """Quality control of a job: passed, or failed with a reason (the job goes back for
    rework)."""

    type = "workorders.job.qc_recorded.v1"

    qc_id: uuid.UUID
    repair_order_id: uuid.UUID
    number: str
    branch: str
    job_id: uuid.UUID
    op_code: str
    technician_id: str | None = None
    passed: bool
    reason: str = ""
    road_test: bool = False
    inspected_by: str
    inspected_at: datetime


class RepairOrderReady(Contract):
    """Every job passed QC (and the wash, when there is one): the car can be collected.
    `amount_due` is what the customer pays at the desk (the customer pay type's gross)."""

    type = "workorders.repair_order.ready.v1"

    repair_order_id: uuid.UUID
    number: str
    branch: str
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID
    plate: str | None = None
    advisor: str
    currency: str = "CNY"
    amount_due: Decimal = Decimal("0")
    ready_at: datetime


class RepairOrderPromiseChanged(Contract):
    """The advisor agreed a new promise with the customer (`POST /repair-orders/{id}/promise`):
    the car will be ready later (or earlier) than said before."""

    type = "workorders.repair_order.promise_changed.v1"

    repair_order_id: uuid.UUID
    number: str
    branch: str
    customer_id: uuid.UUID
    plate: str | None = None
    advisor: str
    previous_promised_at: datetime | None = None
    promised_at: datetime
    told_at: datetime | None = None
    changed_by: str
    changed_at: datetime


class InspectionItemResult(BaseModel):
    """One item of a completed multi-point inspection as the customer's records keep it."""

    code: str
    area: str
    label_zh: str
    label_en: str
    status: str  # green, amber, red
    note: str = ""
    value: Decimal | None = None
    unit: str | None = None
    photo_file_ids: list[uuid.UUID] = []


class InspectionCompleted(Contract):
    """A technician completed the multi-point inspection of a repair order; amber and red
    items went to the customer as extra work (`extra_work_id`, none when all was green)."""

    type = "workorders.inspection.completed.v1"

    inspection_id: uuid.UUID
    repair_order_id: uuid.UUID
    repair_order_number: str
    branch: str
    vehicle_id: uuid.UUID | None = None
    vin: str | None = None
    plate: str | None = None
    completed_by: str
    completed_at: datetime
    counts: dict[str, int] = {}
    items: list[InspectionItemResult] = []
    extra_work_id: uuid.UUID | None = None
