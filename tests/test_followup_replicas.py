"""Two followup replicas on one PostgreSQL database, as real processes sharing the durable
consumers: a customer's intakes handled a few milliseconds apart on both are all counted,
and agents working one visit through both replicas at the same moment close it once and
have every call counted."""

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
import pytest_asyncio

from shared.contracts import CustomerSnapshot, IntakeOpened, VehicleSnapshot
from shared.contracts.workorders import DeliveredJob, RepairOrderDelivered
from shared.events import Envelope, utcnow
from tests.harness import (
    NatsServer,
    auth,
    create_pg_database,
    drop_pg_database,
    eventually,
    publish_at_once,
    replicas,
    require_postgres,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.asyncio]

CUSTOMERS, INTAKES_EACH = 15, 20
T0 = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
VIN = "LSVAU218XN2183294"
AGENT = auth("followup_agent")
# Requests in flight at once: each holds a PostgreSQL connection on its replica, and the
# machine's server allows 100 for everyone.
IN_FLIGHT = httpx.Limits(max_connections=12)


@dataclass
class Followup:
    urls: list[str]
    nats_url: str
    database: str  # for asyncpg


@pytest.fixture(scope="module")
def followup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Followup]:
    require_postgres()
    root = tmp_path_factory.mktemp("followup-replicas")
    url = asyncio.run(create_pg_database("ws_followup"))
    nats = NatsServer(root / "nats").start()
    try:
        with replicas("followup", url, nats.url, root) as processes:
            database = url.replace("postgresql+asyncpg://", "postgresql://")
            yield Followup([p.url for p in processes], nats.url, database)
    finally:
        nats.stop()
        asyncio.run(drop_pg_database(url))


@pytest_asyncio.fixture
async def db(followup: Followup) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(followup.database)
    yield conn
    await conn.close()


async def handled(db: asyncpg.Connection, consumer: str, envelopes: list[Envelope]) -> None:
    """Wait until every one of the events is in the consumer's inbox."""

    async def all_in() -> bool:
        count = await db.fetchval(
            "SELECT count(*) FROM inbox_event WHERE consumer = $1 AND event_id = ANY($2)",
            consumer,
            [e.id for e in envelopes],
        )
        return bool(count == len(envelopes))

    await eventually(all_in, timeout=45, what=f"{len(envelopes)} events handled by {consumer}")


async def test_two_replicas_count_every_visit_of_a_customer(
    followup: Followup, db: asyncpg.Connection
) -> None:
    customers = [uuid.uuid4() for _ in range(CUSTOMERS)]
    envelopes = []
    for customer_id in customers:
        vehicle = VehicleSnapshot(id=uuid.uuid4(), vin=VIN, plate="沪A12345")
        for n in range(INTAKES_EACH):
            intake = IntakeOpened(
                intake_id=uuid.uuid4(),
                branch="BR01",
                opened_at=T0 + timedelta(days=n),
                advisor="adv-1",
                # Each intake describes the customer as reception knew them then: the
                # newest description must win whichever replica commits last.
                customer=CustomerSnapshot(
                    id=customer_id, name=f"客户 {n}", mobile=f"1380000{n:04d}"
                ),
                vehicle=vehicle,
                odometer_km=10_000 + n,
            )
            envelope = intake.to_envelope(subject=str(intake.intake_id))
            envelopes.append(envelope.model_copy(update={"time": T0 + timedelta(days=n)}))
    random.Random(7).shuffle(envelopes)
    await publish_at_once(
        followup.nats_url, envelopes, consumers={"followup__add_contact": "RECEPTION"}
    )
    await handled(db, "followup__add_contact", envelopes)
    rows = await db.fetch(
        "SELECT customer_id, visits, last_intake_at, name, as_of FROM contact"
        " WHERE customer_id = ANY($1)",
        customers,
    )
    last = T0 + timedelta(days=INTAKES_EACH - 1)
    assert {row["customer_id"] for row in rows} == set(customers)
    lost = {row["customer_id"]: INTAKES_EACH - row["visits"] for row in rows}
    lost = {customer: n for customer, n in lost.items() if n}
    assert not lost, f"{sum(lost.values())} of {len(envelopes)} visits not counted: {lost}"
    assert {(row["last_intake_at"], row["name"], row["as_of"]) for row in rows} == {
        (last, f"客户 {INTAKES_EACH - 1}", last)
    }


def delivery(vehicle_id: uuid.UUID, customer_id: uuid.UUID, at: datetime, km: int) -> Envelope:
    order_id = uuid.uuid4()
    return RepairOrderDelivered(
        repair_order_id=order_id,
        number=f"RO-2026-{random.randrange(1_000_000):06d}",
        branch="BR01",
        customer_id=customer_id,
        vehicle_id=vehicle_id,
        vin=VIN,
        advisor="adv-1",
        odometer_km=km,
        delivered_at=at,
        jobs=[
            DeliveredJob(job_id=uuid.uuid4(), op_code="MNT-01", op_group="MNT", kind="maintenance")
        ],
    ).to_envelope(subject=str(order_id))


async def _visits(followup: Followup, db: asyncpg.Connection, count: int) -> list[str]:
    """Open follow-up visits of deliveries made yesterday (so none expires meanwhile)."""
    yesterday = utcnow() - timedelta(days=1)
    envelopes = [delivery(uuid.uuid4(), uuid.uuid4(), yesterday, 20_000) for _ in range(count)]
    await publish_at_once(
        followup.nats_url, envelopes, consumers={"followup__schedule_visit": "WORKORDERS"}
    )
    await handled(db, "followup__schedule_visit", envelopes)
    rows = await db.fetch(
        "SELECT id FROM visit WHERE repair_order_id = ANY($1)",
        [uuid.UUID(e.subject) for e in envelopes],
    )
    return [str(row["id"]) for row in rows]


async def test_a_visit_closed_through_both_replicas_at_once_closes_once(
    followup: Followup, db: asyncpg.Connection
) -> None:
    """One agent records the survey through one replica while another records that the
    customer declined it through the other: one of them wins, the other is told."""
    visits = await _visits(followup, db, 30)
    a, b = followup.urls
    async with httpx.AsyncClient(timeout=30, limits=IN_FLIGHT) as client:

        async def close(visit_id: str) -> list[int]:
            answers = await asyncio.gather(
                client.post(
                    f"{a}/visits/{visit_id}/survey", headers=AGENT, json={"overall": 9, "nps": 9}
                ),
                client.post(
                    f"{b}/visits/{visit_id}/outcome",
                    headers=AGENT,
                    json={"outcome": "declined_survey"},
                ),
            )
            return sorted(r.status_code for r in answers)

        answers = await asyncio.gather(*(close(v) for v in visits))
    closed = await db.fetch(
        "SELECT payload FROM outbox_event WHERE subject = 'followup.visit.closed.v1'"
    )
    payloads = [bytes(row["payload"]).decode() for row in closed]
    closings = [p for p in payloads if any(v in p for v in visits)]
    # the survey (201, created) or the outcome (200, the visit changed) wins, the other 409
    twice = [pair for pair in answers if pair not in ([201, 409], [200, 409])]
    assert not twice, f"{len(twice)} of {len(visits)} visits answered {twice[:5]}"
    assert len(closings) == len(visits)


async def test_calls_recorded_through_both_replicas_at_once_are_all_counted(
    followup: Followup, db: asyncpg.Connection
) -> None:
    visits = await _visits(followup, db, 20)
    calls = 6
    async with httpx.AsyncClient(timeout=30, limits=IN_FLIGHT) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{followup.urls[n % 2]}/visits/{visit_id}/calls",
                    headers=AGENT,
                    json={"result": "no_answer"},
                )
                for visit_id in visits
                for n in range(calls)
            )
        )
    assert {r.status_code for r in answers} == {201}
    counted = await db.fetch(
        "SELECT id, attempts FROM visit WHERE id = ANY($1)", [uuid.UUID(v) for v in visits]
    )
    lost = {str(row["id"]): calls - row["attempts"] for row in counted if row["attempts"] != calls}
    assert not lost, f"calls not counted on {len(lost)} of {len(visits)} visits: {lost}"
