"""Workorders' use cases: change rows and add outbox events; flush, never commit."""

import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.workorders import invoicing
from services.workorders.models import (
    ExtraWork,
    ExtraWorkPublic,
    ExtraWorkStatus,
    InvoicePrint,
    InvoicePrintRecord,
    Job,
    JobPublic,
    MyJob,
    PartLine,
    PartLinePublic,
    PromiseCheck,
    QcInspection,
    RepairOrder,
    RepairOrderDetail,
    RepairOrderNumber,
    TimeEntry,
)
from services.workorders.schemas import (
    ExtraWorkCreate,
    Handover,
    OrderTransition,
    PartMove,
    PartRequest,
    QcVerdict,
    Settlement,
)
from services.workorders.states import (
    WORKING,
    JobStatus,
    PartStatus,
    RepairOrderStatus,
    can_move_order,
    move_job,
    move_order,
    move_part,
)
from shared import audit
from shared.auth import Role, User
from shared.concurrency import check_if_match
from shared.contracts import (
    DeliveredJob,
    EstimateApproved,
    EstimateLine,
    ExtraWorkFound,
    IntakeOpened,
    RepairOrderDelivered,
    RepairOrderOpened,
)
from shared.contracts.workorders import (
    PaymentTaken,
    QcRecorded,
    RepairOrderReady,
    RepairOrderSettled,
)
from shared.events import utcnow
from shared.outbox import add_event
from shared.pagination import after, page
from shared.problems import Conflict, Forbidden, InvalidInput, NotFound
from shared.references import referenced
from shared.types import UTCDateTime

log = logging.getLogger(__name__)
CENT = Decimal("0.01")


async def next_number(session: AsyncSession, branch: str, year: int) -> str:
    """Atomically take the next readable number of the branch for the year."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = RepairOrderNumber.__table__  # type: ignore[attr-defined]
    statement = (
        insert(table)
        .values(branch=branch, year=year, last=1)
        .on_conflict_do_update(
            index_elements=["branch", "year"], set_={"last": table.c["last"] + 1}
        )
        .returning(table.c["last"])
    )
    last = (await session.exec(statement)).scalar_one()
    return f"RO-{year}-{last:06d}"


async def open_draft_from_intake(session: AsyncSession, event: IntakeOpened) -> RepairOrder:
    """A draft repair order for the intake; the same intake never gets two."""
    existing = (
        await session.exec(select(RepairOrder).where(RepairOrder.intake_id == event.intake_id))
    ).first()
    if existing is not None:
        return existing
    order = RepairOrder(
        number=await next_number(session, event.branch, event.opened_at.year),
        branch=event.branch,
        intake_id=event.intake_id,
        customer_id=event.customer.id,
        vehicle_id=event.vehicle.id,
        vin=event.vehicle.vin,
        plate=event.vehicle.plate,
        customer_name=event.customer.name,
        advisor=event.advisor,
        odometer_km=event.odometer_km,
        status=RepairOrderStatus.draft,
    )
    session.add(order)
    _announce_opened(session, order)
    return order


def _announce_opened(session: AsyncSession, order: RepairOrder) -> None:
    add_event(
        session,
        RepairOrderOpened(
            repair_order_id=order.id,
            number=order.number,
            branch=order.branch,
            intake_id=order.intake_id,
            customer_id=order.customer_id,
            vehicle_id=order.vehicle_id,
            vin=order.vin,
            status=order.status,
            opened_at=order.opened_at,
        ),
        subject=order.id,
    )


async def get_repair_order(session: AsyncSession, order_id: uuid.UUID, by: User) -> RepairOrder:
    order = await session.get(RepairOrder, order_id)
    if order is None or order.branch != by.branch:
        raise NotFound(f"repair order {order_id} not found")
    return order


async def list_repair_orders(
    session: AsyncSession,
    by: User,
    *,
    intake_id: uuid.UUID | None,
    status: RepairOrderStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[RepairOrder], str | None]:
    query = select(RepairOrder).where(RepairOrder.branch == by.branch)
    if intake_id is not None:
        query = query.where(RepairOrder.intake_id == intake_id)
    if status is not None:
        query = query.where(RepairOrder.status == status)
    query = (
        query.where(after(RepairOrder.opened_at, RepairOrder.id, cursor))
        .order_by(col(RepairOrder.opened_at).desc(), col(RepairOrder.id).desc())
        .limit(limit + 1)
    )
    return page(list((await session.exec(query)).all()), limit, "opened_at")


# --- consent: repair orders and jobs from approved estimates -----------------------------


def _line_json(line: EstimateLine) -> dict[str, Any]:
    return line.model_dump(mode="json")


async def _order_for_consent(session: AsyncSession, event: EstimateApproved) -> RepairOrder:
    order: RepairOrder | None
    if event.repair_order_id is not None:
        order = await session.get(RepairOrder, event.repair_order_id)
    else:
        order = (
            await session.exec(select(RepairOrder).where(RepairOrder.intake_id == event.intake_id))
        ).first()
    if order is not None:
        return order
    # The consent overtook the intake event: open the order from what the consent carries;
    # the intake event, when it comes, finds it and leaves it alone.
    order = RepairOrder(
        number=await next_number(session, event.branch, event.approved_at.year),
        branch=event.branch,
        intake_id=event.intake_id,
        customer_id=event.customer_id,
        vehicle_id=event.vehicle_id,
        vin=event.vin,
        plate=event.plate,
        customer_name=event.customer_name,
        advisor=event.advisor,
        odometer_km=event.odometer_km,
        status=RepairOrderStatus.draft,
        currency=event.currency,
    )
    session.add(order)
    _announce_opened(session, order)
    return order


def record_promise(
    order: RepairOrder, promised_at: datetime, agreed_at: datetime, source: str
) -> None:
    """Keep every promise; the one agreed last counts, whatever order events came in."""
    entry = {
        "promised_at": promised_at.isoformat(),
        "agreed_at": agreed_at.isoformat(),
        "source": source,
    }
    if entry in order.promises:
        return
    promises = sorted(
        [*order.promises, entry], key=lambda p: datetime.fromisoformat(p["agreed_at"])
    )
    order.promises = promises
    order.promised_at = datetime.fromisoformat(promises[-1]["promised_at"])


def _request_part(
    session: AsyncSession,
    order: RepairOrder,
    job_id: uuid.UUID | None,
    line: EstimateLine,
    by: str,
) -> None:
    session.add(
        PartLine(
            repair_order_id=order.id,
            job_id=job_id,
            branch=order.branch,
            line_id=line.line_id,
            part_number=line.part_number or "",
            description=line.description,
            quantity=str(line.quantity),
            requested_by=by,
        )
    )


def _attach_parts(
    labour: list[EstimateLine], parts: Iterable[EstimateLine]
) -> tuple[dict[uuid.UUID, list[EstimateLine]], list[EstimateLine]]:
    """A part belongs to the labour line with its op code; the rest are order lines."""
    by_op = {line.op_code: line.line_id for line in labour if line.op_code}
    attached: dict[uuid.UUID, list[EstimateLine]] = {}
    loose: list[EstimateLine] = []
    for part in parts:
        owner = by_op.get(part.op_code) if part.op_code else None
        if owner is None:
            loose.append(part)
        else:
            attached.setdefault(owner, []).append(part)
    return attached, loose


def _extra_work_of(line: EstimateLine, event: EstimateApproved) -> uuid.UUID | None:
    """The extra work a line answers. Reception names it on every line; an event written
    before lines named it carried only the extra work's own lines."""
    if "extra_work_id" in line.model_fields_set:
        return line.extra_work_id
    return event.extra_work_id


async def _answer_extra_work(
    session: AsyncSession, order: RepairOrder, event: EstimateApproved
) -> None:
    """Each extra work the revision answers: approved, partly approved or declined, by the
    answers to its own lines (a revision that names it but holds none of them declined it)."""
    answers: dict[uuid.UUID, list[bool]] = {}
    if event.extra_work_id is not None:
        answers[event.extra_work_id] = []
    for approved, lines in ((True, event.approved_lines), (False, event.declined_lines)):
        for line in lines:
            if (extra_id := _extra_work_of(line, event)) is not None:
                answers.setdefault(extra_id, []).append(approved)
    for extra_id, approvals in answers.items():
        extra = await session.get(ExtraWork, extra_id)
        if extra is None or extra.repair_order_id != order.id:
            continue
        status = (
            ExtraWorkStatus.declined
            if not any(approvals)
            else ExtraWorkStatus.approved
            if all(approvals)
            else ExtraWorkStatus.partly_approved
        )
        # Later revisions carry the same answers again: the first answer's time stays.
        if status != extra.status or extra.answered_at is None:
            extra.status, extra.answered_at = status, event.approved_at


async def apply_consent(session: AsyncSession, event: EstimateApproved) -> RepairOrder | None:
    """Turn the customer's answer into jobs on the repair order of the intake."""
    order = await _order_for_consent(session, event)
    if order.branch != event.branch:
        log.warning("consent %s names an order of another branch; ignored", event.estimate_id)
        return None
    if order.status in (
        RepairOrderStatus.settled,
        RepairOrderStatus.delivered,
        RepairOrderStatus.cancelled,
    ):
        log.warning(
            "consent %s for repair order %s in %s; ignored",
            event.estimate_id,
            order.number,
            order.status,
        )
        return order
    await _answer_extra_work(session, order, event)
    if event.extra_work_id is None:
        order.estimate_id = event.estimate_id
    order.currency = event.currency

    existing = list((await session.exec(select(Job).where(Job.repair_order_id == order.id))).all())
    known_lines = (
        {job.line_id for job in existing}
        | {uuid.UUID(p["line_id"]) for job in existing for p in job.parts}
        | {uuid.UUID(line["line_id"]) for line in order.other_lines}
    )

    labour = [line for line in event.approved_lines if line.kind == "labour"]
    others = [line for line in event.approved_lines if line.kind != "labour"]
    attached, loose = _attach_parts(labour, [p for p in others if p.kind == "part"])
    loose += [line for line in others if line.kind != "part"]
    added = 0
    new_jobs: dict[uuid.UUID, Job] = {}
    for line in labour:
        if line.line_id in known_lines:
            continue
        job = Job(
            repair_order_id=order.id,
            branch=order.branch,
            line_id=line.line_id,
            op_code=line.op_code or "",
            op_group=line.op_group or "",
            description=line.description,
            kind=line.job_kind,
            pay_type=line.pay_type,
            line=_line_json(line),
            parts=[_line_json(p) for p in attached.get(line.line_id, [])],
            extra_work_id=_extra_work_of(line, event),
        )
        session.add(job)
        new_jobs[line.line_id] = job
        added += 1
    for owner, parts in attached.items():
        for part in parts:
            if owner in new_jobs:
                _request_part(session, order, new_jobs[owner].id, part, event.advisor)
    for part in loose:
        if part.kind == "part" and part.line_id not in known_lines:
            _request_part(session, order, None, part, event.advisor)
    new_loose = [_line_json(line) for line in loose if line.line_id not in known_lines]
    if new_loose:
        order.other_lines = [*order.other_lines, *new_loose]

    declined_ids = {line.line_id for line in event.declined_lines}
    recorded = {uuid.UUID(line["line_id"]) for line in order.declined_lines}
    fresh = [_line_json(line) for line in event.declined_lines if line.line_id not in recorded]
    if fresh:
        order.declined_lines = [*order.declined_lines, *fresh]
    # A later revision may decline what an earlier one approved: untouched jobs go.
    for job in existing:
        if job.line_id in declined_ids and job.status in (JobStatus.pending, JobStatus.assigned):
            job.status = move_job(job.status, JobStatus.cancelled)

    record_promise(
        order,
        event.promised_at,
        event.approved_at,
        "extra_work" if event.extra_work_id is not None else "estimate",
    )
    if order.status == RepairOrderStatus.draft and (added or event.approved_lines):
        order.status = move_order(order.status, RepairOrderStatus.open)
    elif added and order.status in (RepairOrderStatus.qc, RepairOrderStatus.ready):
        order.status = move_order(order.status, RepairOrderStatus.in_progress)
    await session.flush()
    return order


# --- reading --------------------------------------------------------------------------


async def actual_seconds(
    session: AsyncSession, job_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, float]:
    """Clocked seconds per job, a running clock counted up to `now`: summed by the
    database, one row per job (the promise check reads every open job's, every few
    seconds while technicians clock; summing the entries here held the loop for 20 ms)."""
    if not job_ids:
        return {}
    te = TimeEntry.__table__  # type: ignore[attr-defined]
    end = func.coalesce(te.c.ended_at, literal(now, UTCDateTime()))
    if session.get_bind().dialect.name == "sqlite":
        # julianday keeps about 20 microseconds at today's dates: rounded to milliseconds.
        span: Any = func.round((func.julianday(end) - func.julianday(te.c.started_at)) * 86400.0, 3)
    else:
        span = func.extract("epoch", end - te.c.started_at)
    counted = case((span > 0, span), else_=0)
    rows = await session.exec(
        select(te.c.job_id, func.sum(counted)).where(te.c.job_id.in_(job_ids)).group_by(te.c.job_id)
    )
    return {job_id: float(total or 0) for job_id, total in rows}


async def parts_eta(session: AsyncSession, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    """When the last part each job waits for is due (ordered parts with an ETA)."""
    if not job_ids:
        return {}
    query = select(PartLine).where(
        col(PartLine.job_id).in_(job_ids),
        col(PartLine.status).in_([PartStatus.requested, PartStatus.ordered]),
        col(PartLine.eta_at).is_not(None),
    )
    result: dict[uuid.UUID, datetime] = {}
    for part in (await session.exec(query)).all():
        assert part.job_id is not None and part.eta_at is not None
        result[part.job_id] = max(result.get(part.job_id, part.eta_at), part.eta_at)
    return result


def hours(seconds: float) -> Decimal:
    return (Decimal(str(seconds)) / 3600).quantize(CENT, rounding=ROUND_HALF_UP)


def job_public(job: Job, seconds: float = 0.0, eta: datetime | None = None) -> JobPublic:
    return JobPublic(
        id=job.id,
        repair_order_id=job.repair_order_id,
        line_id=job.line_id,
        op_code=job.op_code,
        op_group=job.op_group,
        description=job.description,
        kind=job.kind,
        pay_type=job.pay_type,
        flat_rate_hours=job.flat_rate_hours,
        parts=[EstimateLine.model_validate(p) for p in job.parts],
        extra_work_id=job.extra_work_id,
        status=job.status,
        technician_id=job.technician_id,
        bay=job.bay,
        planned_start_at=job.planned_start_at,
        pause_reason=job.pause_reason,
        rework_count=job.rework_count,
        road_test=job.road_test,
        done_at=job.done_at,
        actual_hours=hours(seconds),
        parts_eta_at=eta,
        version=job.version,
    )


async def jobs_of(session: AsyncSession, order_id: uuid.UUID) -> list[Job]:
    query = (
        select(Job)
        .where(Job.repair_order_id == order_id)
        .order_by(col(Job.created_at), col(Job.id))
    )
    return list((await session.exec(query)).all())


async def order_detail(session: AsyncSession, order: RepairOrder) -> RepairOrderDetail:
    jobs = await jobs_of(session, order.id)
    seconds = await actual_seconds(session, [j.id for j in jobs], utcnow())
    extra = (
        await session.exec(
            select(ExtraWork)
            .where(ExtraWork.repair_order_id == order.id)
            .order_by(col(ExtraWork.found_at))
        )
    ).all()
    etas = await parts_eta(session, [j.id for j in jobs])
    parts = (
        await session.exec(
            select(PartLine)
            .where(PartLine.repair_order_id == order.id)
            .order_by(col(PartLine.updated_at), col(PartLine.id))
        )
    ).all()
    detail = RepairOrderDetail.model_validate(order, from_attributes=True)
    detail.jobs = [job_public(j, seconds.get(j.id, 0.0), etas.get(j.id)) for j in jobs]
    detail.part_lines = [PartLinePublic.model_validate(p) for p in parts]
    check = await session.get(PromiseCheck, order.id)
    if check is not None:
        detail.projected_finish_at, detail.at_risk_since = (
            check.projected_finish_at,
            check.at_risk_since,
        )
    detail.extra_work = [ExtraWorkPublic.model_validate(e) for e in extra]
    if order.invoice is not None:
        from services.workorders.payments import confirmed_total, payments_of

        detail.erp_paid = confirmed_total(order, await payments_of(session, order.id))
        detail.paid = order.paid_at is not None
        if order.invoice_prints:
            detail.invoice_print_log = await invoice_print_log(session, order.id)
    return detail


async def get_job(session: AsyncSession, job_id: uuid.UUID, by: User) -> Job:
    job = await session.get(Job, job_id)
    if job is None or job.branch != by.branch:
        raise NotFound(f"job {job_id} not found")
    return job


async def my_jobs(session: AsyncSession, by: User, limit: int) -> list[MyJob]:
    """The caller's jobs still to do or under way, in the order they are planned."""
    open_ = [
        JobStatus.assigned,
        JobStatus.in_progress,
        JobStatus.paused,
        JobStatus.rework,
        JobStatus.qc_failed,
    ]
    where = [Job.technician_id == by.id, col(Job.status).in_(open_)]
    return await _jobs_with_cars(session, where, by, limit)


async def my_finished_jobs(
    session: AsyncSession, by: User, day: date, zone: ZoneInfo, limit: int
) -> list[MyJob]:
    """The caller's jobs finished on `day` (the branch's clock), waiting for QC or passed,
    in the order they were finished."""
    starts = datetime.combine(day, time.min, zone).astimezone(UTC)
    ends = starts + timedelta(days=1)
    where = [
        Job.technician_id == by.id,
        col(Job.status).in_([JobStatus.done, JobStatus.qc_passed]),
        col(Job.done_at) >= starts,
        col(Job.done_at) < ends,
    ]
    return await _jobs_with_cars(session, where, by, limit, done=True)


async def awaiting_qc(session: AsyncSession, by: User, limit: int) -> list[MyJob]:
    """Jobs finished and not inspected yet, oldest finish first: the QC inspector's queue."""
    return await _jobs_with_cars(session, [Job.status == JobStatus.done], by, limit, done=True)


async def _jobs_with_cars(
    session: AsyncSession, where: list[Any], by: User, limit: int, done: bool = False
) -> list[MyJob]:
    order_by = (col(Job.done_at), col(Job.id)) if done else (col(Job.planned_start_at), col(Job.id))
    query = (
        select(Job, RepairOrder)
        .join(RepairOrder, col(RepairOrder.id) == col(Job.repair_order_id))
        .where(Job.branch == by.branch, *where)
        .order_by(*order_by)
        .limit(limit)
    )
    rows = (await session.exec(query)).all()
    ids = [job.id for job, _ in rows]
    seconds = await actual_seconds(session, ids, utcnow())
    etas = await parts_eta(session, ids)
    return [
        MyJob(
            **job_public(job, seconds.get(job.id, 0.0), etas.get(job.id)).model_dump(),
            repair_order_number=order.number,
            plate=order.plate,
            vin=order.vin,
            promised_at=order.promised_at,
        )
        for job, order in rows
    ]


async def qc_history(session: AsyncSession, job: Job) -> list[QcInspection]:
    """A job's QC verdicts, newest first: a failed one's reason is what the technician
    reworks against."""
    query = (
        select(QcInspection)
        .where(QcInspection.job_id == job.id)
        .order_by(col(QcInspection.inspected_at).desc())
        .limit(100)
    )
    return list((await session.exec(query)).all())


async def job_detail(session: AsyncSession, job: Job) -> JobPublic:
    seconds = await actual_seconds(session, [job.id], utcnow())
    etas = await parts_eta(session, [job.id])
    return job_public(job, seconds.get(job.id, 0.0), etas.get(job.id))


# --- order transitions ---------------------------------------------------------------

_DROPPED = (JobStatus.cancelled,)
# Settlement and delivery have their own use cases, which check what they need.
_OWN_USE_CASE = {RepairOrderStatus.settled, RepairOrderStatus.delivered}


async def transition_order(
    session: AsyncSession,
    order_id: uuid.UUID,
    body: OrderTransition,
    by: User,
    *,
    if_match: str | None,
) -> RepairOrder:
    order = await get_repair_order(session, order_id, by)
    check_if_match(if_match, order.version)
    if body.to in _OWN_USE_CASE:
        raise Conflict(
            f"use the {'settle' if body.to == 'settled' else 'deliver'} action for {body.to}"
        )
    target = move_order(order.status, body.to)
    jobs = [j for j in await jobs_of(session, order.id) if j.status not in _DROPPED]
    if target == RepairOrderStatus.qc:
        waiting = [j.op_code for j in jobs if j.status not in (JobStatus.done, JobStatus.qc_passed)]
        if waiting:
            raise Conflict(f"jobs not finished: {', '.join(waiting)}")
    if target in (RepairOrderStatus.washing, RepairOrderStatus.ready) and any(
        j.status != JobStatus.qc_passed for j in jobs
    ):
        raise Conflict("every job must pass QC first")
    if target == RepairOrderStatus.cancelled:
        if any(j.status not in (JobStatus.pending, JobStatus.assigned) for j in jobs):
            raise Conflict("work has started on this order; it cannot be cancelled")
        for job in jobs:
            job.status = move_job(job.status, JobStatus.cancelled)
        order.cancelled_reason = body.reason
    before = order.status
    order.status = target
    audit.record(
        session,
        action="repair_order.transition",
        object_type="repair_order",
        object_id=order.id,
        branch=order.branch,
        actor=by,
        changes={
            "status": [before, target],
            **({"cancelled_reason": body.reason} if target == RepairOrderStatus.cancelled else {}),
        },
    )
    await session.flush()
    if target == RepairOrderStatus.ready and before != RepairOrderStatus.ready:
        _announce_ready(session, order, invoicing.preview(order, jobs).customer_due)
    return order


def _announce_ready(session: AsyncSession, order: RepairOrder, amount_due: Decimal) -> None:
    """The car can be collected: followup tells the customer, with what they pay."""
    add_event(
        session,
        RepairOrderReady(
            repair_order_id=order.id,
            number=order.number,
            branch=order.branch,
            customer_id=order.customer_id,
            vehicle_id=order.vehicle_id,
            plate=order.plate,
            advisor=order.advisor,
            currency=order.currency,
            amount_due=amount_due,
            ready_at=utcnow(),
        ),
        subject=order.id,
    )


async def nudge_order(session: AsyncSession, order: RepairOrder, target: RepairOrderStatus) -> None:
    """Move the order along as a side effect of job work, where the table allows it.

    A conditional UPDATE rather than the versioned ORM write: two technicians starting
    jobs of the same order at once both mean "in progress", and neither should be
    refused for it. The version still moves, so tablets see the new status."""
    if order.status == target or not can_move_order(order.status, target):
        return
    table = RepairOrder.__table__  # type: ignore[attr-defined]
    await session.exec(
        update(table)
        .where(table.c.id == order.id, table.c.status == order.status)
        .values(status=target, version=table.c.version + 1)
    )
    await session.refresh(order)


# --- extra work ----------------------------------------------------------------------


async def report_extra_work(
    session: AsyncSession, order_id: uuid.UUID, body: ExtraWorkCreate, by: User, now: datetime
) -> ExtraWork:
    order = await get_repair_order(session, order_id, by)
    if order.status not in WORKING:
        raise Conflict(f"a repair order in {order.status} takes no extra work")
    if body.job_id is not None:
        job = await referenced(session, Job, body.job_id, by, field="job_id")
        if job.repair_order_id != order.id:
            raise InvalidInput("job_id", "the job is not on this repair order")
    extra_id = uuid.uuid4()
    lines = [
        EstimateLine(
            line_id=uuid.uuid4(),
            kind=line.kind,
            description=line.description,
            op_code=line.op_code,
            op_group=line.op_group,
            flat_rate_hours=line.flat_rate_hours,
            part_number=line.part_number,
            quantity=line.quantity,
            extra_work_id=extra_id,
        )
        for line in body.proposed_lines
    ]
    extra = ExtraWork(
        id=extra_id,
        repair_order_id=order.id,
        branch=order.branch,
        job_id=body.job_id,
        found_by=by.id,
        findings=body.findings,
        photo_file_ids=[str(f) for f in body.photo_file_ids],
        proposed_lines=[_line_json(line) for line in lines],
        found_at=now,
    )
    session.add(extra)
    add_event(
        session,
        ExtraWorkFound(
            extra_work_id=extra.id,
            repair_order_id=order.id,
            repair_order_number=order.number,
            intake_id=order.intake_id,
            estimate_id=order.estimate_id,
            branch=order.branch,
            found_by=by.id,
            findings=body.findings,
            photo_file_ids=body.photo_file_ids,
            proposed_lines=lines,
            found_at=now,
        ),
        subject=order.id,
    )
    await session.flush()
    return extra


# --- QC ------------------------------------------------------------------------------


async def record_qc(
    session: AsyncSession,
    job_id: uuid.UUID,
    body: QcVerdict,
    by: User,
    now: datetime,
    *,
    if_match: str | None,
) -> tuple[Job, QcInspection]:
    """The verdict on the job; returns the job too, whose version (its ETag) it moved."""
    job = await get_job(session, job_id, by)
    check_if_match(if_match, job.version, required=False)
    if not body.passed and not (body.reason or "").strip():
        raise InvalidInput("reason", "a failed QC needs a reason")
    if body.passed:
        job.status = move_job(job.status, JobStatus.qc_passed)
    else:
        job.status = move_job(job.status, JobStatus.qc_failed)
        job.status = move_job(job.status, JobStatus.rework)
        job.rework_count += 1
        job.done_at = None
        order = await session.get(RepairOrder, job.repair_order_id)
        assert order is not None
        await nudge_order(session, order, RepairOrderStatus.in_progress)
    job.road_test = job.road_test or body.road_test
    inspection = QcInspection(
        job_id=job.id,
        inspector=by.id,
        passed=body.passed,
        checklist=[item.model_dump() for item in body.checklist],
        reason=body.reason,
        road_test=body.road_test,
        inspected_at=now,
    )
    session.add(inspection)
    order = await session.get(RepairOrder, job.repair_order_id)
    assert order is not None
    add_event(
        session,
        QcRecorded(
            qc_id=inspection.id,
            repair_order_id=order.id,
            number=order.number,
            branch=order.branch,
            job_id=job.id,
            op_code=job.op_code,
            technician_id=job.technician_id,
            passed=body.passed,
            reason=body.reason or "",
            road_test=body.road_test,
            inspected_by=by.id,
            inspected_at=now,
        ),
        subject=order.id,
    )
    await session.flush()
    return job, inspection


# --- settlement and delivery ---------------------------------------------------------


async def settle(
    session: AsyncSession,
    order_id: uuid.UUID,
    body: Settlement,
    by: User,
    now: datetime,
    *,
    if_match: str | None,
    discount_limit_percent: float = 10.0,
) -> RepairOrder:
    from services.workorders import payments

    order = await get_repair_order(session, order_id, by)
    check_if_match(if_match, order.version)
    before = order.status
    order.status = move_order(order.status, RepairOrderStatus.settled)
    priced = invoicing.price(order, await jobs_of(session, order.id), body.discounts)
    largest = priced.largest_discount_percent
    if largest > Decimal(str(discount_limit_percent)) and not by.has(Role.manager):
        raise Forbidden(
            f"a discount of {largest.quantize(CENT)}% is above {discount_limit_percent}%: "
            "only a manager may grant it"
        )
    due = priced.customer_due
    paid = sum((p.amount for p in body.payments), Decimal("0"))
    if paid != due:
        raise InvalidInput("payments", f"payments add up to {paid}, the customer owes {due}")
    event = RepairOrderSettled(
        repair_order_id=order.id,
        number=order.number,
        invoice_number=invoicing.invoice_number(order),
        branch=order.branch,
        customer_id=order.customer_id,
        vehicle_id=order.vehicle_id,
        vin=order.vin,
        currency=order.currency,
        lines=priced.lines,
        totals=priced.totals,
        net_total=priced.net_total,
        tax_total=priced.tax_total,
        gross_total=priced.gross_total,
        customer_due=due,
        payments=[PaymentTaken(method=p.method, amount=p.amount) for p in body.payments],
        discount_total=priced.discount_total,
        settled_by=by.id,
        settled_at=now,
    )
    order.invoice = event.model_dump(
        mode="json",
        include={
            "invoice_number",
            "lines",
            "totals",
            "net_total",
            "tax_total",
            "gross_total",
            "customer_due",
            "payments",
            "discount_total",
            "settled_by",
            "settled_at",
            "currency",
        },
    )
    order.settled_at = now
    order.invoice_number = event.invoice_number
    add_event(session, event, subject=order.id)
    audit.record(
        session,
        action="repair_order.settled",
        object_type="repair_order",
        object_id=order.id,
        branch=order.branch,
        actor=by,
        at=now,
        changes={
            "status": [before, order.status],
            "invoice_number": event.invoice_number,
            "discounts": [d.model_dump(mode="json") for d in body.discounts],
            "discount_total": priced.discount_total,
            "customer_due": due,
            "payments": [p.model_dump(mode="json") for p in body.payments],
        },
    )
    await session.flush()
    await payments.adopt_unmatched(session, order)
    return order


async def deliver(
    session: AsyncSession,
    order_id: uuid.UUID,
    body: Handover,
    by: User,
    now: datetime,
    *,
    if_match: str | None,
    zone: str = "Asia/Shanghai",
) -> RepairOrder:
    order = await get_repair_order(session, order_id, by)
    check_if_match(if_match, order.version)
    before = order.status
    order.status = move_order(order.status, RepairOrderStatus.delivered)
    if not body.keys_returned:
        raise InvalidInput("keys_returned", "hand the keys back before closing the order")
    if order.declined_lines and not body.declined_work_told:
        raise InvalidInput("declined_work_told", "tell the customer about the declined work")
    if (
        body.next_service_on is not None
        and body.next_service_on <= now.astimezone(ZoneInfo(zone)).date()
    ):
        raise InvalidInput("next_service_on", "the next service is a day after today")
    jobs = [j for j in await jobs_of(session, order.id) if j.status != JobStatus.cancelled]
    order.delivered_at = now
    order.handover = {**body.model_dump(mode="json"), "by": by.id}
    audit.record(
        session,
        action="repair_order.delivered",
        object_type="repair_order",
        object_id=order.id,
        branch=order.branch,
        actor=by,
        at=now,
        changes={"status": [before, order.status], "handover": body.model_dump(mode="json")},
    )
    add_event(
        session,
        RepairOrderDelivered(
            repair_order_id=order.id,
            number=order.number,
            branch=order.branch,
            customer_id=order.customer_id,
            vehicle_id=order.vehicle_id,
            vin=order.vin,
            plate=order.plate,
            advisor=order.advisor,
            odometer_km=order.odometer_km,
            delivered_at=now,
            promised_at=order.promised_at,
            jobs=[
                DeliveredJob(
                    job_id=j.id,
                    op_code=j.op_code,
                    op_group=j.op_group,
                    description=j.description,
                    kind=j.kind,
                    technician_id=j.technician_id,
                    flat_rate_hours=j.flat_rate_hours,
                )
                for j in jobs
            ],
            declined_work=[
                line.get("description") or line.get("op_code") or line.get("part_number") or ""
                for line in order.declined_lines
            ],
            next_service_on=body.next_service_on,
            next_service_km=body.next_service_km,
        ),
        subject=order.id,
    )
    await session.flush()
    return order


def require_own_branch(order: RepairOrder, by: User) -> None:
    if order.branch != by.branch:
        raise Forbidden("another branch's repair order")


# --- parts lines ---------------------------------------------------------------------


async def request_part(
    session: AsyncSession, job_id: uuid.UUID, body: PartRequest, by: User, now: datetime
) -> PartLine:
    """A technician asks for a part the job needs (not charged: not on any estimate)."""
    job = await get_job(session, job_id, by)
    if job.status in (JobStatus.qc_passed, JobStatus.cancelled):
        raise Conflict(f"a job in {job.status} needs no more parts")
    part = PartLine(
        repair_order_id=job.repair_order_id,
        job_id=job.id,
        branch=job.branch,
        part_number=body.part_number,
        description=body.description,
        quantity=str(body.quantity),
        requested_by=by.id,
        updated_at=now,
    )
    session.add(part)
    await session.flush()
    return part


async def move_part_line(
    session: AsyncSession,
    part_id: uuid.UUID,
    body: PartMove,
    by: User,
    now: datetime,
    *,
    if_match: str | None,
) -> PartLine:
    part = await session.get(PartLine, part_id)
    if part is None or part.branch != by.branch:
        raise NotFound(f"parts line {part_id} not found")
    check_if_match(if_match, part.version, required=False)
    part.status = move_part(part.status, body.to)
    if body.to == PartStatus.ordered and body.eta_at is None:
        raise InvalidInput("eta_at", "an ordered part needs its ETA")
    if body.eta_at is not None:
        part.eta_at = body.eta_at
    part.updated_at = now
    await session.flush()
    return part


# --- invoice prints ------------------------------------------------------------------


async def record_invoice_print(
    session: AsyncSession, order_id: uuid.UUID, by: User, now: datetime
) -> InvoicePrint:
    """Count one more print of the invoice and log who printed it when; returns the print
    (number 1 is the original).

    The count is updated in place: printing does not change the order's ETag under the
    tablets' feet, and two prints at once get different numbers."""
    order = await get_repair_order(session, order_id, by)
    if order.invoice is None:
        raise Conflict("the order is not settled yet; there is no invoice to print")
    table = RepairOrder.__table__  # type: ignore[attr-defined]
    result = await session.exec(
        update(table)
        .where(table.c.id == order.id)
        .values(invoice_prints=table.c.invoice_prints + 1)
        .returning(table.c.invoice_prints)
    )
    printed = int(result.scalar_one())
    await session.refresh(order)
    record = InvoicePrintRecord(
        repair_order_id=order.id,
        printed=printed,
        branch=order.branch,
        printed_at=now,
        printed_by=by.id,
        printed_by_name=by.name,
    )
    session.add(record)
    await session.flush()
    return invoice_print_public(record)


def invoice_print_public(record: InvoicePrintRecord) -> InvoicePrint:
    return InvoicePrint(
        printed=record.printed,
        is_copy=record.printed > 1,
        printed_at=record.printed_at,
        printed_by=record.printed_by,
        printed_by_name=record.printed_by_name,
    )


async def invoice_print_log(session: AsyncSession, order_id: uuid.UUID) -> list[InvoicePrint]:
    records = (
        await session.exec(
            select(InvoicePrintRecord)
            .where(InvoicePrintRecord.repair_order_id == order_id)
            .order_by(col(InvoicePrintRecord.printed))
        )
    ).all()
    return [invoice_print_public(r) for r in records]
