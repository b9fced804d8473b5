"""Workorders' access table (README, "Who may do what") against the API: every operation
with a token of every role, refused or let in as the table says, and the fields of each
answer those of the role's view, on a real order with jobs, parts and extra work."""

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from services.workorders import promise
from services.workorders.config import Settings
from services.workorders.main import create_app
from tests.access_table import cut, read_table, shape, views_on_reads, walk
from tests.harness import NatsServer, auth
from tests.test_workorders_api import PROMISED, Workorders, approved, labour, part
from tests.test_workorders_payments import work_to_ready

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

README = Path(__file__).parents[1] / "services" / "workorders" / "README.md"


class Workshop(Workorders):
    app: FastAPI


@pytest_asyncio.fixture
async def wo(database_url: str, nats_server: NatsServer) -> AsyncIterator[Workshop]:
    # The promise timer an hour away: the order is put at risk by hand, once.
    settings = Settings(
        database_url=database_url,
        nats_url=nats_server.url,
        promise_check_interval=3600,
        promise_recheck_delay=3600,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        workshop = Workshop(client, app.state.runtime.db, nats_server.url)
        workshop.app = app
        yield workshop


async def seeded_order(wo: Workshop) -> dict[str, str]:
    """An order at risk with a job (and its priced part), a parts line, a fee and extra
    work found: every field a view keeps or cuts is in some answer."""
    order = await wo.consent(
        approved(
            lines=[
                labour("BRK-010", "1.5", "450"),
                part("BP-4411", "380", op_code="BRK-010"),
                part("OIL-5W30", "200"),
            ],
        )
    )
    [job] = order["jobs"]
    tech = auth("technician")
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/extra-work",
        headers=tech,
        json={
            "job_id": job["id"],
            "findings": "前刹车盘磨损 / front discs worn",
            "proposed_lines": [{"kind": "labour", "op_code": "BRK-020", "flat_rate_hours": "1"}],
        },
    )
    assert r.status_code == 201, r.text
    r = await wo.client.post(f"/repair-orders/{order['id']}/inspection", headers=tech)
    assert r.status_code == 201, r.text
    async with wo.db.transaction() as session:
        assert await promise.check_promises(session, Settings(), PROMISED + timedelta(hours=1))
    return {"order_id": order["id"], "job_id": job["id"]}


async def test_every_operation_as_every_role_is_what_the_readme_says(wo: Workshop):
    table = read_table(README)
    seeds = await seeded_order(wo)
    result = await walk(wo.app, table, params=seeds)
    assert not result.mismatches, "\n".join(result.mismatches)
    assert views_on_reads(table) <= result.views_checked


async def test_the_workshop_floor_sees_no_customer_and_no_money(wo: Workshop):
    seeds = await seeded_order(wo)
    path = f"/repair-orders/{seeds['order_id']}"
    full = (await wo.client.get(path, headers=auth("advisor"))).json()
    assert full["customer_name"] == "王芳" and full["jobs"][0]["parts"][0]["net"] == "380"
    for role in ("technician", "qc"):
        seen = shape((await wo.client.get(path, headers=auth(role))).json())
        assert {"vin", "plate", "jobs.op_code", "jobs.parts.part_number"} <= seen
        money = {"customer_name", "customer_id", "invoice", "erp_paid", "jobs.parts.net"}
        assert not money & seen, (role, money & seen)
        assert not {p for p in seen if p.endswith(("unit_price", "labour_rate", "net"))}
    listed = (await wo.client.get("/repair-orders", headers=auth("technician"))).json()
    assert "customer_name" not in listed["items"][0] and listed["items"][0]["plate"]
    assert (await wo.client.get(path, headers=auth("screen"))).status_code == 403
    assert (await wo.client.get("/repair-orders", headers=auth("screen"))).status_code == 403


async def test_several_roles_see_the_union_of_their_views_and_no_more(wo: Workshop):
    seeds = await seeded_order(wo)
    path = f"/repair-orders/{seeds['order_id']}"
    both = (await wo.client.get(path, headers=auth(["technician", "cashier"]))).json()
    assert both["customer_name"] == "王芳"  # the cashier's
    assert both["jobs"][0]["technician_id"] is None and "bay" in both["jobs"][0]  # the floor's
    assert "promises" not in both  # neither's
    # A role that may not read the order adds nothing to one that may.
    floor = (await wo.client.get(path, headers=auth(["technician", "followup_agent"]))).json()
    assert "customer_name" not in floor and floor["vin"]


async def test_a_write_answers_with_the_callers_view(wo: Workshop):
    seeds = await seeded_order(wo)
    order = await wo.order(seeds["order_id"])
    r = await wo.client.post(
        f"/repair-orders/{seeds['order_id']}/transitions",
        headers={**auth("foreman"), "If-Match": order["etag"]},
        json={"to": "cancelled", "reason": "customer withdrew"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["customer_name"] == "王芳"
    assert "invoice" not in r.json() and "erp_paid" not in r.json()
    assert r.headers["ETag"]  # the projection keeps the headers


async def test_the_cashier_settles_and_the_foreman_dispatches_seeing_their_views(
    wo: Workshop,
):
    views = read_table(README).views
    order = await work_to_ready(wo)
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/settlement",
        headers={**auth("cashier"), "If-Match": order["etag"]},
        json={"payments": [{"method": "wechat", "amount": "508.50"}]},
    )
    assert r.status_code == 200, r.text
    full = await wo.order(order["id"])
    assert full["invoice"] and r.json()["invoice"] == full["invoice"]
    assert shape(r.json()) == shape(cut(full, views["order-money"]))
    assert "part_lines" not in r.json() and "technician_id" not in r.json()["jobs"][0]

    second = await wo.consent(approved())
    job = await wo.job(second["jobs"][0]["id"])
    r = await wo.client.put(
        f"/jobs/{job['id']}/assignment",
        headers={**auth("foreman"), "If-Match": job["etag"]},
        json={"technician_id": "tech-li", "bay": "B2"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["technician_id"] == "tech-li"
    assert shape(r.json()) == shape(cut(await wo.job(job["id"]), views["job-work"]))
