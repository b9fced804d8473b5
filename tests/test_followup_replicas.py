"""Two followup replicas on one PostgreSQL database, as real processes sharing one durable
consumer: a customer's intakes handled a few milliseconds apart on both are all counted."""

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from shared.contracts import CustomerSnapshot, IntakeOpened, VehicleSnapshot
from tests.harness import NatsServer, eventually, publish_at_once, replicas

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.asyncio]

CUSTOMERS, INTAKES_EACH = 15, 20
T0 = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)


async def test_two_replicas_count_every_visit_of_a_customer(
    pg_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    customers = [uuid.uuid4() for _ in range(CUSTOMERS)]
    envelopes = []
    for customer_id in customers:
        vehicle = VehicleSnapshot(id=uuid.uuid4(), vin="LSVAU218XN2183294", plate="沪A12345")
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
    database = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    with replicas("followup", pg_url, nats_server.url, tmp_path):
        await publish_at_once(
            nats_server.url, envelopes, consumers={"followup__add_contact": "RECEPTION"}
        )
        conn = await asyncpg.connect(database)
        try:

            async def all_handled() -> bool:
                handled = await conn.fetchval(
                    "SELECT count(*) FROM inbox_event WHERE consumer = 'followup__add_contact'"
                )
                return bool(handled == len(envelopes))

            await eventually(all_handled, timeout=45, what="every intake handled once")
            rows = await conn.fetch(
                "SELECT customer_id, visits, last_intake_at, name, as_of FROM contact"
            )
        finally:
            await conn.close()
    last = T0 + timedelta(days=INTAKES_EACH - 1)
    assert {row["customer_id"] for row in rows} == set(customers)
    lost = {row["customer_id"]: INTAKES_EACH - row["visits"] for row in rows}
    lost = {customer: n for customer, n in lost.items() if n}
    assert not lost, f"{sum(lost.values())} of {len(envelopes)} visits not counted: {lost}"
    assert {(row["last_intake_at"], row["name"], row["as_of"]) for row in rows} == {
        (last, f"客户 {INTAKES_EACH - 1}", last)
    }
