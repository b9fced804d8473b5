"""Followup's access table (README, "Who may do what") against the API: every operation
with a token of every role, refused or let in as the table says, and the fields of each
answer those of the role's view, on a real contact, visit and complaint."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from services.followup import service
from services.followup.config import Settings
from services.followup.main import create_app
from shared.contracts import CustomerSnapshot
from tests.access_table import read_table, shape, views_on_reads, walk
from tests.harness import NatsServer, auth
from tests.test_followup_api import AGENT, Followup
from tests.test_followup_timers import MONDAY, Clock

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

README = Path(__file__).parents[1] / "services" / "followup" / "README.md"


class Desk(Followup):
    app: FastAPI


@pytest_asyncio.fixture
async def followup(database_url: str, nats_server: NatsServer) -> AsyncIterator[Desk]:
    clock = Clock(MONDAY)
    settings = Settings(
        database_url=database_url, nats_url=nats_server.url, clock=clock, timer_interval=3600
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        desk = Desk(client, clock, app.state.runtime.db, settings)
        desk.app = app
        yield desk


async def seeded(followup: Desk) -> dict[str, str]:
    """A contact with a mobile, the visit of their delivered car and a case about it with
    a compensation."""
    customer = uuid.uuid4()
    snapshot = CustomerSnapshot(id=customer, name="王芳", mobile="13800138000")
    async with followup.db.transaction() as session:
        await service.upsert_contact(session, "BR01", snapshot, as_of=MONDAY)
    delivery = await followup.deliver(customer_id=customer)
    r = await followup.client.post(
        "/complaints",
        headers=AGENT,
        json={
            "source": "call",
            "severity": "minor",
            "category": "repair_quality",
            "description": "刹车仍有异响 / brakes still squeal",
            "repair_order_id": str(delivery["event"].repair_order_id),
        },
    )
    assert r.status_code == 201, r.text
    r = await followup.client.patch(
        f"/complaints/{r.json()['id']}",
        headers={**AGENT, "If-Match": r.headers["ETag"]},
        json={"compensation_amount": "200.00", "compensation_note": "一次保养 / a free service"},
    )
    assert r.status_code == 200, r.text
    return {
        "customer_id": str(customer),
        "visit_id": delivery["visit_id"],
        "repair_order_id": str(delivery["event"].repair_order_id),
        "complaint_id": r.json()["id"],
    }


async def test_every_operation_as_every_role_is_what_the_readme_says(
    followup: Desk,
) -> None:
    table = read_table(README)
    seeds = await seeded(followup)
    queries = {"GET /visits": "view=all"}
    result = await walk(followup.app, table, params=seeds, queries=queries)
    assert not result.mismatches, "\n".join(result.mismatches)
    assert views_on_reads(table) <= result.views_checked


async def test_the_foreman_reads_the_case_not_the_customers_number_or_compensation(
    followup: Desk,
) -> None:
    seeds = await seeded(followup)
    c = followup.client
    visit = f"/visits/{seeds['visit_id']}"
    assert (await c.get(visit, headers=auth("advisor"))).json()["mobile"] == "13800138000"
    seen = (await c.get(visit, headers=auth("foreman"))).json()
    assert seen["vin"] and "mobile" not in seen and "customer_name" not in seen
    case = f"/complaints/{seeds['complaint_id']}"
    assert (await c.get(case, headers=AGENT)).json()["compensation_amount"] == "200.00"
    seen = (await c.get(case, headers=auth("foreman"))).json()
    assert seen["technician_id"] == "tech-7"
    assert not {p for p in shape(seen) if p.startswith("compensation")}
    assert (await c.get(f"{case}/history", headers=auth("foreman"))).status_code == 403
