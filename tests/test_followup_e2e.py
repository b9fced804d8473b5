"""Follow-up end to end with real processes: delivery → visit due → low survey →
complaint → escalation event on the stream."""

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError

from shared.contracts.followup import ComplaintEscalated
from shared.contracts.workorders import DeliveredJob, RepairOrderDelivered
from shared.events import decode, encode, utcnow
from tests.harness import Stack, auth, backend, eventually, postgres_available, round_the_clock

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


@pytest.fixture(scope="module")
def followup_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if backend() == "postgres" and not postgres_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is unreachable (CI requires it)")
        pytest.skip("PostgreSQL not reachable")
    running = Stack(
        Path(tmp_path_factory.mktemp("followup")),
        services=("followup",),
        # A major case is overdue after about two seconds; the timer looks five times a second.
        # Deadlines count working hours: the branch works around the clock in this test.
        extra_env={
            "FOLLOWUP_COMPLAINT_DUE_HOURS_MAJOR": "0.0006",
            "FOLLOWUP_TIMER_INTERVAL": "0.2",
            **round_the_clock(),
        },
    ).start()
    yield running
    running.stop()


async def test_delivery_to_escalated_complaint(followup_stack: Stack) -> None:
    url = followup_stack.url("followup")
    agent = auth("followup_agent")
    nc = await nats.connect(followup_stack.nats.url)
    try:
        js = nc.jetstream()

        async def stream_ready() -> bool:
            try:
                await js.stream_info("WORKORDERS")
            except NotFoundError:
                return False
            return True

        await eventually(stream_ready, what="workorders stream created by followup")
        event = RepairOrderDelivered(
            repair_order_id=uuid.uuid4(),
            number="RO-2026-000042",
            branch="BR01",
            customer_id=uuid.uuid4(),
            vehicle_id=uuid.uuid4(),
            vin="LSVAU218XN2183294",
            advisor="advisor-1",
            odometer_km=42000,
            delivered_at=utcnow() - timedelta(days=3),
            jobs=[
                DeliveredJob(
                    job_id=uuid.uuid4(),
                    op_code="BRK-01",
                    op_group="BRAKES",
                    technician_id="tech-7",
                )
            ],
        )
        envelope = event.to_envelope(subject=str(event.repair_order_id))
        await js.publish(envelope.type, encode(envelope), headers={"Nats-Msg-Id": envelope.id})

        async with httpx.AsyncClient(base_url=url, timeout=10) as client:

            async def visit() -> dict | None:
                r = await client.get("/visits", params={"view": "all"}, headers=agent)
                assert r.status_code == 200, r.text
                items = [
                    v for v in r.json()["items"] if v["repair_order_number"] == "RO-2026-000042"
                ]
                return items[0] if items else None

            found = await eventually(visit, what="follow-up visit from the delivery")
            assert found["status"] == "open"

            r = await client.post(
                f"/visits/{found['id']}/survey",
                json={"overall": 2, "nps": 0, "comments": "刹车还响", "concern": "repair_quality"},
                headers={**agent, "Idempotency-Key": "e2e-survey-1"},
            )
            assert r.status_code == 201, r.text
            complaint_id = r.json()["complaint_id"]
            assert complaint_id

            async def escalated() -> dict | None:
                r = await client.get(f"/complaints/{complaint_id}", headers=agent)
                assert r.status_code == 200, r.text
                return r.json() if r.json()["escalated_at"] else None

            case = await eventually(escalated, what="complaint escalated")
            assert case["owner"] == case["escalated_to"] == "service-manager"
            assert case["technician_id"] == "tech-7"

        async def escalation_event() -> dict | None:
            try:
                msg = await js.get_last_msg("FOLLOWUP", ComplaintEscalated.type)
            except NotFoundError:
                return None
            assert msg.data is not None
            return decode(msg.data).data

        data = await eventually(escalation_event, what="escalation event on the stream")
        assert data["complaint_id"] == complaint_id
        assert data["escalated_to"] == "service-manager"
    finally:
        await nc.close()
