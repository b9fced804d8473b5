"""Customer messages' outbox: a message is queued once per (cause, channel, recipient) and
a sender leases due rows in the database, so replicas never send one twice."""

import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.followup.message_rules import retry_delay
from services.followup.models import CustomerMessage, MessageOptOut


async def queue_message(
    session: AsyncSession,
    *,
    branch: str,
    customer_id: uuid.UUID,
    cause: str,
    channel: str,
    recipient: str,
    purpose: str,
    template: str,
    language: str,
    params: dict[str, Any],
    not_before: datetime,
    now: datetime,
) -> bool:
    """Queue a message; False when this cause already queued it for this recipient and
    channel (a duplicate event or a second replica), which adds nothing."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = cast(Any, CustomerMessage).__table__
    statement = (
        dialect.insert(table)
        .values(
            id=uuid.uuid4(),
            branch=branch,
            customer_id=customer_id,
            cause=cause,
            channel=channel,
            recipient=recipient,
            purpose=purpose,
            template=template,
            language=language,
            params=params,
            status="pending",
            attempts=0,
            next_attempt_at=not_before,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["cause", "channel", "recipient"])
    )
    result = cast(CursorResult[Any], await session.exec(statement))
    return result.rowcount == 1


async def lease_due(
    session: AsyncSession, *, now: datetime, lease: timedelta, limit: int = 50
) -> list[uuid.UUID]:
    """Take up to `limit` due messages for `lease`: each row is taken by a conditional
    update, so of two senders reading the same row only one gets it; a sender that dies
    leaves the row to be taken again once its lease has run out."""
    free = or_(col(CustomerMessage.lease_until).is_(None), col(CustomerMessage.lease_until) < now)
    due = await session.exec(
        select(CustomerMessage.id)
        .where(CustomerMessage.status == "pending", CustomerMessage.next_attempt_at <= now, free)
        .order_by(col(CustomerMessage.next_attempt_at), col(CustomerMessage.id))
        .limit(limit)
    )
    ids = list(due.all())
    if not ids:
        return []
    # One conditional update for the lot; RETURNING names the rows this sender got (a row
    # another sender leased in between fails the condition, re-checked under its lock).
    leased = await session.exec(
        update(CustomerMessage)
        .where(
            col(CustomerMessage.id).in_(ids),
            col(CustomerMessage.status) == "pending",
            free,
        )
        .values(lease_until=now + lease)
        .returning(col(CustomerMessage.id))
    )
    return sorted(leased.scalars().all(), key=ids.index)


async def record_sent(
    session: AsyncSession,
    message_id: uuid.UUID,
    *,
    provider: str,
    provider_message_id: str,
    provider_status: str,
    now: datetime,
) -> None:
    """The provider took the message: kept with its id and status, never sent again."""
    await session.exec(
        update(CustomerMessage)
        .where(col(CustomerMessage.id) == message_id)
        .values(
            status="sent",
            provider=provider,
            provider_message_id=provider_message_id,
            provider_status=provider_status,
            attempts=CustomerMessage.attempts + 1,
            sent_at=now,
            lease_until=None,
            last_error=None,
        )
    )


async def record_failure(
    session: AsyncSession,
    message_id: uuid.UUID,
    *,
    provider: str,
    provider_status: str,
    error: str,
    now: datetime,
    max_attempts: int,
    base: float = 30.0,
    cap: float = 3600.0,
) -> str:
    """Every provider failed this time: the message waits longer after each attempt
    (`retry_delay`) and is given up (`failed`) after `max_attempts`. The count is read and
    written under the row's lease; returns the message's new status."""
    message = await session.get(CustomerMessage, message_id, with_for_update=True)
    if message is None or message.status != "pending":
        return message.status if message else "missing"
    message.attempts += 1
    message.provider, message.provider_status = provider, provider_status
    message.last_error = error[:500]
    message.lease_until = None
    if message.attempts >= max_attempts:
        message.status = "failed"
    else:
        message.next_attempt_at = now + retry_delay(message.attempts, base=base, cap=cap)
    await session.flush()
    return message.status


async def record_suppressed(session: AsyncSession, message_id: uuid.UUID, *, reason: str) -> None:
    """The customer refused contact or opted out after the message was queued: it is
    never sent."""
    await session.exec(
        update(CustomerMessage)
        .where(col(CustomerMessage.id) == message_id, col(CustomerMessage.status) == "pending")
        .values(status="suppressed", lease_until=None, last_error=reason[:500])
    )


async def cancel_pending(session: AsyncSession, *, cause_prefix: str, keep: str | None) -> int:
    """Pending messages of causes starting with `cause_prefix` (but `keep`) are no longer
    wanted, e.g. the reminder of an appointment moved or cancelled."""
    query = update(CustomerMessage).where(
        col(CustomerMessage.status) == "pending",
        col(CustomerMessage.cause).startswith(cause_prefix, autoescape=True),
    )
    if keep is not None:
        query = query.where(col(CustomerMessage.cause) != keep)
    result = cast(
        CursorResult[Any], await session.exec(query.values(status="cancelled", lease_until=None))
    )
    return result.rowcount


async def opted_out(session: AsyncSession, channel: str, recipients: list[str]) -> set[str]:
    """Which of `recipients` asked for no more messages on `channel`."""
    if not recipients:
        return set()
    found = await session.exec(
        select(MessageOptOut.recipient).where(
            MessageOptOut.channel == channel, col(MessageOptOut.recipient).in_(recipients)
        )
    )
    return set(found.all())


async def record_opt_out(
    session: AsyncSession, *, channel: str, recipient: str, source: str, now: datetime
) -> None:
    """The recipient asked for no more messages on `channel`; pending ones are suppressed
    by the sender when it reaches them. A repeat keeps the first."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = cast(Any, MessageOptOut).__table__
    await session.exec(
        dialect.insert(table)
        .values(channel=channel, recipient=recipient, source=source, opted_out_at=now)
        .on_conflict_do_nothing(index_elements=["channel", "recipient"])
    )


async def record_report(
    session: AsyncSession,
    *,
    provider: str,
    provider_message_id: str,
    status: str,
    detail: str,
    now: datetime,
) -> bool:
    """The provider's delivery report on a sent message; False when no message has this
    provider id (a report of another system's message, or an unknown one)."""
    result = cast(
        CursorResult[Any],
        await session.exec(
            update(CustomerMessage)
            .where(
                col(CustomerMessage.provider) == provider,
                col(CustomerMessage.provider_message_id) == provider_message_id,
            )
            .values(report_status=status[:64], report_detail=detail[:200], reported_at=now)
        ),
    )
    return result.rowcount > 0
