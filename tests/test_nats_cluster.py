"""A service on a three-node JetStream cluster on loopback: a list of servers, the relay
through leader elections, and readiness while JetStream has no leader."""

import asyncio
import contextlib
import gc
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError
from sqlalchemy.orm import registry
from sqlmodel import SQLModel, func, select

from shared.db import Database
from shared.events import Contract
from shared.idempotency import make_idempotency_model
from shared.outbox import add_event, make_outbox_models
from shared.service import Runtime, ServiceSpec, create_service_app
from shared.settings import ServiceSettings
from tests.harness import NatsCluster, NatsServer, ServiceProcess, auth, eventually, wall_clock

pytestmark = [pytest.mark.asyncio]


class Base(SQLModel, registry=registry()):
    pass


Outbox, Inbox = make_outbox_models(Base)


class BurstSent(Contract):
    type = "probe.burst.sent.v1"
    ping_id: uuid.UUID


SPEC = ServiceSpec(
    name="probe",
    title="probe",
    description="a service with an outbox and nothing else",
    routers=[],
    metadata=Base.metadata,
    outbox_model=Outbox,
    inbox_model=Inbox,
    idempotency_model=make_idempotency_model(Base),
    migrations=Path("unused"),
)


class Captured(logging.Handler):
    """Every log record, and every context asyncio's exception handler is given."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.loop_errors: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, logger: str, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.name == logger and r.levelno == level]

    def never_retrieved(self) -> list[str]:
        texts = [r.getMessage() for r in self.records]
        texts += [str(context.get("message")) for context in self.loop_errors]
        return [text for text in texts if "never retrieved" in text]


@dataclass
class Probe:
    """The probe service running in this process, its runtime and what it logged."""

    client: httpx.AsyncClient
    runtime: Runtime
    captured: Captured
    event_ids: list[str] = field(default_factory=list)

    async def write(self, count: int) -> None:
        async with self.runtime.db.transaction() as session:
            for _ in range(count):
                ping = uuid.uuid4()
                self.event_ids.append(add_event(session, BurstSent(ping_id=ping), subject=ping))

    async def unsent(self) -> int:
        async with self.runtime.db.reader() as session:
            query = select(func.count()).select_from(Outbox).where(Outbox.sent_at.is_(None))
            return int((await session.exec(query)).one())

    async def sent_in_order(self) -> list[str]:
        async with self.runtime.db.reader() as session:
            query = select(Outbox.event_id).order_by(Outbox.seq)
            return list((await session.exec(query)).all())

    def connected_node(self, cluster: NatsCluster) -> NatsServer:
        nc = self.runtime.messaging.nc
        assert nc is not None and nc.connected_url is not None
        return next(node for node in cluster.nodes if node.port == nc.connected_url.port)


@contextlib.asynccontextmanager
async def probe_service(database_url: str, nats_url: str) -> AsyncIterator[Probe]:
    """The probe service started in this process the way every service starts."""
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await db.dispose()
    settings = ServiceSettings(
        service_name="probe",
        database_url=database_url,
        nats_url=nats_url,
        stream_replicas=3,
        auto_migrate=False,
    )
    app = create_service_app(settings, SPEC)
    captured = Captured()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: captured.loop_errors.append(context))
    try:
        async with app.router.lifespan_context(app):
            # After start-up: the service's logging set-up replaces the root's handlers.
            logging.getLogger().addHandler(captured)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
                probe = Probe(client, app.state.runtime, captured)
                await eventually(
                    lambda: _truthy(probe.runtime.relay), timeout=30, what="relay started"
                )
                yield probe
    finally:
        logging.getLogger().removeHandler(captured)
        gc.collect()  # an abandoned future logs "never retrieved" when it is collected
        loop.set_exception_handler(None)


async def _truthy(value: Any) -> Any:
    return value


async def _quiet(exc: Exception) -> None:
    pass


class Admin:
    """A client of the cluster's own: leader placement, stream contents."""

    def __init__(self, cluster: NatsCluster):
        self.cluster = cluster
        self.nc = NATS()
        self.system = NATS()

    async def __aenter__(self) -> "Admin":
        urls = [node.url for node in self.cluster.nodes]
        # Quiet: the client's default callback logs every node the test kills as an error.
        await self.nc.connect(servers=urls, connect_timeout=2, error_cb=_quiet)
        await self.system.connect(
            servers=[url.replace("nats://", "nats://sys:sys@") for url in urls],
            connect_timeout=2,
            error_cb=_quiet,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()
        await self.system.close()

    async def stream_leader(self, stream: str, timeout: float = 1) -> str | None:
        try:
            info = await self.nc.jetstream(timeout=timeout).stream_info(stream)
        except Exception:
            return None
        return info.cluster.leader if info.cluster else None

    async def move_stream_leader(self, stream: str, to: str) -> None:
        if await self.stream_leader(stream) != to:
            body = json.dumps({"placement": {"preferred": to}}).encode()
            await self.nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", body, timeout=5)

        async def there() -> bool:
            return await self.stream_leader(stream) == to

        await eventually(there, timeout=15, what=f"{stream}'s leader on {to}")

    async def move_meta_leader(self, to: str) -> None:
        if self.cluster.meta_leader() != to:
            body = json.dumps({"placement": {"preferred": to}}).encode()
            await self.system.request("$JS.API.META.LEADER.STEPDOWN", body, timeout=5)

        async def there() -> bool:
            return await asyncio.to_thread(self.cluster.meta_leader) == to

        await eventually(there, timeout=15, what=f"meta leader on {to}")

    async def stream_messages(self, stream: str) -> list[tuple[str, float]]:
        """(Nats-Msg-Id, time stored) of every message, in stream order."""
        js = self.nc.jetstream(timeout=5)
        state = (await js.stream_info(stream)).state
        found: list[tuple[str, float]] = []
        for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
            message = await js.get_msg(stream, seq)
            assert message.headers is not None and message.time is not None
            found.append((message.headers["Nats-Msg-Id"], message.time.timestamp()))
        return found


# --- a list of servers -------------------------------------------------------------


@pytest.mark.e2e
async def test_a_service_given_the_cluster_list_publishes_with_the_first_node_down(
    database_url: str, nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    """RECEPTION_NATS_URL names all three nodes, comma-separated: the service becomes ready
    and publishes; with the first-listed node down it still publishes, and a restart
    while that node is down connects to the others."""
    env = {
        "RECEPTION_DATABASE_URL": database_url,
        "RECEPTION_NATS_URL": nats_cluster.url,
        "RECEPTION_STREAM_REPLICAS": "3",
    }
    assert "," in env["RECEPTION_NATS_URL"]
    reception = ServiceProcess("reception", env, tmp_path / "logs")
    async with Admin(nats_cluster) as admin:
        try:
            reception.start()
            await _ready(reception)
            await _registered_and_published(reception, admin)
            nats_cluster.nodes[0].kill()
            await _registered_and_published(reception, admin)
            reception.stop()
            reception.start()
            await _ready(reception)
            await _registered_and_published(reception, admin)
        finally:
            reception.stop()


@pytest.mark.store
async def test_a_service_started_before_its_cluster_is_whole_starts_once_it_is(
    database_url: str, tmp_path: Path
) -> None:
    """Deployed side by side, a service may reach NATS while two of three nodes are up: a
    new cluster has no JetStream meta leader yet and no stream of three replicas can be
    placed. The service keeps trying; its relay starts and it turns ready once the third
    node is there."""
    cluster = NatsCluster(tmp_path / "nats")
    try:
        for node in cluster.nodes[:2]:
            node.start()

        async def third_node_later() -> None:
            await asyncio.sleep(3)
            await asyncio.to_thread(cluster.nodes[2].start)

        late = asyncio.create_task(third_node_later())
        async with probe_service(database_url, cluster.url) as probe, Admin(cluster) as admin:
            await late

            async def ready() -> bool:
                return (await probe.client.get("/readyz")).status_code == 200

            await eventually(ready, timeout=30, what="ready with the whole cluster")
            info = await admin.nc.jetstream(timeout=5).stream_info("PROBE")
            assert info.config.num_replicas == 3
            await probe.write(2)
            await eventually(lambda: _none_unsent(probe), timeout=15, what="events published")
    finally:
        cluster.stop()


async def _none_unsent(probe: Probe) -> bool:
    return await probe.unsent() == 0


async def _ready(service: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=service.url) as client:

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, timeout=30, what=f"{service.name} ready: {service.log_tail()}")


async def _registered_and_published(service: ServiceProcess, admin: Admin) -> None:
    mobile = f"139{uuid.uuid4().int % 10**8:08d}"
    async with httpx.AsyncClient(base_url=service.url, headers=auth("advisor")) as client:
        answer = await client.post("/customers", json={"name": "王芳", "mobile": mobile})
        assert answer.status_code == 201, answer.text
        customer_id = answer.json()["id"]
    js = admin.nc.jetstream(timeout=2)

    async def published() -> bool:
        try:
            message = await js.get_last_msg("RECEPTION", "reception.customer.registered.v1")
        except (NotFoundError, nats.errors.TimeoutError):
            return False
        return customer_id in (message.data or b"").decode()

    await eventually(published, timeout=30, what=f"customer {customer_id} on the stream")


# --- the relay through leader elections -----------------------------------------------


@dataclass(frozen=True)
class Outage:
    """Where the leaders sit when a node is killed, relative to the relay's server."""

    meta_on_relays_server: bool
    stream_on_relays_server: bool


OUTAGES = {
    # The stream's leader dies on a node the relay is not connected to.
    "stream-leader": Outage(meta_on_relays_server=False, stream_on_relays_server=False),
    # The relay's own server dies, holding the meta leader; the stream's leader lives.
    "meta-leader": Outage(meta_on_relays_server=True, stream_on_relays_server=False),
    # The relay's own server dies holding both.
    "both-leaders": Outage(meta_on_relays_server=True, stream_on_relays_server=True),
}


@pytest.mark.store
@pytest.mark.parametrize("outage", list(OUTAGES))
async def test_relay_keeps_order_and_quiet_through_a_leader_killed_mid_burst(
    database_url: str, nats_cluster: NatsCluster, outage: str
) -> None:
    """A node holding a leader is SIGKILLed while the relay publishes a burst and events
    keep coming: every row reaches the three-replica stream once and in order, nothing
    logs "Future exception was never retrieved", the relay warns once and says when it
    is back, and it resumes soon after JetStream answers again."""
    where = OUTAGES[outage]
    async with probe_service(database_url, nats_cluster.url) as probe, Admin(nats_cluster) as admin:
        relays_server = probe.connected_node(nats_cluster)
        others = [node.name for node in nats_cluster.nodes if node is not relays_server]
        await admin.move_meta_leader(
            relays_server.name if where.meta_on_relays_server else others[0]
        )
        stream_node = relays_server.name if where.stream_on_relays_server else others[1]
        await admin.move_stream_leader("PROBE", stream_node)
        victim = relays_server if where.meta_on_relays_server else nats_cluster.node(stream_node)

        writing = True

        async def keep_writing() -> None:
            while writing:
                await probe.write(5)
                await asyncio.sleep(0.02)

        for _ in range(20):
            await probe.write(20)  # the burst: 400 rows in flight when the node dies
        writer = asyncio.create_task(keep_writing())

        async def in_flight() -> bool:
            return probe.runtime.messaging.js.publish_async_pending() > 0

        await eventually(in_flight, timeout=10, interval=0, what="publishes awaiting acks")
        victim.kill()
        killed_at = wall_clock()

        async def answering() -> bool:
            return await admin.stream_leader("PROBE", timeout=0.2) is not None

        await eventually(answering, timeout=30, what="PROBE answering again")
        answered_at = wall_clock()

        async def resumed() -> bool:
            return await _last_stored_at(admin) > answered_at

        await eventually(resumed, timeout=30, interval=0.2, what="the relay publishing again")
        writing = False
        await writer
        await eventually(lambda: _zero(probe.unsent()), timeout=30, what="every row sent")
        stored = await admin.stream_messages("PROBE")
        expected = await probe.sent_in_order()

    first_after = min(at for _, at in stored if at > killed_at)
    pause, lag = first_after - killed_at, first_after - answered_at
    print(
        f"\n{outage}: {len(expected)} rows; relay paused {pause:.2f}s after the kill, "
        f"{lag:.2f}s after JetStream answered again"
    )
    assert [event_id for event_id, _ in stored] == expected
    assert len(set(expected)) == len(expected) == len(probe.event_ids)
    assert probe.captured.never_retrieved() == []
    errors = [r.getMessage() for r in probe.captured.records if r.levelno >= logging.ERROR]
    assert errors == []
    warnings = probe.captured.lines("shared.outbox", logging.WARNING)
    assert len(warnings) <= 1, warnings
    if warnings:
        assert len(probe.captured.lines("shared.outbox", logging.INFO)) == 1
    assert lag < 2.0


async def _last_stored_at(admin: Admin) -> float:
    js = admin.nc.jetstream(timeout=1)
    message = await js.get_last_msg("PROBE", BurstSent.type)
    assert message.time is not None
    return message.time.timestamp()


async def _zero(awaitable: Any) -> bool:
    return (await awaitable) == 0


# --- readiness -------------------------------------------------------------------------


@pytest.mark.store
@pytest.mark.parametrize("writing", [False, True], ids=["idle", "writing"])
async def test_readiness_follows_jetstream_not_just_the_connection(
    database_url: str, nats_cluster: NatsCluster, writing: bool
) -> None:
    """Two of three nodes down: the service's own server is still connected and still holds
    the stream's leader, but without a quorum nothing can be stored: not ready (sooner
    when the relay has tried to publish). Both back: ready again, and what was written
    meanwhile is published."""
    async with probe_service(database_url, nats_cluster.url) as probe, Admin(nats_cluster) as admin:

        async def readiness(expected: int) -> bool:
            return (await probe.client.get("/readyz")).status_code == expected

        await eventually(lambda: readiness(200), timeout=30, what="ready")
        relays_server = probe.connected_node(nats_cluster)
        await admin.move_stream_leader("PROBE", relays_server.name)
        others = [node for node in nats_cluster.nodes if node is not relays_server]
        for node in others:
            node.kill()
        killed_at = time.monotonic()
        if writing:
            await probe.write(3)
        await eventually(
            lambda: readiness(503), timeout=8 if writing else 20, what="not ready without quorum"
        )
        noticed = time.monotonic() - killed_at
        body = (await probe.client.get("/readyz")).json()
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["nats"].startswith("jetstream unavailable")
        assert probe.runtime.messaging.connected
        for node in others:
            node.start()
        started_at = time.monotonic()
        await eventually(lambda: readiness(200), timeout=30, what="ready again")
        print(
            f"\nnot ready {noticed:.2f}s after the quorum was lost, ready again "
            f"{time.monotonic() - started_at:.2f}s after the nodes were started"
        )
        await eventually(lambda: _zero(probe.unsent()), timeout=10, what="every row sent")

        async def stored_in_order() -> bool:
            try:  # the cluster's API may still be settling after the restart
                stored = await admin.stream_messages("PROBE")
            except nats.errors.Error:
                return False
            assert [event_id for event_id, _ in stored] == probe.event_ids
            return True

        await eventually(stored_in_order, timeout=10, what="the stream read")
