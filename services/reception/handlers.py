"""Events reception consumes: extra work found in the workshop."""

from sqlmodel.ext.asyncio.session import AsyncSession

from services.reception import estimates
from services.reception.config import Settings
from shared.consumers import Subscribers
from shared.contracts.workorders import ExtraWorkFound


def subscribers(settings: Settings) -> Subscribers:
    """The handlers of one app, bound to its settings (tax rate, currency)."""
    subscriber = Subscribers()

    @subscriber(ExtraWorkFound, durable="reception__extra_work_revision")
    async def extra_work_revision(event: ExtraWorkFound, session: AsyncSession) -> None:
        await estimates.extra_work_found(session, event, settings)

    return subscriber
