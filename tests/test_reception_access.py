"""Reception's access table (README, "Who may do what") against the API: every operation
with a token of every role, refused or let in as the table says, and the fields of each
answer those of the role's view, on a real customer, vehicle, intake and estimate."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from services.reception.config import Settings
from services.reception.main import create_app
from tests.access_table import read_table, shape, views_on_reads, walk
from tests.flow import open_days_ahead, open_intake, register
from tests.harness import NatsServer, auth

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

README = Path(__file__).parents[1] / "services" / "reception" / "README.md"
ADVISOR = auth("advisor")
WEEK = {d: {"start": "08:30", "end": "17:30"} for d in ("mon", "tue", "wed", "thu", "fri")}
BRANCH = {
    "name": "浦东服务中心",
    "time_zone": "Asia/Shanghai",
    "business_hours": WEEK,
    "tax_rate": "0.13",
    "daily_bays": 6,
    "daily_technician_hours": "48",
}
TECHNICIAN = {"name": "李师傅", "roles": ["technician"], "bay": "B3", "working_hours": WEEK}


@pytest_asyncio.fixture
async def app(database_url: str, nats_server: NatsServer) -> AsyncIterator[FastAPI]:
    service = create_app(Settings(database_url=database_url, nats_url=nats_server.url))
    async with service.router.lifespan_context(service):
        yield service


async def seeded(app: FastAPI) -> dict[str, Any]:
    """A customer with a vehicle, its intake and a priced estimate."""
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        customer, vehicle = await register(client, "")
        intake = await open_intake(client, "", vehicle["id"])
        promised = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
        r = await client.post(
            "/estimates",
            headers=ADVISOR,
            json={
                "intake_id": intake["id"],
                "promised_at": promised.isoformat(),
                "lines": [
                    {"kind": "labour", "op_code": "BRK-PAD-F", "flat_rate_hours": "1.2",
                     "labour_rate": "380"},
                    {"kind": "part", "part_number": "5QD698151", "unit_price": "468"},
                ],
            },
        )  # fmt: skip
        assert r.status_code == 201, r.text
        manager = auth("manager")
        b = await client.put("/branches/BR01", headers=manager, json=BRANCH)
        assert b.status_code == 201, b.text
        m = await client.put("/branches/BR01/staff/tech-li", headers=manager, json=TECHNICIAN)
        assert m.status_code == 201, m.text
        # A booking on an open day ahead (10:00 in the branch's zone), listed by its day.
        day = open_days_ahead(3)
        a = await client.post(
            "/appointments",
            headers=ADVISOR,
            json={"vehicle_id": vehicle["id"], "starts_at": f"{day}T10:00:00+08:00",
                  "planned_hours": "1.5"},
        )  # fmt: skip
        assert a.status_code == 201, a.text
    return {
        "day": day.isoformat(),
        "branch": "BR01",
        "staff_id": "tech-li",
        "customer_id": customer["id"],
        "vehicle_id": vehicle["id"],
        "intake_id": intake["id"],
        "estimate_id": r.json()["id"],
        "number": "1",
    }


async def test_every_operation_as_every_role_is_what_the_readme_says(app: FastAPI):
    table = read_table(README)
    seeds = await seeded(app)
    queries = {
        "GET /search": "phone=13800000000",
        "GET /branches/{branch}/working": "on=2026-12-07",
        "GET /appointments": f"day={seeds['day']}",
    }
    result = await walk(app, table, params=seeds, queries=queries)
    assert not result.mismatches, "\n".join(result.mismatches)
    assert views_on_reads(table) <= result.views_checked


async def test_the_foreman_plans_the_work_without_the_customers_numbers_or_prices(
    app: FastAPI,
):
    seeds = await seeded(app)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        foreman = auth("foreman")
        customer = (await client.get(f"/customers/{seeds['customer_id']}", headers=foreman)).json()
        assert customer["name"] and "mobile" not in customer and "other_mobiles" not in customer
        day = await client.get("/appointments", params={"day": seeds["day"]}, headers=foreman)
        [booked] = day.json()["items"]
        assert booked["vin"] and booked["customer_name"] and "customer_mobile" not in booked
        desk = await client.get("/appointments", params={"day": seeds["day"]}, headers=ADVISOR)
        assert desk.json()["items"][0]["customer_mobile"] == "13800000000"
        path = f"/estimates/{seeds['estimate_id']}"
        full = (await client.get(path, headers=ADVISOR)).json()
        assert full["lines"][0]["net"] and full["totals"]["total"]
        work = shape((await client.get(path, headers=foreman)).json())
        assert {"lines.op_code", "lines.flat_rate_hours", "lines.part_number"} <= work
        assert not {p for p in work if p.startswith("totals")}
        assert not {p for p in work if p.endswith(("net", "unit_price", "labour_rate"))}
        hits = await client.get("/search", headers=foreman, params={"phone": "13800000000"})
        assert hits.status_code == 200 and hits.json()["items"]
        assert all("mobile" not in hit for hit in hits.json()["items"])
        sheet = f"/intakes/{seeds['intake_id']}/sheet.pdf"
        assert (await client.get(sheet, headers=foreman)).status_code == 403
        # The cashier bills from the estimate but has no business with the bookings.
        assert (await client.get(path, headers=auth("cashier"))).json()["totals"]
        today = datetime.now(UTC).date().isoformat()
        assert (await client.get(f"/capacity/{today}", headers=auth("cashier"))).status_code == 403
