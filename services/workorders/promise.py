"""Promise-time control: project when each open order will be finished and warn the
advisor while there is still time to call the customer."""

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.workorders.config import Settings
from services.workorders.models import Job, PromiseCheck, RepairOrder
from services.workorders.schemas import NewPromise
from services.workorders.service import (
    actual_seconds,
    get_repair_order,
    parts_eta,
    record_promise,
)
from services.workorders.states import WORKING, JobStatus
from shared.auth import User
from shared.concurrency import check_if_match
from shared.contracts.workorders import RepairOrderAtRisk
from shared.events import utcnow
from shared.outbox import add_event
from shared.service import Runtime

log = logging.getLogger(__name__)

FINISHED = frozenset({JobStatus.done, JobStatus.qc_passed, JobStatus.cancelled})
# Even a job clocked past its flat rate needs some time to finish.
MIN_REMAINING = timedelta(minutes=15)


@dataclass(frozen=True)
class PlannedJob:
    """What the projection needs to know about one unfinished job."""

    job_id: uuid.UUID
    order_id: uuid.UUID
    technician_id: str | None
    remaining: timedelta
    queued_at: datetime  # planned start, or creation: the technician's queue order
    parts_eta_at: datetime | None = None


def remaining_time(flat_rate_hours: Decimal, clocked_seconds: float) -> timedelta:
    left = timedelta(hours=float(flat_rate_hours)) - timedelta(seconds=clocked_seconds)
    return max(left, MIN_REMAINING)


def project(jobs: list[PlannedJob], now: datetime, buffer: timedelta) -> dict[uuid.UUID, datetime]:
    """Finish time per order: each technician works their queue in order, one job at a
    time; a job waiting for parts starts no earlier than their ETA; unassigned jobs start
    now (as if a free technician took them); QC and hand-over add `buffer`."""
    free_at: dict[str, datetime] = {}
    finish: dict[uuid.UUID, datetime] = {}
    for job in sorted(jobs, key=lambda j: (j.queued_at, str(j.job_id))):
        start = now
        if job.parts_eta_at is not None:
            start = max(start, job.parts_eta_at)
        if job.technician_id is not None:
            start = max(start, free_at.get(job.technician_id, now))
        end = start + job.remaining
        if job.technician_id is not None:
            free_at[job.technician_id] = end
        finish[job.order_id] = max(finish.get(job.order_id, end), end)
    return {order_id: at + buffer for order_id, at in finish.items()}


async def check_promises(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Project every open order of every branch; warn once per promise. Returns how many
    orders became at risk."""
    orders = list(
        (
            await session.exec(
                select(RepairOrder).where(
                    col(RepairOrder.status).in_(list(WORKING)),
                    col(RepairOrder.promised_at).is_not(None),
                )
            )
        ).all()
    )
    if not orders:
        return 0
    by_id = {o.id: o for o in orders}
    branches = {o.branch for o in orders}
    # A technician's queue spans every open order of the branch.
    jobs = list(
        (
            await session.exec(
                select(Job).where(
                    col(Job.branch).in_(branches),
                    col(Job.repair_order_id).in_(list(by_id)),
                    col(Job.status).notin_(list(FINISHED)),
                )
            )
        ).all()
    )
    seconds = await actual_seconds(session, [j.id for j in jobs], now)
    etas = await parts_eta(session, [j.id for j in jobs])
    planned = [
        PlannedJob(
            job_id=j.id,
            order_id=j.repair_order_id,
            technician_id=f"{j.branch}/{j.technician_id}" if j.technician_id else None,
            remaining=remaining_time(j.flat_rate_hours, seconds.get(j.id, 0.0)),
            queued_at=j.planned_start_at or j.created_at,
            parts_eta_at=etas.get(j.id),
        )
        for j in jobs
    ]
    buffer = timedelta(minutes=settings.finish_buffer_minutes)
    margin = timedelta(minutes=settings.at_risk_margin_minutes)
    finishes = project(planned, now, buffer)
    remaining: dict[uuid.UUID, timedelta] = {}
    for p in planned:
        remaining[p.order_id] = remaining.get(p.order_id, timedelta()) + p.remaining
    checks = {
        c.repair_order_id: c
        for c in (
            await session.exec(
                select(PromiseCheck).where(col(PromiseCheck.repair_order_id).in_(list(by_id)))
            )
        ).all()
    }
    flagged = 0
    for order in orders:
        finish_at = finishes.get(order.id, now + buffer)
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
        assert order.promised_at is not None
        if finish_at <= order.promised_at - margin:
            check.at_risk_since = None
            continue
        if check.at_risk_promised_at == order.promised_at:
            continue  # the advisor was warned about this promise already
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


async def promise_timer(runtime: Runtime) -> None:
    """Background job: project every open order at the configured interval."""
    settings = runtime.settings
    assert isinstance(settings, Settings)
    while True:
        try:
            # The order's version counter makes a second replica's concurrent pass fail
            # instead of warning twice.
            async with runtime.db.transaction() as session:
                await check_promises(session, settings, utcnow())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("promise check failed; retrying at the next interval")
        await asyncio.sleep(settings.promise_check_interval)


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
    record_promise(order, body.promised_at, body.told_at or now, "advisor")
    order.customer_told_at = body.told_at or now
    check = await session.get(PromiseCheck, order.id)
    if check is not None:
        check.at_risk_since = None
    await session.flush()
    return order


async def at_risk_orders(session: AsyncSession, by: User, limit: int) -> list[RepairOrder]:
    query = (
        select(RepairOrder)
        .join(PromiseCheck, col(PromiseCheck.repair_order_id) == col(RepairOrder.id))
        .where(
            PromiseCheck.branch == by.branch,
            col(PromiseCheck.at_risk_since).is_not(None),
            col(RepairOrder.status).in_(list(WORKING)),
        )
        .order_by(col(RepairOrder.promised_at))
        .limit(limit)
    )
    return list((await session.exec(query)).all())
