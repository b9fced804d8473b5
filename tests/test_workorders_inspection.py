"""The multi-point inspection in process on a real database and nats-server: the branch's
template (default, replaced by a manager with If-Match), an inspection filled item by item
with ETags and Idempotency-Key, role and branch refusals, and completion sending amber and
red items to the customer as extra work with their photos."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from services.workorders.config import Settings
from services.workorders.main import create_app
from tests.harness import NatsServer, auth, token
from tests.test_bad_input import assert_problem
from tests.test_workorders_api import (
    ADVISOR,
    FOREMAN,
    MANAGER,
    QC,
    TECH_LI,
    Workorders,
    approved,
    labour,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.store]


@pytest_asyncio.fixture
async def wo(database_url: str, nats_server: NatsServer) -> AsyncIterator[Workorders]:
    app = create_app(Settings(database_url=database_url, nats_url=nats_server.url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield Workorders(client, app.state.runtime.db, nats_server.url)


OTHER_BRANCH_TECH = {"Authorization": f"Bearer {token('technician', 'BR02', sub='tech-zhou')}"}


async def started(wo: Workorders) -> tuple[dict[str, Any], dict[str, Any], str]:
    order = await wo.consent(approved(lines=[labour("MNT-001", "1.0", "300")]))
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/inspection",
        headers={**TECH_LI, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    return order, r.json(), r.headers["ETag"]


async def fill(
    wo: Workorders, order_id: str, code: str, etag: str, **body: Any
) -> tuple[dict[str, Any], str]:
    r = await wo.client.put(
        f"/repair-orders/{order_id}/inspection/items/{code}",
        headers={**TECH_LI, "If-Match": etag},
        json=body,
    )
    assert r.status_code == 200, r.text
    return r.json(), r.headers["ETag"]


async def test_the_default_template_then_the_managers_own(wo: Workorders):
    r = await wo.client.get("/inspection-template", headers=TECH_LI)
    assert r.status_code == 200, r.text
    template = r.json()
    assert r.headers["ETag"] == '"0"' and template["version"] == 0
    assert [a["code"] for a in template["areas"]][:2] == ["tyres", "brakes"]
    tread = template["areas"][0]["items"][0]
    assert tread["measurement"]["unit"] == "mm"
    assert tread["measurement"]["red_below"] == "1.6"

    mine: dict[str, Any] = {
        "areas": [
            {
                "code": "brakes",
                "label_zh": "制动",
                "label_en": "Brakes",
                "items": [
                    {
                        "code": "pads",
                        "label_zh": "刹车片",
                        "label_en": "Pads",
                        "measurement": {"unit": "mm", "amber_below": "5", "red_below": "3"},
                    }
                ],
            }
        ]
    }
    # Only a manager; with the ETag read; complete input.
    r = await wo.client.put(
        "/inspection-template", headers={**ADVISOR, "If-Match": '"0"'}, json=mine
    )
    assert r.status_code == 403
    r = await wo.client.put("/inspection-template", headers=MANAGER, json=mine)
    assert r.status_code == 428
    r = await wo.client.put(
        "/inspection-template", headers={**MANAGER, "If-Match": '"3"'}, json=mine
    )
    assert r.status_code == 412
    bad = {"areas": [{**mine["areas"][0], "items": [{**mine["areas"][0]["items"][0]}] * 2}]}
    r = await wo.client.put(
        "/inspection-template", headers={**MANAGER, "If-Match": '"0"'}, json=bad
    )
    assert_problem(r, 422, "areas")
    inverted = {"unit": "mm", "amber_below": "2", "red_below": "3"}
    bad = {
        "areas": [
            {
                **mine["areas"][0],
                "items": [{**mine["areas"][0]["items"][0], "measurement": inverted}],
            }
        ]
    }
    r = await wo.client.put(
        "/inspection-template", headers={**MANAGER, "If-Match": '"0"'}, json=bad
    )
    body = assert_problem(r, 422, "areas.0.items.0.measurement")
    assert "red_below" in body["detail"]
    assert (await wo.client.get("/inspection-template", headers=MANAGER)).json()["version"] == 0

    r = await wo.client.put(
        "/inspection-template", headers={**MANAGER, "If-Match": '"0"'}, json=mine
    )
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"1"' and r.json()["updated_by"]
    # Another branch still reads the default.
    other = await wo.client.get("/inspection-template", headers=OTHER_BRANCH_TECH)
    assert other.json()["version"] == 0 and len(other.json()["areas"]) > 1
    # A new inspection follows the branch's template.
    _, inspection, _ = await started(wo)
    assert [i["code"] for i in inspection["items"]] == ["pads"]
    assert inspection["items"][0]["amber_below"] == "5"


async def test_filling_items_with_etags_roles_and_measurements(wo: Workorders):
    order, inspection, etag = await started(wo)
    oid = order["id"]
    assert inspection["status"] == "open" and all(i["status"] is None for i in inspection["items"])
    # One per order.
    again = await wo.client.post(f"/repair-orders/{oid}/inspection", headers=TECH_LI)
    assert again.status_code == 409
    # Readers; the cashier, QC and another branch are refused.
    for who in (ADVISOR, FOREMAN, MANAGER, TECH_LI):
        r = await wo.client.get(f"/repair-orders/{oid}/inspection", headers=who)
        assert r.status_code == 200 and r.headers["ETag"] == etag
    assert (await wo.client.get(f"/repair-orders/{oid}/inspection", headers=QC)).status_code == 403
    r = await wo.client.get(f"/repair-orders/{oid}/inspection", headers=OTHER_BRANCH_TECH)
    assert r.status_code == 404

    path = f"/repair-orders/{oid}/inspection/items/tread-fl"
    # Only the technician, with the ETag.
    r = await wo.client.put(path, headers={**FOREMAN, "If-Match": etag}, json={"status": "green"})
    assert r.status_code == 403
    r = await wo.client.put(path, headers=TECH_LI, json={"status": "green"})
    assert r.status_code == 428
    r = await wo.client.put(path, headers={**TECH_LI, "If-Match": '"99"'}, json={"status": "green"})
    assert r.status_code == 412
    r = await wo.client.put(path, headers={**TECH_LI, "If-Match": etag}, json={"status": "blue"})
    assert_problem(r, 422, "status")
    r = await wo.client.put(
        f"/repair-orders/{oid}/inspection/items/nope",
        headers={**TECH_LI, "If-Match": etag},
        json={},
    )
    assert r.status_code == 404
    r = await wo.client.put(
        f"/repair-orders/{oid}/inspection/items/lights",
        headers={**TECH_LI, "If-Match": etag},
        json={"value": "3"},
    )
    assert_problem(r, 422, "value")
    current = await wo.client.get(f"/repair-orders/{oid}/inspection", headers=TECH_LI)
    assert current.headers["ETag"] == etag  # nothing written on a refusal

    # A measurement without a status takes its limits' status: 2.5 mm of tread is amber.
    body, etag2 = await fill(wo, oid, "tread-fl", etag, value="2.5", note="内侧偏磨")
    item = next(i for i in body["items"] if i["code"] == "tread-fl")
    assert (item["status"], item["value"], item["unit"]) == ("amber", "2.5", "mm")
    assert etag2 != etag
    body, _ = await fill(wo, oid, "pads-front", etag2, value="1.5")
    assert next(i for i in body["items"] if i["code"] == "pads-front")["status"] == "red"
    # The technician's tap wins over the limits.
    etag3 = (await wo.client.get(f"/repair-orders/{oid}/inspection", headers=TECH_LI)).headers[
        "ETag"
    ]
    body, _ = await fill(wo, oid, "tread-fr", etag3, value="5", status="amber")
    assert next(i for i in body["items"] if i["code"] == "tread-fr")["status"] == "amber"

    # A retry with the same key answers the first answer, ETag and all.
    latest = await wo.client.get(f"/repair-orders/{oid}/inspection", headers=TECH_LI)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await wo.client.put(
        f"/repair-orders/{oid}/inspection/items/coolant",
        headers={**TECH_LI, **key, "If-Match": latest.headers["ETag"]},
        json={"status": "green"},
    )
    retry = await wo.client.put(
        f"/repair-orders/{oid}/inspection/items/coolant",
        headers={**TECH_LI, **key, "If-Match": latest.headers["ETag"]},
        json={"status": "green"},
    )
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json() and retry.headers["ETag"] == first.headers["ETag"]


async def test_completion_makes_the_amber_and_red_items_extra_work(wo: Workorders):
    order, inspection, etag = await started(wo)
    oid = order["id"]
    photo = str(uuid.uuid4())
    # Incomplete: refused, naming the items still open.
    r = await wo.client.post(
        f"/repair-orders/{oid}/inspection/completion", headers={**TECH_LI, "If-Match": etag}
    )
    assert_problem(r, 422, "items")
    for item in inspection["items"]:
        code = item["code"]
        fields: dict[str, Any] = {"status": "green"}
        if code == "pads-front":
            fields = {"value": "1.8", "note": "露出金属", "photo_file_ids": [photo]}
        elif code == "wipers":
            fields = {"status": "amber", "note": "刮不干净"}
        elif code == "lights":
            fields = {"status": "red", "note": "左后尾灯不亮"}
        _, etag = await fill(wo, oid, code, etag, **fields)
    r = await wo.client.post(f"/repair-orders/{oid}/inspection/completion", headers=FOREMAN)
    assert r.status_code == 403
    r = await wo.client.post(f"/repair-orders/{oid}/inspection/completion", headers=TECH_LI)
    assert r.status_code == 428
    r = await wo.client.post(
        f"/repair-orders/{oid}/inspection/completion", headers={**TECH_LI, "If-Match": etag}
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "completed" and done["extra_work_id"]
    assert done["completed_by"] == "tech-li"

    # The extra-work flow: one extra work with a line per canned job (or a fee line naming
    # an item without one), the findings and the photos; reception gets the same event.
    [found] = await wo.events("workorders.extra_work.found.v1")
    assert found["extra_work_id"] == done["extra_work_id"]
    lines = found["proposed_lines"]
    assert [line["op_code"] for line in lines if line["kind"] == "labour"] == ["BRK-010"]
    assert [line["part_number"] for line in lines if line["kind"] == "part"] == ["WB-22"]
    fee = next(line for line in lines if line["kind"] == "fee")
    assert "Lights" in fee["description"]
    assert found["photo_file_ids"] == [photo]
    assert "1.80 mm" in found["findings"] or "1.8 mm" in found["findings"]
    full = await wo.order(oid)
    assert full["extra_work"][0]["id"] == done["extra_work_id"]
    assert full["extra_work"][0]["status"] == "proposed"

    [event] = await wo.events("workorders.inspection.completed.v1")
    assert event["repair_order_id"] == oid and event["counts"] == {
        "green": len(inspection["items"]) - 3,
        "amber": 1,
        "red": 2,
    }
    assert event["extra_work_id"] == done["extra_work_id"]

    # Completed: no more changes, no second completion.
    r = await wo.client.put(
        f"/repair-orders/{oid}/inspection/items/coolant",
        headers={**TECH_LI, "If-Match": r.headers["ETag"]},
        json={"status": "red"},
    )
    assert r.status_code == 409


async def test_an_all_green_inspection_proposes_nothing(wo: Workorders):
    order, inspection, etag = await started(wo)
    for item in inspection["items"]:
        _, etag = await fill(wo, order["id"], item["code"], etag, status="green")
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/inspection/completion",
        headers={**TECH_LI, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert r.json()["extra_work_id"] is None
    assert await wo.events("workorders.extra_work.found.v1") == []
    [event] = await wo.events("workorders.inspection.completed.v1")
    assert event["counts"]["green"] == len(inspection["items"])


async def test_another_roles_token_or_branch_cannot_start_one(wo: Workorders):
    order = await wo.consent(approved())
    for who in (ADVISOR, FOREMAN, MANAGER, auth("cashier")):
        r = await wo.client.post(f"/repair-orders/{order['id']}/inspection", headers=who)
        assert r.status_code == 403
    r = await wo.client.post(f"/repair-orders/{order['id']}/inspection", headers=OTHER_BRANCH_TECH)
    assert r.status_code == 404
