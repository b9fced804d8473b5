"""The report facts, kept from every service's events.

Each event owns its own columns of a fact row, so events of one repair order may arrive in
any order; a repeat writes the same values again (and the runner's inbox skips it anyway).
Where two events may carry the same field (an appointment's time, a complaint's severity),
the newer one by its own time wins.
"""

import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from services.records.handlers import subscriber
from services.records.report_models import (
    ReportAppointment,
    ReportClock,
    ReportComeback,
    ReportComplaint,
    ReportInvoiceTotal,
    ReportJob,
    ReportOrder,
    ReportQc,
    ReportSurvey,
    ReportVisit,
)
from shared.contracts.followup import (
    ComebackRecorded,
    ComplaintEscalated,
    ComplaintOpened,
    SurveyAnswered,
    VisitClosed,
)
from shared.contracts.reception import AppointmentBooked, AppointmentClosed
from shared.contracts.workorders import (
    JobClocked,
    QcRecorded,
    RepairOrderDelivered,
    RepairOrderOpened,
    RepairOrderSettled,
)

# Job kinds that are not a fix (first-time fix counts orders with at least one fix job);
# the same rule as followup's (`services/followup/rules.is_fix`).
NOT_FIX = frozenset({"maintenance", "recall"})
SERVQUAL = ("reliability", "responsiveness", "assurance", "empathy", "tangibles")


def cents(amount: Decimal) -> int:
    """Money or hours in hundredths, rounded half up once, here."""
    return int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


async def _ensure(session: AsyncSession, model: Any, key: Any, values: dict[str, Any]) -> Any:
    """The row with primary key `key`, inserted with `values` when missing, and held until
    the transaction ends. The insert does nothing when another transaction inserted the row
    first (replicas handling two events of one order at the same moment both go on, instead
    of one failing and retrying); the hold makes the second wait and then read what the
    first wrote, so a newer value is never overwritten by an older one read before it."""
    row = await session.get(model, key, with_for_update=True)
    if row is not None:
        return row
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.exec(insert(model).values(**values).on_conflict_do_nothing())
    return await session.get(model, key, with_for_update=True)


async def _order(session: AsyncSession, repair_order_id: uuid.UUID, branch: str) -> ReportOrder:
    order: ReportOrder = await _ensure(
        session,
        ReportOrder,
        repair_order_id,
        {"repair_order_id": repair_order_id, "branch": branch},
    )
    return order


@subscriber(RepairOrderOpened, durable="records__report_order_opened")
async def order_opened(event: RepairOrderOpened, session: AsyncSession) -> None:
    order = await _order(session, event.repair_order_id, event.branch)
    order.number = event.number
    order.vehicle_id, order.customer_id, order.vin = event.vehicle_id, event.customer_id, event.vin
    order.opened_at = event.opened_at
    await session.flush()


@subscriber(RepairOrderDelivered, durable="records__report_order_delivered")
async def order_delivered(event: RepairOrderDelivered, session: AsyncSession) -> None:
    order = await _order(session, event.repair_order_id, event.branch)
    order.number = event.number
    order.vehicle_id, order.customer_id, order.vin = event.vehicle_id, event.customer_id, event.vin
    order.advisor = event.advisor
    order.delivered_at, order.promised_at = event.delivered_at, event.promised_at
    order.has_fix = any(job.kind not in NOT_FIX for job in event.jobs)
    order.flat_rate_centihours = sum(cents(job.flat_rate_hours) for job in event.jobs)
    for job in event.jobs:
        row = await session.get(ReportJob, job.job_id)
        if row is None:
            row = ReportJob(
                job_id=job.job_id,
                repair_order_id=event.repair_order_id,
                branch=event.branch,
                op_code=job.op_code,
                op_group=job.op_group,
                kind=job.kind,
                delivered_at=event.delivered_at,
            )
            session.add(row)
        row.technician_id = job.technician_id
        row.flat_rate_centihours = cents(job.flat_rate_hours)
        row.delivered_at = event.delivered_at
    await session.flush()


@subscriber(RepairOrderSettled, durable="records__report_order_settled")
async def order_settled(event: RepairOrderSettled, session: AsyncSession) -> None:
    order = await _order(session, event.repair_order_id, event.branch)
    if order.settled_at is not None and order.settled_at > event.settled_at:
        return  # a newer settlement of the order is already in
    order.number = event.number
    order.vehicle_id, order.customer_id, order.vin = event.vehicle_id, event.customer_id, event.vin
    order.settled_at, order.invoice_number = event.settled_at, event.invoice_number
    totals: dict[tuple[str, str], list[int]] = {}
    for line in event.lines:
        kind = line.kind if line.kind in ("labour", "part") else "fee"
        net_hours = totals.setdefault((line.pay_type, kind), [0, 0])
        net_hours[0] += cents(line.net)
        if kind == "labour":
            net_hours[1] += cents(line.quantity)
    by_kind = {
        k: sum(v[0] for (_, kind), v in totals.items() if kind == k)
        for k in ("labour", "part", "fee")
    }
    order.labour_cents, order.parts_cents, order.fees_cents = (
        by_kind["labour"],
        by_kind["part"],
        by_kind["fee"],
    )
    order.net_cents = sum(by_kind.values())
    order.sold_centihours = sum(v[1] for v in totals.values())
    await session.exec(
        delete(ReportInvoiceTotal).where(
            col(ReportInvoiceTotal.repair_order_id) == event.repair_order_id
        )
    )
    for (pay_type, kind), (net, hours) in sorted(totals.items()):
        session.add(
            ReportInvoiceTotal(
                repair_order_id=event.repair_order_id,
                pay_type=pay_type,
                kind=kind,
                branch=event.branch,
                settled_at=event.settled_at,
                net_cents=net,
                centihours=hours,
            )
        )
    await session.flush()


@subscriber(JobClocked, durable="records__report_job_clocked")
async def job_clocked(event: JobClocked, session: AsyncSession) -> None:
    if await session.get(ReportClock, event.clock_id) is not None:
        return
    session.add(
        ReportClock(
            clock_id=event.clock_id,
            repair_order_id=event.repair_order_id,
            job_id=event.job_id,
            branch=event.branch,
            technician_id=event.technician_id,
            started_at=event.started_at,
            ended_at=event.ended_at,
            centihours=cents(event.hours),
        )
    )
    await session.flush()


@subscriber(QcRecorded, durable="records__report_qc")
async def qc_recorded(event: QcRecorded, session: AsyncSession) -> None:
    if await session.get(ReportQc, event.qc_id) is not None:
        return
    session.add(
        ReportQc(
            qc_id=event.qc_id,
            repair_order_id=event.repair_order_id,
            job_id=event.job_id,
            branch=event.branch,
            technician_id=event.technician_id,
            passed=event.passed,
            inspected_at=event.inspected_at,
        )
    )
    await session.flush()


async def _appointment(
    session: AsyncSession, event: AppointmentBooked | AppointmentClosed, at: datetime
) -> ReportAppointment:
    first = {
        "appointment_id": event.appointment_id,
        "branch": event.branch,
        "customer_id": event.customer_id,
        "scheduled_for": event.scheduled_for,
        "as_of": at,
    }
    row: ReportAppointment = await _ensure(session, ReportAppointment, event.appointment_id, first)
    if at >= row.as_of:
        row.scheduled_for, row.as_of = event.scheduled_for, at
    return row


@subscriber(AppointmentBooked, durable="records__report_appointment_booked")
async def appointment_booked(event: AppointmentBooked, session: AsyncSession) -> None:
    row = await _appointment(session, event, event.booked_at)
    row.booked_at = event.booked_at
    await session.flush()


@subscriber(AppointmentClosed, durable="records__report_appointment_closed")
async def appointment_closed(event: AppointmentClosed, session: AsyncSession) -> None:
    row = await _appointment(session, event, event.closed_at)
    row.outcome, row.closed_at = event.outcome, event.closed_at
    await session.flush()


@subscriber(VisitClosed, durable="records__report_visit_closed")
async def visit_closed(event: VisitClosed, session: AsyncSession) -> None:
    if await session.get(ReportVisit, event.visit_id) is not None:
        return
    session.add(
        ReportVisit(
            visit_id=event.visit_id,
            branch=event.branch,
            repair_order_id=event.repair_order_id,
            outcome=event.outcome,
            reached=event.reached,
            attempts=event.attempts,
            closed_at=event.closed_at,
        )
    )
    await session.flush()


@subscriber(SurveyAnswered, durable="records__report_survey")
async def survey_answered(event: SurveyAnswered, session: AsyncSession) -> None:
    if await session.get(ReportSurvey, event.survey_id) is not None:
        return
    survey = ReportSurvey(
        survey_id=event.survey_id,
        visit_id=event.visit_id,
        branch=event.branch,
        repair_order_id=event.repair_order_id,
        overall=event.overall,
        nps=event.nps,
        answered_at=event.answered_at,
    )
    for answer in event.servqual:
        if answer.dimension in SERVQUAL:
            setattr(survey, f"{answer.dimension}_expectation", answer.expectation)
            setattr(survey, f"{answer.dimension}_perception", answer.perception)
    session.add(survey)
    await session.flush()


@subscriber(ComebackRecorded, durable="records__report_comeback")
async def comeback_recorded(event: ComebackRecorded, session: AsyncSession) -> None:
    if await session.get(ReportComeback, event.comeback_id) is not None:
        return
    session.add(
        ReportComeback(
            comeback_id=event.comeback_id,
            branch=event.branch,
            repair_order_id=event.repair_order_id,
            earlier_repair_order_id=event.earlier_repair_order_id,
            op_group=event.op_group,
            technician_id=event.technician_id,
            delivered_at=event.delivered_at,
        )
    )
    await session.flush()


async def _complaint(
    session: AsyncSession, event: ComplaintOpened | ComplaintEscalated, at: datetime
) -> ReportComplaint:
    first = {
        "complaint_id": event.complaint_id,
        "branch": event.branch,
        "repair_order_id": event.repair_order_id,
        "severity": event.severity,
        "category": event.category,
        "severity_as_of": at,
    }
    row: ReportComplaint = await _ensure(session, ReportComplaint, event.complaint_id, first)
    if at >= row.severity_as_of:
        row.severity, row.category, row.severity_as_of = event.severity, event.category, at
    if row.repair_order_id is None:
        row.repair_order_id = event.repair_order_id
    return row


@subscriber(ComplaintOpened, durable="records__report_complaint_opened")
async def complaint_opened(event: ComplaintOpened, session: AsyncSession) -> None:
    row = await _complaint(session, event, event.opened_at)
    row.opened_at, row.origin = event.opened_at, event.origin
    await session.flush()


@subscriber(ComplaintEscalated, durable="records__report_complaint_escalated")
async def complaint_escalated(event: ComplaintEscalated, session: AsyncSession) -> None:
    await _complaint(session, event, event.escalated_at)
    await session.flush()
