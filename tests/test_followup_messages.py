"""Customer messages' outbox on a real database: queued once per cause, channel and
recipient, and leased by one sender at a time."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from sqlmodel import func, select

from services.followup.main import SPEC
from services.followup.messages import lease_due, queue_message
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
