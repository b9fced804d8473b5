"""Promise-time control: project when each open order will be finished and warn the
advisor while there is still time to call the customer."""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.workorders import board
from services.workorders.config import Settings
from services.workorders.models import Job, PromiseCheck, RepairOrder, RepairOrderPublic
from services.workorders.schemas import NewPromise
from services.workorders.service import (
    actual_seconds,
    get_repair_order,
    parts_eta,
    record_promise,
)
from services.workorders.states import WORKING, JobStatus
from shared.auth import User
from shared.calendar import BranchCalendar, branch_calendar
from shared.concurrency import check_if_match
from shared.contracts.workorders import RepairOrderAtRisk, RepairOrderPromiseChanged
from shared.events import utcnow
from shared.outbox import add_event
from shared.service import Runtime

log = logging.getLogger(__name__)
# A projection that moved less than this is not written again by a branch's pass.
MOVED = timedelta(minutes=1)

FINISHED = frozenset({JobStatus.done, JobStatus.qc_passed, JobStatus.cancelled})
# Even a job clocked past its flat rate needs some time to finish.
MIN_REMAINING = timedelta(minutes=15)


class PlannedJob(NamedTuple):
    """What the projection needs to know about one unfinished job (a tuple: a branch's
    pass makes hundreds of them every few seconds)."""

    job_id: uuid.UUID
    order_id: uuid.UUID
    technician_id: str | None
    remaining: timedelta
    queued_at: datetime  # planned start, or creation: the technician's queue order
    parts_eta_at: datetime | None = None
    branch: str = ""  # whose calendar the work is counted on


def calendars_of(settings: Settings, branches: set[str]) -> dict[str, BranchCalendar]:
    """Each branch's calendar (`shared.calendar`): its opening hours on its working days."""
    return {branch: branch_calendar(settings, branch, settings.time_zone) for branch in branches}


def after_work(start: datetime, work: timedelta, calendar: BranchCalendar | None) -> datetime:
    """When `work` started at `start` is done: counted in the branch's opening hours on the
    days it is open (work left at closing time goes on at the next open day's opening; a
    workshop takes cars on an ordinary weekend, not in a holiday's break nor on its own
    closing days), or straight through without a calendar."""
    if calendar is None:
        return start + work
    return calendar.add_working_time(start, work, open_days=True)


def remaining_time(flat_rate_hours: Decimal | float, clocked_seconds: float) -> timedelta:
    left = timedelta(seconds=float(flat_rate_hours) * 3600 - clocked_seconds)
    return max(left, MIN_REMAINING)


def project(
    jobs: list[PlannedJob],
    now: datetime,
    buffer: timedelta,
    calendars: Mapping[str, BranchCalendar] | None = None,
) -> dict[uuid.UUID, datetime]:
    """Finish time per order: each technician works their queue in order, one job at a
    time; a job waiting for parts starts no earlier than their ETA; unassigned jobs start
    now (as if a free technician took them); QC and hand-over add `buffer`. With the
    branches' `calendars`, work and buffer count only the branch's opening hours on the
    days it is open: an order left at closing time goes on the next open day's morning,
    past a holiday's break and the branch's closing days."""
    free_at: dict[str, datetime] = {}
    finish: dict[uuid.UUID, datetime] = {}
    branch_of: dict[uuid.UUID, str] = {}
    calendars = calendars or {}
    for job in sorted(jobs, key=lambda j: (j.queued_at, str(j.job_id))):
        start = now
        if job.parts_eta_at is not None:
            start = max(start, job.parts_eta_at)
        if job.technician_id is not None:
            start = max(start, free_at.get(job.technician_id, now))
        end = after_work(start, job.remaining, calendars.get(job.branch))
        if job.technician_id is not None:
            free_at[job.technician_id] = end
        finish[job.order_id] = max(finish.get(job.order_id, end), end)
        branch_of[job.order_id] = job.branch
    return {
        order_id: after_work(at, buffer, calendars.get(branch_of[order_id]))
        for order_id, at in finish.items()
    }


async def check_promises(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    branches: set[str] | None = None,
    *,
    dry_run: bool = False,
) -> int:
    """Project every open order of every branch (or of `branches`); warn once per promise.
    Returns how many orders became at risk (with `dry_run`: how many projections would be
    written; nothing is).

    A pass for `branches` (after clocking, dispatch or a parts ETA changed there) writes a
    projection only where the flag changes or the finish moved by a minute or more, so a
    busy workshop does not rewrite every order's row each time."""
    # Columns, not entities: a branch is projected again seconds after any clocking,
    # and each pass holds the event loop while it runs.
    ro = RepairOrder.__table__  # type: ignore[attr-defined]
    is_open = [ro.c.status.in_(list(WORKING)), ro.c.promised_at.is_not(None)]
    partial = branches is not None
    if branches is not None:
        is_open.append(ro.c.branch.in_(sorted(branches)))
    query = core_select(
        ro.c.id,
        ro.c.branch,
        ro.c.promised_at,
        ro.c.number,
        ro.c.advisor,
        ro.c.customer_id,
        ro.c.plate,
    ).where(*is_open)
    orders: list[Any] = list((await session.exec(cast(Any, query))).all())
    if not orders:
        return 0
    by_id = {o.id: o for o in orders}
    branches = {o.branch for o in orders} if branches is None else branches
    # A technician's queue spans every open order of the branch.
    jb = Job.__table__  # type: ignore[attr-defined]
    unfinished = [
        jb.c.branch.in_(sorted(branches)),
        jb.c.repair_order_id.in_(list(by_id)),
        jb.c.status.notin_(list(FINISHED)),
    ]
    jobs: list[Any] = list(
        (
            await session.exec(
                cast(
                    Any,
                    core_select(
                        jb.c.id,
                        jb.c.repair_order_id,
                        jb.c.branch,
                        jb.c.technician_id,
                        jb.c.planned_start_at,
                        jb.c.created_at,
                        # One number of the line, not the whole JSON document.
                        jb.c.line["flat_rate_hours"].as_float().label("flat_rate_hours"),
                    ).where(*unfinished),
                )
            )
        ).all()
    )
    # SQLite runs inline on the event loop: a pass over a busy branch would hold it for
    # tens of milliseconds at a stretch, so it lets waiting requests in between its reads.
    await asyncio.sleep(0)
    seconds = await actual_seconds(session, [j.id for j in jobs], now)
    await asyncio.sleep(0)
    etas = await parts_eta(session, [j.id for j in jobs])
    await asyncio.sleep(0)
    planned = [
        PlannedJob(
            job_id=j.id,
            order_id=j.repair_order_id,
            technician_id=f"{j.branch}/{j.technician_id}" if j.technician_id else None,
            remaining=remaining_time(j.flat_rate_hours or 0.0, seconds.get(j.id, 0.0)),
            queued_at=j.planned_start_at or j.created_at,
            parts_eta_at=etas.get(j.id),
            branch=j.branch,
        )
        for j in jobs
    ]
    buffer = timedelta(minutes=settings.finish_buffer_minutes)
    margin = timedelta(minutes=settings.at_risk_margin_minutes)
    calendars = calendars_of(settings, branches)
    finishes = project(planned, now, buffer, calendars)
    remaining: dict[uuid.UUID, timedelta] = {}
    for p in planned:
        remaining[p.order_id] = remaining.get(p.order_id, timedelta()) + p.remaining
    await asyncio.sleep(0)
    pc = PromiseCheck.__table__  # type: ignore[attr-defined]
    known = {
        row.repair_order_id: row
        for row in await session.exec(
            cast(
                Any,
                core_select(
                    pc.c.repair_order_id, pc.c.at_risk_since, pc.c.projected_finish_at
                ).where(pc.c.repair_order_id.in_(list(by_id))),
            )
        )
    }
    due: list[tuple[Any, datetime, bool]] = []  # (order, projected finish, on time)
    for order in orders:
        finish_at = finishes.get(order.id) or after_work(now, buffer, calendars.get(order.branch))
        assert order.promised_at is not None
        on_time = finish_at <= order.promised_at - margin
        last = known.get(order.id)
        if (
            partial
            and last is not None
            and on_time == (last.at_risk_since is None)
            and abs(last.projected_finish_at - finish_at) < MOVED
        ):
            continue  # nothing a screen or the advisor would see
        due.append((order, finish_at, on_time))
    if dry_run:
        return len(due)
    if not due:
        return 0
    # Entities only for what is written.
    checks = {
        c.repair_order_id: c
        for c in (
            await session.exec(
                select(PromiseCheck).where(
                    col(PromiseCheck.repair_order_id).in_([o.id for o, _, _ in due])
                )
            )
        ).all()
    }
    flagged = 0
    for order, finish_at, on_time in due:
        check = checks.get(order.id)
        if check is None:
            check = PromiseCheck(
                repair_order_id=order.id,
                branch=order.branch,
                projected_finish_at=finish_at,
                checked_at=now,
            )
            session.add(check)
        check.projected_finish_at, check.checked_at = finish_at, now
        if on_time:
            check.at_risk_since = None
            continue
        if check.at_risk_promised_at == order.promised_at:
            # Warned about this promise already: flagged again, not announced again.
            if check.at_risk_since is None:
                check.at_risk_since = now
            continue
        check.at_risk_since = now
        check.at_risk_promised_at = order.promised_at
        add_event(
            session,
            RepairOrderAtRisk(
                repair_order_id=order.id,
                number=order.number,
                branch=order.branch,
                advisor=order.advisor,
                customer_id=order.customer_id,
                plate=order.plate,
                promised_at=order.promised_at,
                projected_finish_at=finish_at,
                remaining_hours=Decimal(
                    str(round(remaining.get(order.id, timedelta()).total_seconds() / 3600, 2))
                ),
                detected_at=now,
            ),
            subject=order.id,
        )
        flagged += 1
    await session.flush()
    return flagged


class PromiseWatch:
    """Branches whose projection inputs changed since the last pass (told by the board's
    commit hook, from any thread of the process)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.branches: set[str] = set()
        self.changed = asyncio.Event()

    def inputs_changed(self, branches: set[str]) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._add, set(branches))

    def _add(self, branches: set[str]) -> None:
        self.branches |= branches
        self.changed.set()

    def take(self) -> set[str]:
        branches, self.branches = self.branches, set()
        self.changed.clear()
        return branches


async def promise_timer(runtime: Runtime) -> None:
    """Background job: project every open order at the configured interval, and the open
    orders of a branch `promise_recheck_delay` seconds after clocking, dispatch, a parts
    ETA or new work changed it there (changes within that delay are checked together), so
    the at-risk flag on the board follows the projection rather than the timer."""
    settings = runtime.settings
    assert isinstance(settings, Settings)
    loop = asyncio.get_running_loop()
    watch = PromiseWatch(loop)
    board.PROJECTION_WATCHES.add(watch)
    next_full = loop.time()
    while True:
        branches: set[str] | None = None
        wait = next_full - loop.time()
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.changed.wait(), wait)
        if loop.time() >= next_full:
            watch.take()
            next_full = loop.time() + settings.promise_check_interval
        else:
            await asyncio.sleep(settings.promise_recheck_delay)  # let a burst gather
            branches = watch.take()
        try:
            if branches is not None:
                # Projected without the write lock first: most passes change nothing.
                async with runtime.db.reader() as session:
                    if not await check_promises(
                        session, settings, utcnow(), branches, dry_run=True
                    ):
                        continue
            # The order's version counter makes a second replica's concurrent pass fail
            # instead of warning twice.
            async with runtime.db.transaction() as session:
                await check_promises(session, settings, utcnow(), branches)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("promise check failed; retrying at the next interval")


async def renew_promise(
    session: AsyncSession,
    order_id: uuid.UUID,
    body: NewPromise,
    by: User,
    now: datetime,
    *,
    if_match: str | None,
) -> RepairOrder:
    """The advisor called the customer: record when, and the new promise they agreed."""
    order = await get_repair_order(session, order_id, by)
    check_if_match(if_match, order.version)
    previous = order.promised_at
    record_promise(order, body.promised_at, body.told_at or now, "advisor")
    order.customer_told_at = body.told_at or now
    check = await session.get(PromiseCheck, order.id)
    if check is not None:
        check.at_risk_since = None
    await session.flush()
    if order.promised_at != previous and order.promised_at is not None:
        # Followup sends the customer the new time (a later one only).
        add_event(
            session,
            RepairOrderPromiseChanged(
                repair_order_id=order.id,
                number=order.number,
                branch=order.branch,
                customer_id=order.customer_id,
                plate=order.plate,
                advisor=order.advisor,
                previous_promised_at=previous,
                promised_at=order.promised_at,
                told_at=order.customer_told_at,
                changed_by=by.id,
                changed_at=now,
            ),
            subject=order.id,
        )
    return order


async def at_risk_orders(session: AsyncSession, by: User, limit: int) -> list[RepairOrderPublic]:
    """The advisor's list, each order with its projected finish and since when it is at
    risk: what the advisor tells the customer on the phone."""
    query = (
        select(RepairOrder, PromiseCheck.projected_finish_at, PromiseCheck.at_risk_since)
        .join(PromiseCheck, col(PromiseCheck.repair_order_id) == col(RepairOrder.id))
        .where(
            PromiseCheck.branch == by.branch,
            col(PromiseCheck.at_risk_since).is_not(None),
            col(RepairOrder.status).in_(list(WORKING)),
        )
        .order_by(col(RepairOrder.promised_at))
        .limit(limit)
    )
    listed = []
    for order, finish_at, since in (await session.exec(query)).all():
        public = RepairOrderPublic.model_validate(order, from_attributes=True)
        public.projected_finish_at, public.at_risk_since = finish_at, since
        listed.append(public)
    return listed
