"""Outbox relay and consumer runner against a real nats-server and a real database."""

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import nats
import pytest
import pytest_asyncio
from sqlalchemy import String
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel, func, select

from shared.consumers import ConsumerRunner, Subscribers
from shared.db import Database
from shared.events import Contract, Envelope, encode, utcnow
from shared.idempotency import make_idempotency_model
from shared.messaging import Messaging
from shared.outbox import OUTBOX_MODEL, Relay, add_event, make_outbox_models
from shared.settings import ServiceSettings
from tests.harness import NatsServer, eventually

pytestmark = [pytest.mark.asyncio, pytest.mark.store]


class Base(SQLModel, registry=registry()):
    pass


Outbox, Inbox = make_outbox_models(Base)
Idempotency = make_idempotency_model(Base)


class Visit(Base, table=True):
    __tablename__ = "visit"
    id: uuid.UUID = Field(primary_key=True)
    note: str = Field(sa_type=String(50))


class PingSent(Contract):
    type = "probe.ping.sent.v1"
    ping_id: uuid.UUID
    note: str = ""


@dataclass
class Node:
    """A miniature service: database, NATS, relay and one consumer."""

    db: Database
    messaging: Messaging
    relay: Relay
    runner: ConsumerRunner
    calls: list[uuid.UUID] = field(default_factory=list)


@contextlib.asynccontextmanager
async def node(database_url: str, nats_url: str, handler_behaviour) -> AsyncIterator[Node]:
    settings = ServiceSettings(
        service_name="probe",
        database_url=database_url,
        nats_url=nats_url,
        consumer_backoff=[0.05, 0.05, 0.05, 0.05, 0.05],
        consumer_max_deliver=5,
        consumer_fetch_timeout=0.5,
        relay_poll_interval=0.2,
        relay_backoff_max=0.2,
    )
    db = Database(database_url, info={OUTBOX_MODEL: Outbox})
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    messaging = Messaging(settings)
    await messaging.connect()
    subscriber = Subscribers()
    calls: list[uuid.UUID] = []

    @subscriber(PingSent, durable="probe__record_visit")
    async def record_visit(event: PingSent, session) -> None:
        calls.append(event.ping_id)
        await handler_behaviour(event, len([c for c in calls if c == event.ping_id]))
        session.add(Visit(id=event.ping_id, note=event.note))

    relay = Relay(db, messaging, Outbox, poll_interval=0.2, backoff_max=0.2)
    db.on_events_committed(relay.committed)
    relay.start()
    runner = ConsumerRunner(db, messaging, subscriber.handlers, Inbox, settings)
    await runner.start()
    try:
        yield Node(db, messaging, relay, runner, calls)
    finally:
        await runner.stop()
        await relay.stop()
        await messaging.close()
        await db.dispose()


async def succeed(event: PingSent, attempt: int) -> None:
    return None


async def send(db: Database, count: int, note: str = "") -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    for ping_id in ids:
        async with db.transaction() as session:
            add_event(session, PingSent(ping_id=ping_id, note=note), subject=ping_id)
    return ids


async def visits(db: Database) -> int:
    async with db.reader() as session:
        return (await session.exec(select(func.count()).select_from(Visit))).one()


async def unsent(db: Database) -> int:
    async with db.reader() as session:
        query = select(func.count()).select_from(Outbox).where(Outbox.sent_at.is_(None))
        return (await session.exec(query)).one()


@pytest_asyncio.fixture
async def raw_nats(nats_server: NatsServer):
    nc = await nats.connect(nats_server.url)
    yield nc
    await nc.close()


async def test_outbox_event_reaches_the_handler_once(database_url, nats_server):
    async with node(database_url, nats_server.url, succeed) as n:
        ids = await send(n.db, 5)
        await eventually(lambda: _equals(visits(n.db), 5), what="5 visits")
        assert sorted(n.calls) == sorted(ids)
        await eventually(lambda: _equals(unsent(n.db), 0), what="all rows marked sent")


async def test_same_event_delivered_twice_is_handled_once(database_url, nats_server, raw_nats):
    async with node(database_url, nats_server.url, succeed) as n:
        envelope = PingSent(ping_id=uuid.uuid4()).to_envelope(subject="x")
        js = raw_nats.jetstream()
        # Two copies under different message ids, so the stream keeps both.
        await js.publish(PingSent.type, encode(envelope), headers={"Nats-Msg-Id": "copy-1"})
        await js.publish(PingSent.type, encode(envelope), headers={"Nats-Msg-Id": "copy-2"})
        marker = await send(n.db, 1)  # arrives after both copies
        await eventually(lambda: _contains(n.calls, marker[0]), what="marker handled")
        assert await visits(n.db) == 2
        assert n.calls.count(uuid.UUID(envelope.data["ping_id"])) == 1
        async with n.db.reader() as session:
            rows = (await session.exec(select(Inbox).where(Inbox.event_id == envelope.id))).all()
        assert len(rows) == 1


async def test_handler_failing_three_times_then_succeeding_loses_nothing(database_url, nats_server):
    async def flaky(event: PingSent, attempt: int) -> None:
        if attempt <= 3:
            raise RuntimeError(f"transient failure {attempt}")

    async with node(database_url, nats_server.url, flaky) as n:
        ids = await send(n.db, 3)
        await eventually(lambda: _equals(visits(n.db), 3), what="3 visits after retries")
        for ping_id in ids:
            # Three failures, then success (a failed batch retries its events one by one
            # at once, so an event may be tried more often than it is delivered).
            assert n.calls.count(ping_id) >= 4


async def test_handler_that_always_fails_ends_in_dead_letter(database_url, nats_server, raw_nats):
    dead: list = []

    async def collect(message) -> None:
        dead.append(message)

    sub = await raw_nats.subscribe("deadletter.>", cb=collect)

    async def broken(event: PingSent, attempt: int) -> None:
        raise ValueError("cannot handle this ping")

    async with node(database_url, nats_server.url, broken) as n:
        [ping_id] = await send(n.db, 1)
        await eventually(lambda: _truthy(dead), what="dead-lettered message")
        message = dead[0]
        assert message.subject == "deadletter.probe__record_visit"
        assert message.headers["Workshop-Consumer"] == "probe__record_visit"
        assert "cannot handle this ping" in message.headers["Workshop-Error"]
        assert Envelope.model_validate_json(message.data).data["ping_id"] == str(ping_id)
        assert n.calls.count(ping_id) == 5
        assert await visits(n.db) == 0
    await sub.unsubscribe()


async def test_outbox_holds_events_while_nats_is_down_and_runner_recovers(
    database_url, nats_server
):
    async with node(database_url, nats_server.url, succeed) as n:
        await send(n.db, 2)
        await eventually(lambda: _equals(visits(n.db), 2), what="first visits")
        await eventually(lambda: _equals(unsent(n.db), 0), what="sent marks written")
        nats_server.stop()
        await send(n.db, 10)
        assert await unsent(n.db) == 10
        nats_server.start()
        await eventually(
            lambda: _equals(visits(n.db), 12), timeout=30, what="all visits after NATS restart"
        )
        await eventually(lambda: _equals(unsent(n.db), 0), what="all rows marked sent")
        # The pull consumer keeps working after the restart, not just the backlog.
        await send(n.db, 3)
        await eventually(lambda: _equals(visits(n.db), 15), what="visits after restart")


async def _equals(awaitable, expected) -> bool:
    return (await awaitable) == expected


async def _contains(items, item) -> bool:
    return item in items


async def _truthy(items) -> bool:
    return bool(items)


async def test_server_back_with_an_empty_store_gets_streams_and_consumers_again(
    database_url, nats_server
):
    import shutil

    async with node(database_url, nats_server.url, succeed) as n:
        await send(n.db, 1)
        await eventually(lambda: _equals(visits(n.db), 1), what="first visit")
        nats_server.stop()
        shutil.rmtree(nats_server.store)
        nats_server.start()
        await send(n.db, 4)
        await eventually(
            lambda: _equals(visits(n.db), 5), timeout=30, what="visits after the store was lost"
        )
        await eventually(lambda: _equals(unsent(n.db), 0), what="all rows marked sent")


async def test_two_replicas_on_postgresql_handle_every_event_once(pg_url, nats_server):
    """Both relays read the same outbox (FOR UPDATE SKIP LOCKED) and both runners pull
    from the same durable consumer: every event is still handled exactly once."""
    async with (
        node(pg_url, nats_server.url, succeed) as first,
        node(pg_url, nats_server.url, succeed) as second,
    ):
        ids = await send(first.db, 25) + await send(second.db, 25)
        # Rows written behind both relays' backs, as by a replica that died: both sweep.
        async with first.db.transaction() as session:
            for ping_id in (extra := [uuid.uuid4() for _ in range(20)]):
                session.add(
                    Outbox(
                        event_id=str(uuid.uuid4()),
                        subject=PingSent.type,
                        payload=encode(PingSent(ping_id=ping_id).to_envelope(subject="x")),
                        created_at=utcnow(),
                    )
                )
        first.relay.wake()
        second.relay.wake()
        await eventually(lambda: _equals(visits(first.db), 70), timeout=30, what="70 visits")
        handled = first.calls + second.calls
        assert sorted(handled) == sorted(ids + extra)
        await eventually(lambda: _equals(unsent(first.db), 0), what="all rows marked sent")
        async with first.db.reader() as session:
            inbox_rows = (await session.exec(select(func.count()).select_from(Inbox))).one()
        assert inbox_rows == 70


async def test_housekeeping_deletes_only_old_sent_rows(database_url):
    from datetime import timedelta

    from shared.housekeeping import prune

    db = Database(database_url, info={OUTBOX_MODEL: Outbox})
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    old, recent = utcnow() - timedelta(days=40), utcnow() - timedelta(minutes=5)
    async with db.transaction() as session:
        for sent_at in (old, recent, None):
            session.add(
                Outbox(
                    event_id=str(uuid.uuid4()),
                    subject=PingSent.type,
                    payload=b"{}",
                    created_at=old,
                    sent_at=sent_at,
                )
            )
        for handled_at in (old, recent):
            session.add(Inbox(consumer="c", event_id=str(uuid.uuid4()), handled_at=handled_at))
    removed = await prune(
        db,
        outbox=Outbox,
        inbox=Inbox,
        idempotency=Idempotency,
        outbox_keep=timedelta(days=7),
        inbox_keep=timedelta(days=30),
        idempotency_keep=timedelta(hours=24),
    )
    assert removed == {"outbox": 1, "inbox": 1, "idempotency": 0}
    async with db.reader() as session:
        left = (await session.exec(select(Outbox.sent_at))).all()
        assert sorted(left, key=lambda t: t is None) == [recent, None]
    await db.dispose()


def _writing(db: Database, hot: bool) -> Any:
    """A session's transaction, or a hot write's (straight on asyncpg on PostgreSQL)."""
    return db.hot_transaction() if hot else db.transaction()


@pytest.mark.parametrize("hot", [False, True], ids=["session", "hot"])
async def test_events_of_one_transaction_are_written_and_handed_over_in_order(
    database_url, hot: bool
):
    """At commit a transaction's events are written with their seqs in the order they were
    added, and the relay is handed exactly those rows."""
    db = Database(database_url, info={OUTBOX_MODEL: Outbox})
    handed: list[list] = []
    db.on_events_committed(handed.append)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        pings = [uuid.uuid4() for _ in range(5)]
        async with _writing(db, hot) as session:
            event_ids = [
                add_event(session, PingSent(ping_id=ping, note=str(n)), subject=ping)
                for n, ping in enumerate(pings)
            ]
        async with db.reader() as session:
            rows = (
                await session.exec(select(Outbox.seq, Outbox.event_id).order_by(Outbox.seq))
            ).all()
        assert [event_id for _, event_id in rows] == event_ids
        assert [(r.seq, r.event_id) for r in handed[0]] == [tuple(row) for row in rows]
        assert len(handed) == 1
    finally:
        await db.dispose()


@pytest.mark.parametrize("hot", [False, True], ids=["session", "hot"])
async def test_a_rolled_back_transaction_writes_no_event(database_url, hot: bool):
    db = Database(database_url, info={OUTBOX_MODEL: Outbox})
    handed: list[list] = []
    db.on_events_committed(handed.append)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        with pytest.raises(RuntimeError):
            async with _writing(db, hot) as session:
                add_event(session, PingSent(ping_id=uuid.uuid4()), subject="x")
                raise RuntimeError("the use case failed")
        ping = uuid.uuid4()
        async with _writing(db, hot) as session:
            add_event(session, PingSent(ping_id=ping), subject=ping)
        async with db.reader() as session:
            payloads = (await session.exec(select(Outbox.payload))).all()
        assert [Envelope.model_validate_json(p).data["ping_id"] for p in payloads] == [str(ping)]
        assert [len(rows) for rows in handed] == [1]
    finally:
        await db.dispose()
