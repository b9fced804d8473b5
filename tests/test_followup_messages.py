"""Customer messages' outbox on a real database: queued once per cause, channel and
recipient, and leased by one sender at a time."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from sqlmodel import func, select

from services.followup.main import SPEC
from services.followup.messages import (
    lease_due,
    queue_message,
    record_failure,
    record_sent,
)
from services.followup.models import CustomerMessage
from shared.db import Database
from shared.migrations import upgrade

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(
        database_url,
        info={"outbox_model": SPEC.outbox_model, "idempotency_model": SPEC.idempotency_model},
    )
    await upgrade(database, SPEC.migrations)
    yield database
    await database.dispose()


async def queue(db: Database, cause: str, *, not_before: datetime = NOW) -> bool:
    async with db.transaction() as session:
        return await queue_message(
            session,
            branch="BR01",
            customer_id=uuid.UUID(int=1),
            cause=cause,
            channel="sms",
            recipient="13800138000",
            purpose="service",
            template="car_ready",
            language="zh-CN",
            params={"number": "RO-2026-000001"},
            not_before=not_before,
            now=NOW,
        )


async def lease(db: Database, now: datetime) -> list[uuid.UUID]:
    async with db.transaction() as session:
        return await lease_due(session, now=now, lease=LEASE)


async def test_a_cause_queues_its_message_once(db: Database) -> None:
    assert await queue(db, "car_ready:ro-1")
    assert not await queue(db, "car_ready:ro-1")
    assert await queue(db, "car_ready:ro-2")
    async with db.reader() as session:
        count = (await session.exec(select(func.count()).select_from(CustomerMessage))).one()
    assert count == 2


async def test_a_leased_message_is_taken_by_one_sender_until_its_lease_runs_out(
    db: Database,
) -> None:
    await queue(db, "car_ready:ro-1")
    await queue(db, "delay:ro-1", not_before=NOW + timedelta(seconds=90))
    first = await lease(db, NOW)
    assert len(first) == 1
    assert await lease(db, NOW + timedelta(seconds=59)) == []
    # The first sender died: after its lease the row is taken again, and the held-back
    # message is not due until its time.
    again = await lease(db, NOW + timedelta(seconds=61))
    assert again == first
    held_back = await lease(db, NOW + timedelta(seconds=91))
    assert len(held_back) == 1
    assert held_back != first


async def test_a_sent_message_keeps_its_provider_status_and_is_not_leased_again(
    db: Database,
) -> None:
    await queue(db, "car_ready:ro-1")
    [message_id] = await lease(db, NOW)
    async with db.transaction() as session:
        await record_sent(
            session,
            message_id,
            provider="aliyun",
            provider_message_id="900619746936498440^0",
            provider_status="OK",
            now=NOW,
        )
    assert await lease(db, NOW + timedelta(days=1)) == []
    async with db.reader() as session:
        message = await session.get(CustomerMessage, message_id)
        assert message is not None
        kept = (message.status, message.provider, message.provider_status, message.attempts)
        assert (message.sent_at, message.lease_until) == (NOW, None)
    assert kept == ("sent", "aliyun", "OK", 1)


async def test_a_failed_send_backs_off_and_is_given_up_after_the_last_attempt(
    db: Database,
) -> None:
    await queue(db, "car_ready:ro-1")
    now, waits = NOW, []
    for attempt in range(1, 4):
        [message_id] = await lease(db, now)
        async with db.transaction() as session:
            status = await record_failure(
                session,
                message_id,
                provider="aliyun",
                provider_status="isv.BUSINESS_LIMIT_CONTROL",
                error="flow control",
                now=now,
                max_attempts=3,
                base=30,
                cap=600,
            )
        assert status == ("failed" if attempt == 3 else "pending")
        async with db.reader() as session:
            message = await session.get(CustomerMessage, message_id)
            assert message is not None and message.attempts == attempt
            next_attempt_at = message.next_attempt_at
        if status == "pending":
            assert await lease(db, next_attempt_at - timedelta(seconds=1)) == []
            waits.append(next_attempt_at - now)
            now = next_attempt_at
    assert waits == [timedelta(seconds=30), timedelta(seconds=60)]
    assert await lease(db, now + timedelta(days=1)) == []
