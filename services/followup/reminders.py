"""Service reminders: the next service due by date or mileage, the due list, the outcome."""

import math
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.followup.config import Settings
from services.followup.models import (
    DeliveredOrder,
    ReminderOutcomeCreate,
    ReminderSentCreate,
    ReminderStatus,
    ServiceReminder,
)
from shared.auth import User
from shared.calendar import BranchCalendar
from shared.contracts.followup import ReminderSent
from shared.contracts.workorders import RepairOrderDelivered
from shared.outbox import add_event
from shared.pagination import decode_cursor, encode_cursor
from shared.problems import Conflict, NotFound


def daily_km(
    history: list[tuple[datetime, int]], *, at: datetime, odometer_km: int, default: float
) -> float:
    """Kilometres a day from the earliest reading on record to this one."""
    readings = sorted((t, km) for t, km in history if t < at and km <= odometer_km)
    if not readings:
        return default
    first_at, first_km = readings[0]
    days = (at - first_at).total_seconds() / 86400
    if days < 7 or odometer_km == first_km:
        return default
    return (odometer_km - first_km) / days


def next_service(
    *, on: date, odometer_km: int, per_day: float, settings: Settings
) -> tuple[date, int, str]:
    """(due day, due km, reason): the earlier of the date limit and the mileage limit."""
    by_date = on + timedelta(days=settings.service_interval_days)
    by_km = on + timedelta(days=math.ceil(settings.service_interval_km / per_day))
    due_km = odometer_km + settings.service_interval_km
    return (by_km, due_km, "mileage") if by_km < by_date else (by_date, due_km, "date")


async def refresh(
    session: AsyncSession,
    event: RepairOrderDelivered,
    hours: BranchCalendar,
    settings: Settings,
) -> ServiceReminder:
    """A delivery replaces the vehicle's open reminder with one from this visit. Two
    deliveries of one car handled at the same moment (on two replicas) would each replace
    the one they saw and leave two open: the unique index on a vehicle's open reminder
    fails the second, which is handled again and replaces the first one's."""
    readings = (
        await session.exec(
            select(DeliveredOrder.delivered_at, DeliveredOrder.odometer_km)
            .where(DeliveredOrder.vehicle_id == event.vehicle_id)
            .where(col(DeliveredOrder.odometer_km).is_not(None))
        )
    ).all()
    per_day = daily_km(
        [(t, km) for t, km in readings if km is not None],
        at=event.delivered_at,
        odometer_km=event.odometer_km,
        default=settings.default_daily_km,
    )
    due_on, due_km, reason = next_service(
        on=hours.local_date(event.delivered_at),
        odometer_km=event.odometer_km,
        per_day=per_day,
        settings=settings,
    )
    now = settings.clock()
    open_ones = (
        await session.exec(
            select(ServiceReminder)
            .where(ServiceReminder.vehicle_id == event.vehicle_id)
            .where(ServiceReminder.status == ReminderStatus.open)
        )
    ).all()
    for old in open_ones:
        old.status, old.updated_at = ReminderStatus.superseded, now
    reminder = ServiceReminder(
        branch=event.branch,
        vehicle_id=event.vehicle_id,
        customer_id=event.customer_id,
        vin=event.vin,
        plate=event.plate,
        last_repair_order_id=event.repair_order_id,
        last_repair_order_number=event.number,
        last_odometer_km=event.odometer_km,
        due_km=due_km,
        daily_km=round(per_day, 1),
        due_reason=reason,
        declined_work=list(event.declined_work),
        # Sent on a day the branch works: one due on a holiday or a weekend that is no
        # make-up working day waits for the next.
        due_at=hours.day_start(hours.next_workday(due_on)),
        created_at=now,
        updated_at=now,
    )
    session.add(reminder)
    return reminder


async def due_list(
    session: AsyncSession,
    by: User,
    settings: Settings,
    hours: BranchCalendar,
    *,
    due_only: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[ServiceReminder], str | None]:
    """Open reminders of the branch, soonest due first; `due_only`: within the lead time."""
    query = (
        select(ServiceReminder)
        .where(ServiceReminder.branch == by.branch)
        .where(ServiceReminder.status == ReminderStatus.open)
    )
    if due_only:
        today = hours.local_date(settings.clock())
        horizon = hours.day_start(today + timedelta(days=settings.reminder_lead_days + 1))
        query = query.where(col(ServiceReminder.due_at) < horizon)
    if cursor is not None:
        at, row_id = decode_cursor(cursor)
        query = query.where(
            or_(
                col(ServiceReminder.due_at) > at,
                and_(col(ServiceReminder.due_at) == at, col(ServiceReminder.id) > row_id),
            )
        )
    query = query.order_by(col(ServiceReminder.due_at), col(ServiceReminder.id)).limit(limit + 1)
    rows = list((await session.exec(query)).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].due_at, rows[-1].id)


async def _open_reminder(
    session: AsyncSession, reminder_id: uuid.UUID, by: User
) -> ServiceReminder:
    """The open reminder, its row held to the end of the transaction: two agents at once
    take turns, so every send is counted and the outcome is recorded once."""
    reminder = await session.get(ServiceReminder, reminder_id, with_for_update=True)
    if reminder is None or reminder.branch != by.branch:
        raise NotFound(f"no service reminder {reminder_id}")
    if reminder.status != ReminderStatus.open:
        raise Conflict(f"the reminder is {reminder.status}", current_status=reminder.status)
    return reminder


async def record_outcome(
    session: AsyncSession,
    reminder_id: uuid.UUID,
    body: ReminderOutcomeCreate,
    by: User,
    settings: Settings,
) -> ServiceReminder:
    reminder = await _open_reminder(session, reminder_id, by)
    reminder.status = ReminderStatus(body.outcome.value)
    reminder.note, reminder.updated_at = body.note, settings.clock()
    await session.flush()
    return reminder


async def record_sent(
    session: AsyncSession,
    reminder_id: uuid.UUID,
    body: ReminderSentCreate,
    by: User,
    settings: Settings,
) -> ServiceReminder:
    """The reminder went out to the customer: counted and told to the vehicle's file."""
    reminder = await _open_reminder(session, reminder_id, by)
    now = settings.clock()
    reminder.times_sent += 1
    reminder.sent_at, reminder.sent_channel, reminder.updated_at = now, body.channel.value, now
    add_event(
        session,
        ReminderSent(
            reminder_id=reminder.id,
            branch=reminder.branch,
            customer_id=reminder.customer_id,
            vehicle_id=reminder.vehicle_id,
            kind=reminder.due_reason,
            due_on=reminder.due_at.astimezone(ZoneInfo(settings.zone_of(reminder.branch))).date(),
            channel=body.channel.value,
            sent_at=now,
        ),
        subject=reminder.id,
    )
    await session.flush()
    return reminder
