"""A create or an update may point only at objects of the caller's branch: another branch's
id (or an unknown one) is refused with 422 naming the field, and nothing is written."""

import uuid

import httpx
import pytest

from services.followup import service as followup_service
from services.followup.models import Complaint
from services.followup.models import OutboxEvent as FollowupOutbox
from services.workorders import service as workorders_service
from shared.contracts import CustomerSnapshot
from tests.flow import valid_vin
from tests.harness import auth
from tests.test_bad_input import assert_problem, counts, reception  # noqa: F401
from tests.test_followup_api import AGENT, MONDAY, Followup, followup  # noqa: F401
from tests.test_workorders_api import Workorders, approved, wo  # noqa: F401

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

COMPLAINT = {"source": "call", "severity": "major", "category": "repair_quality"}


async def test_a_complaint_names_only_its_branchs_customer_and_repair_order(
    followup: Followup,  # noqa: F811
) -> None:
    customer, someone_else = uuid.uuid4(), uuid.uuid4()
    async with followup.db.transaction() as session:
        for customer_id in (customer, someone_else):
            snapshot = CustomerSnapshot(id=customer_id, name="王芳")
            await followup_service.upsert_contact(session, "BR01", snapshot, as_of=MONDAY)
    delivery = await followup.deliver(customer_id=customer)
    order_id = str(delivery["event"].repair_order_id)

    async def cases_written() -> tuple[int, int]:
        return await followup.count(Complaint), await followup.count(FollowupOutbox)

    before = await cases_written()
    br02 = auth("followup_agent", "BR02")
    refused = [
        (br02, {"customer_id": str(customer), "repair_order_id": order_id}, "customer_id"),
        (br02, {"customer_id": str(customer)}, "customer_id"),
        (br02, {"repair_order_id": order_id}, "repair_order_id"),
        (AGENT, {"repair_order_id": str(uuid.uuid4())}, "repair_order_id"),
        (AGENT, {"customer_id": str(uuid.uuid4())}, "customer_id"),
        (AGENT, {"customer_id": str(someone_else), "repair_order_id": order_id}, "customer_id"),
    ]
    for headers, ids, field in refused:
        body = {**COMPLAINT, "description": "返修后仍异响", **ids}
        r = await followup.client.post("/complaints", json=body, headers=headers)
        assert_problem(r, 422, field)
    assert await cases_written() == before

    body = {**COMPLAINT, "description": "返修后仍异响", "repair_order_id": order_id}
    r = await followup.client.post("/complaints", json=body, headers=AGENT)
    assert r.status_code == 201, r.text
    case = r.json()
    assert (case["customer_id"], case["repair_order_number"]) == (str(customer), "RO-2026-000001")
    assert case["technician_id"] == "tech-7"


async def test_extra_work_names_only_a_job_of_the_callers_branch(wo: Workorders) -> None:  # noqa: F811
    mine = await wo.consent(approved())
    theirs_event = approved(branch="BR02")
    async with wo.db.transaction() as session:
        theirs = await workorders_service.apply_consent(session, theirs_event)
        assert theirs is not None
        [their_job] = await workorders_service.jobs_of(session, theirs.id)
    before = len(await wo.events("workorders.extra_work.found.v1"))
    finding = {
        "job_id": str(their_job.id),
        "findings": "前刹车盘有沟槽",
        "proposed_lines": [{"kind": "labour", "op_code": "BRK-020", "flat_rate_hours": "1.0"}],
    }
    r = await wo.client.post(
        f"/repair-orders/{mine['id']}/extra-work",
        headers=auth("technician"),
        json=finding,
    )
    assert_problem(r, 422, "job_id")
    assert len(await wo.events("workorders.extra_work.found.v1")) == before


async def test_a_vehicle_is_registered_only_to_a_customer_of_the_branch(
    reception: httpx.AsyncClient,  # noqa: F811
) -> None:
    r = await reception.post("/customers", headers=auth("advisor"), json={"name": "王芳"})
    customer_id = r.json()["id"]
    before = await counts(reception)
    for branch, customer in (("BR02", customer_id), ("BR01", str(uuid.uuid4()))):
        r = await reception.post(
            "/vehicles",
            headers=auth("advisor", branch),
            json={"customer_id": customer, "vin": valid_vin()},
        )
        assert_problem(r, 422, "customer_id")
    assert await counts(reception) == before
