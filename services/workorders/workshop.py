"""Dispatch and clocking: who works on which job in which bay, and the time it took."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import bindparam, insert, null, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import and_, col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.workorders import board, roster
from services.workorders.models import Job, JobPublic, RepairOrder, TimeEntry, TimeEntryPublic
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
from shared.driver import DriverStatement, Statements
from shared.events import utcnow
from shared.outbox import add_event
from shared.problems import Conflict, Forbidden, NotFound

# Jobs a technician may clock on to.
CLOCKABLE = frozenset({JobStatus.assigned, JobStatus.paused, JobStatus.rework})


@dataclass(frozen=True)
class OrderState:
    """What clocking needs of a job's order: three columns, not the whole order."""

    id: uuid.UUID
    status: RepairOrderStatus
    number: str
    branch: str


_RO = RepairOrder.__table__  # type: ignore[attr-defined]
_JOB = Job.__table__  # type: ignore[attr-defined]
_TE = TimeEntry.__table__  # type: ignore[attr-defined]

# Clocking's statements are built once: building a statement and its cache key on every
# request cost a fifth of a clocking's CPU. Clocking runs in a hot transaction
# (`Database.hot_transaction`): on PostgreSQL straight on asyncpg, without a session.
_NUDGE = DriverStatement(
    update(_RO)
    .where(_RO.c.id == bindparam("order_id"), _RO.c.status == bindparam("from_status"))
    .values(status=bindparam("to_status"), version=_RO.c.version + 1)
)


async def _nudge(tx: Statements, order: OrderState, target: RepairOrderStatus) -> None:
    """`nudge_order` for an order not loaded: the same conditional UPDATE."""
    if order.status == target or not can_move_order(order.status, target):
        return
    await tx.execute(
        _NUDGE, {"order_id": order.id, "from_status": order.status, "to_status": target}
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
    zone: str,
) -> Job:
    """Dispatch (派工) a job to a technician and a bay, or move it to another one: a
    technician on the branch's roster who works the planned start's day (today without
    one) in the branch's `zone` (`roster.check_dispatch`)."""
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
    day = roster.day_of(body.planned_start_at or utcnow(), zone)
    await roster.check_dispatch(session, order.branch, body.technician_id, day)
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


@dataclass(frozen=True)
class ClockState:
    """What clocking needs, read in one statement: the job, its order's status and number,
    and the technician's running clock (if any)."""

    job_id: uuid.UUID
    branch: str
    technician_id: str | None
    status: JobStatus
    order_id: uuid.UUID
    op_code: str
    line: dict[str, Any] | None
    order_status: RepairOrderStatus
    number: str
    running_id: uuid.UUID | None
    running_job_id: uuid.UUID | None
    running_started_at: datetime | None

    @property
    def flat_rate_hours(self) -> Decimal:
        return Decimal(str((self.line or {}).get("flat_rate_hours", "0")))


@cache
def _clock_state_query(with_line: bool) -> DriverStatement:
    return DriverStatement(
        core_select(
            _JOB.c.branch,
            _JOB.c.technician_id,
            _JOB.c.status,
            _JOB.c.repair_order_id,
            _JOB.c.op_code,
            _JOB.c.line if with_line else null(),
            _RO.c.status,
            _RO.c.number,
            _TE.c.id,
            _TE.c.job_id,
            _TE.c.started_at,
        )
        .select_from(
            _JOB.join(_RO, _RO.c.id == _JOB.c.repair_order_id).outerjoin(
                _TE,
                and_(_TE.c.technician_id == bindparam("technician_id"), _TE.c.ended_at.is_(None)),
            )
        )
        .where(_JOB.c.id == bindparam("job_id"))
    )


async def _clock_state(
    tx: Statements, job_id: uuid.UUID, by: User, *, with_line: bool = False
) -> ClockState:
    """The job (404 outside the caller's branch), checked to be the caller's own (403)."""
    query = _clock_state_query(with_line)
    row = await tx.first(query, {"job_id": job_id, "technician_id": by.id})
    if row is None or row[0] != by.branch:
        raise NotFound(f"job {job_id} not found")
    if row[1] != by.id:
        raise Forbidden("technicians clock only the jobs dispatched to them")
    return ClockState(
        job_id,
        row[0],
        row[1],
        JobStatus(row[2]),
        row[3],
        row[4],
        row[5],
        RepairOrderStatus(row[6]),
        row[7],
        row[8],
        row[9],
        row[10],
    )


@cache
def _move_job_statement(columns: tuple[str, ...]) -> DriverStatement:
    return DriverStatement(
        update(_JOB)
        .where(
            _JOB.c.id == bindparam("job_id"),
            _JOB.c.status == bindparam("from_status"),
            _JOB.c.technician_id == bindparam("technician"),
        )
        .values(
            status=bindparam("to_status"),
            version=_JOB.c.version + 1,
            **{column: bindparam(f"new_{column}") for column in columns},
        )
    )


async def _move_job(tx: Statements, state: ClockState, target: JobStatus, **values: Any) -> None:
    """One UPDATE of the job, guarded by the status and technician it was read with; its
    version moves like an ORM update's, so ETags stay right."""
    moved = await tx.execute(
        _move_job_statement(tuple(sorted(values))),
        {
            "job_id": state.job_id,
            "from_status": state.status,
            "technician": state.technician_id,
            "to_status": move_job(state.status, target),
            **{f"new_{column}": value for column, value in values.items()},
        },
    )
    if moved != 1:
        raise Conflict("the job changed meanwhile; try again")


_START_CLOCK = DriverStatement(insert(_TE))
_STOP_CLOCK = DriverStatement(
    update(_TE)
    .where(_TE.c.id == bindparam("entry_id"), _TE.c.ended_at.is_(None))
    .values(ended_at=bindparam("new_ended_at"), stop_reason=bindparam("new_stop_reason"))
)


async def clock_on(tx: Statements, job_id: uuid.UUID, by: User, now: datetime) -> TimeEntryPublic:
    state = await _clock_state(tx, job_id, by)
    if state.running_id is not None:
        if state.running_job_id == state.job_id:
            raise Conflict("you are already clocked on this job")
        raise Conflict(
            "you are clocked on another job; clock off it first",
            job_id=str(state.running_job_id),
        )
    if state.status not in CLOCKABLE:
        raise Conflict(
            f"a job in {state.status} cannot be clocked on", current_status=str(state.status)
        )
    if state.order_status not in WORKING:
        raise Conflict(f"the repair order is {state.order_status}; no work on it")
    await _move_job(tx, state, JobStatus.in_progress, pause_reason=None)
    order = OrderState(state.order_id, state.order_status, state.number, state.branch)
    await _nudge(tx, order, RepairOrderStatus.in_progress)
    entry = TimeEntryPublic(
        id=uuid.uuid4(), job_id=state.job_id, technician_id=by.id, started_at=now
    )
    try:
        await tx.execute(
            _START_CLOCK,
            {
                "id": entry.id,
                "job_id": entry.job_id,
                "branch": state.branch,
                "technician_id": by.id,
                "started_at": now,
            },
        )
    except IntegrityError as exc:  # the same technician clocked on elsewhere a moment ago;
        # the request's transaction is rolled back at the boundary.
        raise Conflict("you are clocked on another job; clock off it first") from exc
    board.mark_changed(tx, state.branch, state.order_id)
    return entry


async def clock_off(
    tx: Statements, job_id: uuid.UUID, body: ClockOff, by: User, now: datetime
) -> TimeEntryPublic:
    state = await _clock_state(tx, job_id, by, with_line=True)
    if state.running_id is None or state.running_job_id != state.job_id:
        raise Conflict("you are not clocked on this job")
    assert state.running_started_at is not None
    ended_at = max(now, state.running_started_at)
    closed = await tx.execute(
        _STOP_CLOCK,
        {
            "entry_id": state.running_id,
            "new_ended_at": ended_at,
            "new_stop_reason": body.reason.value,
        },
    )
    if closed != 1:
        raise Conflict("you are not clocked on this job")
    order = OrderState(state.order_id, state.order_status, state.number, state.branch)
    if body.reason == StopReason.finished:
        await _move_job(tx, state, JobStatus.done, done_at=ended_at)
    else:
        await _move_job(tx, state, JobStatus.paused, pause_reason=body.reason.value)
        if body.reason == StopReason.waiting_parts:
            await _nudge(tx, order, RepairOrderStatus.waiting_parts)
    # One closed clock segment: records and reports sum these per technician and day.
    add_event(
        tx,
        JobClocked(
            clock_id=state.running_id,
            repair_order_id=order.id,
            number=order.number,
            branch=order.branch,
            job_id=state.job_id,
            op_code=state.op_code,
            technician_id=by.id,
            flat_rate_hours=state.flat_rate_hours,
            started_at=state.running_started_at,
            ended_at=ended_at,
            hours=hours((ended_at - state.running_started_at).total_seconds()),
            reason="done" if body.reason == StopReason.finished else body.reason.value,
        ),
        subject=order.id,
    )
    board.mark_changed(tx, state.branch, state.order_id)
    return TimeEntryPublic(
        id=state.running_id,
        job_id=state.job_id,
        technician_id=by.id,
        started_at=state.running_started_at,
        ended_at=ended_at,
        stop_reason=body.reason.value,
    )


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
