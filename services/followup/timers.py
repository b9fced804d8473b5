"""Followup's timers: visits past their window expire, overdue complaints escalate.

State-based, not scheduled: each pass claims every row whose moment has passed, so a
timer missed while the service was down fires on the next pass, once.
"""

import asyncio
import logging
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.followup import complaints
from services.followup.config import Settings
from services.followup.models import Visit, VisitOutcome, VisitStatus
from shared.contracts.followup import VisitExpired
from shared.db import Database
from shared.outbox import add_event
from shared.service import Runtime

log = logging.getLogger(__name__)


async def expire_visits(
    session: AsyncSession, settings: Settings, *, now: datetime, batch: int
) -> int:
    query = (
        select(Visit)
        .where(Visit.status == VisitStatus.open)
        .where(col(Visit.expires_at) <= now)
        .order_by(col(Visit.expires_at))
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    visits = list((await session.exec(query)).all())
    for visit in visits:
        visit.status, visit.outcome = VisitStatus.expired, VisitOutcome.expired
        visit.closed_at = visit.updated_at = now
        add_event(
            session,
            VisitExpired(
                visit_id=visit.id,
                branch=visit.branch,
                repair_order_id=visit.repair_order_id,
                customer_id=visit.customer_id,
                attempts=visit.attempts,
                expired_at=now,
            ),
            subject=visit.id,
        )
    await session.flush()
    return len(visits)


async def run_timers(db: Database, settings: Settings) -> dict[str, int]:
    """One pass: every due row, in batches, each batch in its own transaction."""
    fired = {"expired_visits": 0, "escalated_complaints": 0}
    now = settings.clock()
    for name, step in (
        ("expired_visits", expire_visits),
        ("escalated_complaints", complaints.escalate_overdue),
    ):
        while True:
            async with db.transaction() as session:
                count = await step(session, settings, now=now, batch=settings.timer_batch)
            fired[name] += count
            if count < settings.timer_batch:
                break
    return fired


async def timer_job(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, Settings)
    while True:
        try:
            fired = await run_timers(runtime.db, settings)
            if any(fired.values()):
                log.info("timers fired: %s", fired)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("follow-up timers failed; retrying on the next pass")
        await asyncio.sleep(settings.timer_interval)
