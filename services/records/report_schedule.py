"""Scheduled reports: daily, weekly and monthly runs generated on time, kept, and made up
after downtime.

A daily schedule's run for day D is due at the schedule's local hour on D+1; a weekly run
(Monday to Sunday) at that hour on the next Monday; a monthly run on the 1st of the next
month. Every pass (at start-up, then every `report_check_interval_seconds`) works out each
period that is due and has no run yet — up to `report_makeup_periods` back, never before the
schedule existed — and claims it by inserting its run: the unique (schedule, period) row means
one replica generates it and the others skip it. A run whose replica died while generating
is taken over after `report_claim_timeout_seconds`; a failed one is retried up to three times.
"""

import asyncio
import logging
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from services.records import report_kpis
from services.records.config import Settings
from services.records.report_definitions import MEDIA_TYPES
from services.records.report_models import ReportRun, ReportRunFile, ReportSchedule
from shared.db import Database

if TYPE_CHECKING:
    from shared.service import Runtime

log = logging.getLogger(__name__)

FREQUENCIES = ("daily", "weekly", "monthly")
FORMATS = ("pdf", "xlsx", "csv", "json")
MAX_ATTEMPTS = 3


def period_before(frequency: str, due_on: date, zone: str) -> report_kpis.Period:
    """The period a run due on local day `due_on` reports on."""
    if frequency == "daily":
        day = due_on - timedelta(days=1)
        return report_kpis.Period("day", day, day, zone)
    if frequency == "weekly":
        monday = due_on - timedelta(days=due_on.weekday() + 7)
        return report_kpis.Period("week", monday, monday + timedelta(days=6), zone)
    last = due_on.replace(day=1) - timedelta(days=1)
    return report_kpis.Period("month", last.replace(day=1), last, zone)


def _due_days(frequency: str, today: date) -> "list[date]":
    """Due days on or before `today`, newest first (an endless walk back, cut by the caller)."""
    if frequency == "daily":
        return [today - timedelta(days=i) for i in range(400)]
    if frequency == "weekly":
        monday = today - timedelta(days=today.weekday())
        return [monday - timedelta(weeks=i) for i in range(60)]
    first = today.replace(day=1)
    out = []
    for _ in range(24):
        out.append(first)
        first = (first - timedelta(days=1)).replace(day=1)
    return out


def owed(
    schedule: ReportSchedule, now: datetime, zone: str, limit: int
) -> list[tuple[report_kpis.Period, datetime]]:
    """(period, due time) of every run due by `now` since the schedule exists, newest first."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    out: list[tuple[report_kpis.Period, datetime]] = []
    for due_on in _due_days(schedule.frequency, today):
        due_at = datetime.combine(due_on, time(schedule.hour), tz).astimezone(UTC)
        if due_at > now:
            continue
        if due_at < schedule.created_at or len(out) >= limit:
            break
        out.append((period_before(schedule.frequency, due_on, zone), due_at))
    return out


async def run_due(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """One pass: claim and generate every run that is due. Returns how many were generated."""
    now = now or datetime.now(UTC)
    async with db.reader() as session:
        schedules = list(
            (await session.exec(select(ReportSchedule).where(col(ReportSchedule.active)))).all()
        )
        done: dict[uuid.UUID, dict[date, ReportRun]] = {}
        for run in (
            await session.exec(
                select(ReportRun).where(col(ReportRun.schedule_id).in_([s.id for s in schedules]))
            )
        ).all():
            done.setdefault(run.schedule_id, {})[run.from_on] = run
        session.expunge_all()  # plain values from here on, after the read transaction ends
    generated = 0
    for schedule in schedules:
        zone = settings.zone_of(schedule.branch)
        for period, due_at in reversed(owed(schedule, now, zone, settings.report_makeup_periods)):
            existing = done.get(schedule.id, {}).get(period.from_on)
            run_id = await _claim(db, settings, schedule, period, due_at, existing, now)
            if run_id is None:
                continue
            await _generate(db, settings, schedule, period, run_id, due_at)
            generated += 1
    return generated


async def _claim(
    db: Database,
    settings: Settings,
    schedule: ReportSchedule,
    period: report_kpis.Period,
    due_at: datetime,
    existing: ReportRun | None,
    now: datetime,
) -> uuid.UUID | None:
    """The run's id if this replica now owns generating it, else None."""
    if existing is None:
        run = ReportRun(
            schedule_id=schedule.id,
            owner_branch=schedule.owner_branch,
            branch=schedule.branch,
            frequency=schedule.frequency,
            from_on=period.from_on,
            to_on=period.to_on,
            due_at=due_at,
            status="generating",
            claimed_at=now,
        )
        try:
            async with db.transaction() as session:
                session.add(run)
        except IntegrityError:
            return None  # another replica claimed it first
        return run.id
    stale = now - timedelta(seconds=settings.report_claim_timeout_seconds)
    if existing.status == "ready":
        return None
    if existing.status == "generating" and existing.claimed_at > stale:
        return None
    if existing.status == "failed" and existing.attempts >= MAX_ATTEMPTS:
        return None
    async with db.transaction() as session:
        result: Any = await session.exec(
            update(ReportRun)
            .where(
                col(ReportRun.id) == existing.id,
                or_(
                    and_(col(ReportRun.status) == "generating", col(ReportRun.claimed_at) <= stale),
                    and_(col(ReportRun.status) == "failed", col(ReportRun.attempts) < MAX_ATTEMPTS),
                ),
            )
            .values(status="generating", claimed_at=now, attempts=col(ReportRun.attempts) + 1)
        )
        return existing.id if result.rowcount == 1 else None


async def _generate(
    db: Database,
    settings: Settings,
    schedule: ReportSchedule,
    period: report_kpis.Period,
    run_id: uuid.UUID,
    due_at: datetime,
) -> None:
    try:
        async with db.reader() as session:
            report = await report_kpis.compute(
                session, settings, branch=schedule.branch, period=period, lang=schedule.language
            )
        from services.records import report_output  # layout libraries on first use

        files = {}
        for fmt in FORMATS:
            files[fmt] = await asyncio.to_thread(
                report_output.render, report, fmt, dealer=settings.report_dealer_name
            )
    except Exception as exc:
        log.exception("scheduled report %s for %s failed", schedule.id, period.label())
        async with db.transaction() as session:
            run = await session.get(ReportRun, run_id)
            if run is not None:
                run.status, run.error = "failed", str(exc)[:2000]
        return
    now = datetime.now(UTC)
    async with db.transaction() as session:
        run = await session.get(ReportRun, run_id)
        if run is None:
            return
        for fmt, content in files.items():
            if await session.get(ReportRunFile, (run_id, fmt)) is None:
                session.add(
                    ReportRunFile(
                        run_id=run_id,
                        format=fmt,
                        media_type=MEDIA_TYPES[fmt],
                        size=len(content),
                        content=content,
                    )
                )
        run.status, run.generated_at, run.error = "ready", now, None
        # Generated well after its due time: the service was down (or busy) then.
        run.made_up = now - due_at > timedelta(seconds=2 * settings.report_check_interval_seconds)
    log.info("scheduled report %s for %s generated", schedule.id, period.label())


async def scheduled_reports(runtime: "Runtime") -> None:
    """Background job: a pass at start-up (making up what was missed), then periodically."""
    settings = runtime.settings
    assert isinstance(settings, Settings)
    while True:
        try:
            await run_due(runtime.db, settings)
        except Exception:
            log.exception("scheduled reports pass failed")
        await asyncio.sleep(settings.report_check_interval_seconds)
