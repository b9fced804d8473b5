"""Events workorders consumes."""

from sqlmodel.ext.asyncio.session import AsyncSession

from services.workorders import payments, service
from shared.consumers import Subscribers
from shared.contracts import EstimateApproved, IntakeOpened, PaymentConfirmed

subscriber = Subscribers()


@subscriber(IntakeOpened, durable="workorders__open_repair_order")
async def open_repair_order(event: IntakeOpened, session: AsyncSession) -> None:
    await service.open_draft_from_intake(session, event)


@subscriber(EstimateApproved, durable="workorders__apply_consent")
async def apply_consent(event: EstimateApproved, session: AsyncSession) -> None:
    await service.apply_consent(session, event)


@subscriber(PaymentConfirmed, durable="workorders__record_erp_payment")
async def record_erp_payment(event: PaymentConfirmed, session: AsyncSession) -> None:
    await payments.record_erp_payment(session, event)
