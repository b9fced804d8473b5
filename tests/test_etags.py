"""Every write that changes a versioned resource answers with its new ETag, and so does a
retry of it (an Idempotency-Key replay): the tablet's next write with that ETag passes,
whatever route made the change."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from services.followup.config import Settings as FollowupSettings
from services.followup.main import create_app as followup_app
from services.workorders.config import Settings as WorkordersSettings
from services.workorders.main import create_app as workorders_app
from tests.flow import open_days_ahead, open_intake, register
from tests.harness import NatsServer, auth
from tests.test_bad_input import _client
from tests.test_followup_timers import MONDAY, Clock
from tests.test_workorders_api import FOREMAN, QC, TECH_LI, Workorders, approved

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

ADVISOR = auth("advisor")
AGENT = auth("followup_agent")


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def current_etag(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> str:
    r = await client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    return r.headers["ETag"]


@pytest_asyncio.fixture
async def reception(database_url: str, nats_server: NatsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with _client("reception", database_url, nats_server) as client:
        yield client


@pytest_asyncio.fixture
async def followup(database_url: str, nats_server: NatsServer) -> AsyncIterator[httpx.AsyncClient]:
    settings = FollowupSettings(
        database_url=database_url, nats_url=nats_server.url, clock=Clock(MONDAY)
    )
    app = followup_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield client


@pytest_asyncio.fixture
async def wo(database_url: str, nats_server: NatsServer) -> AsyncIterator[Workorders]:
    app = workorders_app(WorkordersSettings(database_url=database_url, nats_url=nats_server.url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield Workorders(client, app.state.runtime.db, nats_server.url)


async def test_an_action_on_a_complaint_answers_with_the_cases_new_etag(
    followup: httpx.AsyncClient,
) -> None:
    r = await followup.post(
        "/complaints",
        json={
            "source": "call",
            "severity": "minor",
            "category": "waiting_time",
            "description": "waited two hours",
        },
        headers=AGENT,
    )
    assert r.status_code == 201, r.text
    url = f"/complaints/{r.json()['id']}"
    headers = {**AGENT, **key()}
    action = await followup.post(f"{url}/actions", json={"action": "回电致歉"}, headers=headers)
    assert action.status_code == 201, action.text
    assert action.headers.get("ETag") == await current_etag(followup, url, AGENT)
    # The next write with the ETag the action answered with passes.
    r = await followup.patch(
        url, json={"owner": "agent-2"}, headers={**AGENT, "If-Match": action.headers["ETag"]}
    )
    assert r.status_code == 200, r.text
    # A retry of the action gets its first answer, with the ETag that answer had.
    again = await followup.post(f"{url}/actions", json={"action": "回电致歉"}, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == action.json()
    assert again.headers.get("ETag") == action.headers["ETag"]


async def test_reception_writes_answer_with_the_new_etag(reception: httpx.AsyncClient) -> None:
    headers = {**ADVISOR, **key()}
    body = {"name": "王芳", "mobile": "13800000000"}
    created = await reception.post("/customers", headers=headers, json=body)
    assert created.status_code == 201, created.text
    customer = f"/customers/{created.json()['id']}"
    assert created.headers.get("ETag") == await current_etag(reception, customer, ADVISOR)
    again = await reception.post("/customers", headers=headers, json=body)
    assert again.headers.get("ETag") == created.headers["ETag"]

    # Adding a number changes the customer: its answer carries the customer's new ETag.
    added = await reception.post(
        f"{customer}/mobiles", headers=ADVISOR, json={"mobile": "13900000001"}
    )
    assert added.status_code == 200, added.text
    assert added.headers.get("ETag") == await current_etag(reception, customer, ADVISOR)
    r = await reception.patch(
        customer, headers={**ADVISOR, "If-Match": added.headers["ETag"]}, json={"name": "王芳芳"}
    )
    assert r.status_code == 200, r.text

    # An intake opened is edited next (the walk-around) with the ETag it was opened with.
    _, vehicle = await register(reception, "")
    opened = await reception.post(
        "/intakes", headers=ADVISOR, json={"vehicle_id": vehicle["id"], "odometer_km": 1000}
    )
    assert opened.status_code == 201, opened.text
    intake = f"/intakes/{opened.json()['id']}"
    assert opened.headers.get("ETag") == await current_etag(reception, intake, ADVISOR)

    # So is an appointment booked (rescheduled next).
    day = open_days_ahead(3)
    starts_at = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
    booking = {"vehicle_id": vehicle["id"], "starts_at": starts_at.isoformat(), "planned_hours": 1}
    booked = await reception.post("/appointments", headers=ADVISOR, json=booking)
    assert booked.status_code == 201, booked.text
    appointment = f"/appointments/{booked.json()['id']}"
    assert booked.headers.get("ETag") == await current_etag(reception, appointment, ADVISOR)


async def test_a_retried_estimate_write_answers_with_the_etag_of_its_first_answer(
    reception: httpx.AsyncClient,
) -> None:
    _, vehicle = await register(reception, "")
    intake = await open_intake(reception, "", vehicle["id"])
    promised = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = await reception.post(
        "/estimates",
        headers=ADVISOR,
        json={
            "intake_id": intake["id"],
            "promised_at": promised,
            "lines": [{"kind": "fee", "description": "洗车", "unit_price": "30"}],
        },
    )
    assert r.status_code == 201, r.text
    estimate = r.json()
    headers = {**ADVISOR, **key(), "If-Match": r.headers["ETag"]}
    body = {
        "decisions": [{"line_id": estimate["lines"][0]["line_id"], "decision": "approved"}],
        "by": "王芳",
        "channel": "phone",
        "call_note": "同意",
    }
    consents = f"/estimates/{estimate['id']}/consents"
    first = await reception.post(consents, headers=headers, json=body)
    assert first.status_code == 200, first.text
    again = await reception.post(consents, headers=headers, json=body)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers.get("ETag") == first.headers["ETag"] == first.json()["etag"]


async def test_workshop_writes_answer_with_the_new_etag(wo: Workorders) -> None:
    order = await wo.consent(approved())
    job_id = order["jobs"][0]["id"]
    await wo.assign(job_id)

    # A part the technician asks for is a parts line the foreman moves next (If-Match).
    asked = await wo.client.post(
        f"/jobs/{job_id}/parts", headers={**TECH_LI, **key()}, json={"part_number": "CL-0091"}
    )
    assert asked.status_code == 201, asked.text
    assert asked.headers.get("ETag") == f'"{asked.json()["version"]}"'

    # QC changes the job: its answer carries the job's new ETag.
    assert (await wo.client.post(f"/jobs/{job_id}/clock-on", headers=TECH_LI)).is_success
    assert (await wo.client.post(f"/jobs/{job_id}/clock-off", headers=TECH_LI, json={})).is_success
    assert (await wo.move(order["id"], "qc")).status_code == 200
    etag = (await wo.job(job_id))["etag"]
    headers = {**QC, **key(), "If-Match": etag}
    passed = await wo.client.post(f"/jobs/{job_id}/qc", headers=headers, json={"passed": True})
    assert passed.status_code == 201, passed.text
    assert passed.headers.get("ETag") == (await wo.job(job_id))["etag"] != etag
    again = await wo.client.post(f"/jobs/{job_id}/qc", headers=headers, json={"passed": True})
    assert again.headers.get("ETag") == passed.headers["ETag"]

    # A transition retried over a bad connection answers with the ETag it first had.
    order = await wo.order(order["id"])
    headers = {**FOREMAN, **key(), "If-Match": order["etag"]}
    path = f"/repair-orders/{order['id']}/transitions"
    first = await wo.client.post(path, headers=headers, json={"to": "ready"})
    assert first.status_code == 200, first.text
    again = await wo.client.post(path, headers=headers, json={"to": "ready"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers.get("ETag") == first.headers["ETag"]
