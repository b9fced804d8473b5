"""Which events tell the customer something: the car is ready (with the amount due), the
promise moved later, an appointment is tomorrow. Each queues one message per cause, to
a customer who has not refused contact nor opted out of the channel."""

import logging
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from services.followup import messages
from services.followup.channels import local_text
from services.followup.config import Settings
from services.followup.message_rules import normalize_mobile, send_not_before
from services.followup.models import Contact
from shared.calendar import branch_calendar
from shared.contracts.reception import AppointmentBooked, AppointmentClosed
from shared.contracts.workorders import RepairOrderPromiseChanged, RepairOrderReady

log = logging.getLogger(__name__)


def _quiet(settings: Settings) -> tuple[time, time]:
    return (
        time.fromisoformat(settings.quiet_hours_from),
        time.fromisoformat(settings.quiet_hours_until),
    )


async def _queue_sms(
    session: AsyncSession,
    settings: Settings,
    *,
    branch: str,
    contact: Contact | None,
    cause: str,
    template: str,
    params: dict[str, Any],
    at: datetime,
    awaited: bool,
) -> bool:
    """Queue an SMS to the contact's mobile at `at` (moved out of quiet hours unless the
    customer is waiting for it); nothing for a customer who refused contact, has no
    mobile or replied T."""
    if contact is None or not contact.contact_consent or not contact.mobile:
        log.info("no message %s: no contact, no consent or no mobile", cause)
        return False
    mobile = normalize_mobile(contact.mobile)
    if await messages.opted_out(session, "sms", [mobile]):
        log.info("no message %s: the customer opted out of SMS", cause)
        return False
    quiet_from, quiet_until = _quiet(settings)
    zone = ZoneInfo(settings.zone_of(branch))
    return await messages.queue_message(
        session,
        branch=branch,
        customer_id=contact.customer_id,
        cause=cause,
        channel="sms",
        recipient=mobile,
        purpose="service",
        template=template,
        language=contact.language,
        params=params,
        not_before=send_not_before(
            at, zone, awaited=awaited, quiet_from=quiet_from, quiet_until=quiet_until
        ),
        now=settings.clock(),
    )


async def car_ready(session: AsyncSession, event: RepairOrderReady, settings: Settings) -> bool:
    """The customer is waiting for this one: it goes out in quiet hours too."""
    contact = await session.get(Contact, event.customer_id)
    return await _queue_sms(
        session,
        settings,
        branch=event.branch,
        contact=contact,
        cause=f"car_ready:{event.repair_order_id}",
        template="car_ready",
        params={
            "number": event.number,
            "plate": event.plate or "",
            "amount": f"{event.amount_due:.2f}",
            "currency": event.currency,
        },
        at=settings.clock(),
        awaited=True,
    )


async def promise_changed(
    session: AsyncSession, event: RepairOrderPromiseChanged, settings: Settings
) -> bool:
    """A later promise is a delay the customer hears of in writing; an earlier one is not."""
    earlier = event.previous_promised_at
    if earlier is not None and event.promised_at <= earlier:
        return False
    contact = await session.get(Contact, event.customer_id)
    zone = ZoneInfo(settings.zone_of(event.branch))
    return await _queue_sms(
        session,
        settings,
        branch=event.branch,
        contact=contact,
        cause=f"delay:{event.repair_order_id}:{event.promised_at.isoformat()}",
        template="promise_changed",
        params={
            "number": event.number,
            "plate": event.plate or "",
            "promised": local_text(event.promised_at, zone),
        },
        at=settings.clock(),
        awaited=False,
    )


def reminder_at(settings: Settings, branch: str, scheduled_for: datetime) -> datetime:
    """The day before the appointment, at its clock time moved into the branch's business
    hours (before opening: opening; at or after closing: an hour before closing)."""
    zone = settings.zone_of(branch)
    calendar = branch_calendar(settings, branch, zone)
    day = calendar.local_date(scheduled_for) - timedelta(days=1)
    opening, closing = calendar.opening(day), calendar.closing(day)
    at = datetime.combine(day, scheduled_for.astimezone(ZoneInfo(zone)).timetz())
    return max(opening, min(at, closing - timedelta(hours=1)))


async def appointment_booked(
    session: AsyncSession, event: AppointmentBooked, settings: Settings
) -> bool:
    """The reminder of this slot; a reschedule (a new booked event) cancels the reminder
    of the old slot. A booking made after the reminder's moment is reminded at once while
    the appointment is more than `2 h` away."""
    prefix = f"appointment:{event.appointment_id}:"
    cause = f"{prefix}{event.scheduled_for.isoformat()}"
    await messages.cancel_pending(session, cause_prefix=prefix, keep=cause)
    now = settings.clock()
    at = max(reminder_at(settings, event.branch, event.scheduled_for), now)
    if at > event.scheduled_for - timedelta(hours=2):
        return False
    contact = await session.get(Contact, event.customer_id)
    zone = ZoneInfo(settings.zone_of(event.branch))
    return await _queue_sms(
        session,
        settings,
        branch=event.branch,
        contact=contact,
        cause=cause,
        template="appointment_reminder",
        params={"time": local_text(event.scheduled_for, zone)},
        at=at,
        awaited=False,
    )


async def appointment_closed(
    session: AsyncSession, event: AppointmentClosed, settings: Settings
) -> int:
    """A cancelled (or already arrived) appointment needs no reminder."""
    return await messages.cancel_pending(
        session, cause_prefix=f"appointment:{event.appointment_id}:", keep=None
    )
