"""Dispatch and clocking: who works on which job in which bay, and the time it took."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import select as core_select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import and_, col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.workorders.models import Job, JobPublic, RepairOrder, TimeEntry
from services.workorders.schemas import ClockOff, JobAssignment, StopReason
from services.workorders.service import (
    actual_seconds,
    get_job,
    hours,
    job_public,
)
from services.workorders.states import (
    REASSIGNABLE,
    WORKING,
    JobStatus,
    RepairOrderStatus,
    can_move_order,
    move_job,
)
from shared.auth import Role, User
from shared.concurrency import check_if_match
from shared.contracts.workorders import JobClocked
from shared.outbox import add_event
from shared.problems import Conflict, Forbidden

# Jobs a technician may clock on to.
CLOCKABLE = frozenset({JobStatus.assigned, JobStatus.paused, JobStatus.rework})


@dataclass(frozen=True)
class OrderState:
    """What clocking needs of a job's order: three columns, not the whole order."""

    id: uuid.UUID
    status: RepairOrderStatus
    number: str
    branch: str


async def _order_state(session: AsyncSession, job: Job) -> OrderState:
    table = RepairOrder.__table__  # type: ignore[attr-defined]
    query = core_select(table.c.status, table.c.number, table.c.branch).where(
        table.c.id == job.repair_order_id
    )
    row = (await session.exec(cast(Any, query))).one()
    return OrderState(job.repair_order_id, RepairOrderStatus(row[0]), row[1], row[2])


async def _nudge(session: AsyncSession, order: OrderState, target: RepairOrderStatus) -> None:
    """`nudge_order` for an order not loaded: the same conditional UPDATE."""
    if order.status == target or not can_move_order(order.status, target):
        return
    table = RepairOrder.__table__  # type: ignore[attr-defined]
    await session.exec(
        update(table)
        .where(table.c.id == order.id, table.c.status == order.status)
        .values(status=target, version=table.c.version + 1)
    )


async def _order_of(session: AsyncSession, job: Job) -> RepairOrder:
    order = await session.get(RepairOrder, job.repair_order_id)
    assert order is not None  # a job always has its order (foreign key)
    return order


async def assign(
    session: AsyncSession,
    job_id: uuid.UUID,
    body: JobAssignment,
    by: User,
    *,
    if_match: str | None,
) -> Job:
    """Dispatch (派工) a job to a technician and a bay, or move it to another one."""
    job = await get_job(session, job_id, by)
    check_if_match(if_match, job.version)
    order = await _order_of(session, job)
    if order.status not in WORKING:
        raise Conflict(f"the repair order is {order.status}; its jobs cannot be dispatched")
    if job.status not in REASSIGNABLE:
        raise Conflict(
            f"a job in {job.status} cannot be (re)assigned"
            + (
                "; the technician must clock off first"
                if job.status == JobStatus.in_progress
                else ""
            ),
            current_status=str(job.status),
        )
    if job.status == JobStatus.pending:
        job.status = move_job(job.status, JobStatus.assigned)
    job.technician_id, job.bay = body.technician_id, body.bay
    job.planned_start_at = body.planned_start_at
    await session.flush()
    return job


async def open_entry(session: AsyncSession, technician_id: str) -> TimeEntry | None:
    query = select(TimeEntry).where(
        TimeEntry.technician_id == technician_id, col(TimeEntry.ended_at).is_(None)
    )
    return (await session.exec(query)).first()


def _own_job(job: Job, by: User) -> None:
    if job.technician_id != by.id:
        raise Forbidden("technicians clock only the jobs dispatched to them")


async def clock_on(session: AsyncSession, job_id: uuid.UUID, by: User, now: datetime) -> TimeEntry:
    job = await get_job(session, job_id, by)
    _own_job(job, by)
    running = await open_entry(session, by.id)
    if running is not None:
        if running.job_id == job.id:
            raise Conflict("you are already clocked on this job")
        raise Conflict(
            "you are clocked on another job; clock off it first", job_id=str(running.job_id)
        )
    if job.status not in CLOCKABLE:
        raise Conflict(
            f"a job in {job.status} cannot be clocked on", current_status=str(job.status)
        )
    order = await _order_state(session, job)
    if order.status not in WORKING:
        raise Conflict(f"the repair order is {order.status}; no work on it")
    job.status = move_job(job.status, JobStatus.in_progress)
    job.pause_reason = None
    await _nudge(session, order, RepairOrderStatus.in_progress)
    entry = TimeEntry(job_id=job.id, branch=job.branch, technician_id=by.id, started_at=now)
    session.add(entry)
    try:
        await session.flush()
    except IntegrityError as exc:  # the same technician clocked on elsewhere a moment ago;
        # the request's transaction is rolled back at the boundary.
        raise Conflict("you are clocked on another job; clock off it first") from exc
    return entry


async def clock_off(
    session: AsyncSession, job_id: uuid.UUID, body: ClockOff, by: User, now: datetime
) -> TimeEntry:
    job = await get_job(session, job_id, by)
    _own_job(job, by)
    entry = await open_entry(session, by.id)
    if entry is None or entry.job_id != job.id:
        raise Conflict("you are not clocked on this job")
    entry.ended_at = max(now, entry.started_at)
    entry.stop_reason = body.reason.value
    order = await _order_state(session, job)
    if body.reason == StopReason.finished:
        job.status = move_job(job.status, JobStatus.done)
        job.done_at = entry.ended_at
    else:
        job.status = move_job(job.status, JobStatus.paused)
        job.pause_reason = body.reason.value
        if body.reason == StopReason.waiting_parts:
            await _nudge(session, order, RepairOrderStatus.waiting_parts)
    # One closed clock segment: records and reports sum these per technician and day.
    add_event(
        session,
        JobClocked(
            clock_id=entry.id,
            repair_order_id=order.id,
            number=order.number,
            branch=order.branch,
            job_id=job.id,
            op_code=job.op_code,
            technician_id=entry.technician_id,
            flat_rate_hours=job.flat_rate_hours,
            started_at=entry.started_at,
            ended_at=entry.ended_at,
            hours=hours((entry.ended_at - entry.started_at).total_seconds()),
            reason="done" if body.reason == StopReason.finished else body.reason.value,
        ),
        subject=order.id,
    )
    await session.flush()
    return entry


# --- the foreman's day and the technicians' productivity -------------------------------


class Lane(BaseModel):
    """One technician's or one bay's jobs of the day, by planned start."""

    key: str
    jobs: list[JobPublic]


class DayBoard(BaseModel):
    on: date
    technicians: list[Lane]
    bays: list[Lane]
    unassigned: list[JobPublic]


def day_bounds(on: date, zone: str) -> tuple[datetime, datetime]:
    start = datetime.combine(on, time(0), tzinfo=ZoneInfo(zone))
    return start, start + timedelta(days=1)


async def day_board(
    session: AsyncSession, by: User, on: date, zone: str, now: datetime
) -> DayBoard:
    start, end = day_bounds(on, zone)
    open_jobs = col(Job.status).notin_([JobStatus.qc_passed, JobStatus.cancelled, JobStatus.done])
    query = (
        select(Job)
        .join(RepairOrder, col(RepairOrder.id) == col(Job.repair_order_id))
        .where(
            Job.branch == by.branch,
            col(RepairOrder.status).in_(list(WORKING)),
            or_(
                and_(col(Job.planned_start_at) >= start, col(Job.planned_start_at) < end),
                and_(col(Job.planned_start_at).is_(None), open_jobs),
            ),
        )
        .limit(2000)
    )
    jobs = list((await session.exec(query)).all())
    seconds = await actual_seconds(session, [j.id for j in jobs], now)
    far = datetime.max.replace(tzinfo=start.tzinfo)
    jobs.sort(key=lambda j: (j.planned_start_at or far, str(j.id)))
    public = {j.id: job_public(j, seconds.get(j.id, 0.0)) for j in jobs}
    technicians: dict[str, list[JobPublic]] = {}
    bays: dict[str, list[JobPublic]] = {}
    unassigned: list[JobPublic] = []
    for job in jobs:
        if job.technician_id is None:
            unassigned.append(public[job.id])
            continue
        technicians.setdefault(job.technician_id, []).append(public[job.id])
        if job.bay:
            bays.setdefault(job.bay, []).append(public[job.id])
    return DayBoard(
        on=on,
        technicians=[Lane(key=k, jobs=v) for k, v in sorted(technicians.items())],
        bays=[Lane(key=k, jobs=v) for k, v in sorted(bays.items())],
        unassigned=unassigned,
    )


class Productivity(BaseModel):
    technician_id: str
    clocked_hours: Decimal
    flat_rate_hours: Decimal
    efficiency: Decimal | None  # flat-rate hours of jobs finished ÷ hours clocked
    utilisation: Decimal  # hours clocked ÷ hours available in the shift
    jobs_finished: int


async def productivity(
    session: AsyncSession,
    by: User,
    on: date,
    zone: str,
    shift_hours: float,
    now: datetime,
) -> list[Productivity]:
    start, end = day_bounds(on, zone)
    query = select(TimeEntry).where(
        TimeEntry.branch == by.branch,
        col(TimeEntry.started_at) < end,
        or_(col(TimeEntry.ended_at).is_(None), col(TimeEntry.ended_at) > start),
    )
    if not by.has(Role.foreman, Role.manager):
        query = query.where(TimeEntry.technician_id == by.id)
    entries = list((await session.exec(query)).all())
    clocked: dict[str, float] = {}
    for entry in entries:
        begin = max(entry.started_at, start)
        finish = min(entry.ended_at or now, end)
        clocked[entry.technician_id] = clocked.get(entry.technician_id, 0.0) + max(
            0.0, (finish - begin).total_seconds()
        )
    finished = [e for e in entries if e.stop_reason == StopReason.finished.value]
    finished = [e for e in finished if e.ended_at is not None and start <= e.ended_at < end]
    jobs: dict[uuid.UUID, Job] = {}
    if finished:
        rows = await session.exec(select(Job).where(col(Job.id).in_([e.job_id for e in finished])))
        jobs = {j.id: j for j in rows.all()}
    produced: dict[str, Decimal] = {}
    count: dict[str, int] = {}
    for entry in finished:
        job = jobs[entry.job_id]
        produced[entry.technician_id] = produced.get(entry.technician_id, Decimal("0")) + (
            job.flat_rate_hours
        )
        count[entry.technician_id] = count.get(entry.technician_id, 0) + 1
    result = []
    for technician in sorted(clocked.keys() | produced.keys()):
        actual = hours(clocked.get(technician, 0.0))
        flat = produced.get(technician, Decimal("0"))
        result.append(
            Productivity(
                technician_id=technician,
                clocked_hours=actual,
                flat_rate_hours=flat,
                efficiency=(flat / actual).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
                if actual
                else None,
                utilisation=(actual / Decimal(str(shift_hours))).quantize(
                    Decimal("0.01"), rounding=ROUND_HALF_UP
                ),
                jobs_finished=count.get(technician, 0),
            )
        )
    return result
