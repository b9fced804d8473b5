"""Events followup consumes."""

from sqlmodel.ext.asyncio.session import AsyncSession

from services.followup import service
from shared.consumers import Subscribers
from shared.contracts import CustomerRegistered, IntakeOpened

subscriber = Subscribers()


@subscriber(CustomerRegistered, durable="followup__register_contact")
async def register_contact(event: CustomerRegistered, session: AsyncSession) -> None:
    await service.upsert_contact(session, event.branch, event.customer, as_of=event.envelope.time)


@subscriber(IntakeOpened, durable="followup__add_contact")
async def add_contact(event: IntakeOpened, session: AsyncSession) -> None:
    await service.upsert_contact(
        session, event.branch, event.customer, as_of=event.envelope.time, intake_at=event.opened_at
    )
