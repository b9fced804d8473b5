"""Events followup consumes."""

from sqlmodel.ext.asyncio.session import AsyncSession

from services.followup import message_triggers, service
from services.followup.config import Settings
from services.followup.models import BranchZone
from shared.branch_zones import with_branch_zones
from shared.consumers import Subscribers
from shared.contracts import CustomerRegistered, IntakeOpened
from shared.contracts.reception import AppointmentBooked, AppointmentClosed
from shared.contracts.workorders import (
    RepairOrderDelivered,
    RepairOrderPromiseChanged,
    RepairOrderReady,
)


def subscribers(settings: Settings) -> Subscribers:
    """The handlers of one app, bound to its settings (time zones, clock, windows)."""
    subscriber = Subscribers()

    @subscriber(CustomerRegistered, durable="followup__register_contact")
    async def register_contact(event: CustomerRegistered, session: AsyncSession) -> None:
        await service.upsert_contact(
            session, event.branch, event.customer, as_of=event.envelope.time
        )

    @subscriber(IntakeOpened, durable="followup__add_contact")
    async def add_contact(event: IntakeOpened, session: AsyncSession) -> None:
        await service.upsert_contact(
            session,
            event.branch,
            event.customer,
            as_of=event.envelope.time,
            intake_at=event.opened_at,
        )

    @subscriber(RepairOrderDelivered, durable="followup__schedule_visit")
    async def schedule_visit(event: RepairOrderDelivered, session: AsyncSession) -> None:
        await service.record_delivery(session, event, settings)

    @subscriber(RepairOrderReady, durable="followup__car_ready_message")
    async def car_ready_message(event: RepairOrderReady, session: AsyncSession) -> None:
        await message_triggers.car_ready(session, event, settings)

    @subscriber(RepairOrderPromiseChanged, durable="followup__delay_message")
    async def delay_message(event: RepairOrderPromiseChanged, session: AsyncSession) -> None:
        await message_triggers.promise_changed(session, event, settings)

    @subscriber(AppointmentBooked, durable="followup__appointment_reminder")
    async def appointment_reminder(event: AppointmentBooked, session: AsyncSession) -> None:
        await message_triggers.appointment_booked(session, event, settings)

    @subscriber(AppointmentClosed, durable="followup__appointment_reminder_cancel")
    async def appointment_reminder_cancel(event: AppointmentClosed, session: AsyncSession) -> None:
        await message_triggers.appointment_closed(session, event, settings)

    # The branch's zone from the directory, into this app's settings (`zone_of`).
    return with_branch_zones(subscriber, service="followup", model=BranchZone, settings=settings)
