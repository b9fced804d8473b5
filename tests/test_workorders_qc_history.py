"""A job's QC verdicts over the API (`GET /jobs/{id}/qc`): a failed one's reason is there
for the technician who reworks it, newest first; another branch's job is 404."""

import pytest

from tests.harness import auth
from tests.test_workorders_api import TECH_LI, Workorders, approved, wo  # noqa: F401

pytestmark = pytest.mark.asyncio


async def test_a_failed_qc_reason_is_read_back_for_the_technician(wo: Workorders) -> None:  # noqa: F811
    order = await wo.consent(approved())
    job_id = order["jobs"][0]["id"]
    await wo.assign(job_id)
    empty = await wo.client.get(f"/jobs/{job_id}/qc", headers=TECH_LI)
    assert empty.status_code == 200 and empty.json() == {"items": [], "next_cursor": None}

    for verdict in (
        {"passed": False, "reason": "前轮异响仍在", "road_test": True},
        {"passed": True},
    ):
        r = await wo.client.post(f"/jobs/{job_id}/clock-on", headers=TECH_LI)
        assert r.status_code == 201, r.text
        r = await wo.client.post(f"/jobs/{job_id}/clock-off", headers=TECH_LI, json={})
        assert r.status_code == 200, r.text
        assert (await wo.move(order["id"], "qc")).status_code == 200
        r = await wo.client.post(f"/jobs/{job_id}/qc", headers=auth("qc"), json=verdict)
        assert r.status_code == 201, r.text

    r = await wo.client.get(f"/jobs/{job_id}/qc", headers=TECH_LI)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["passed"] for i in items] == [True, False]
    assert items[1]["reason"] == "前轮异响仍在" and items[1]["road_test"] is True
    other = await wo.client.get(f"/jobs/{job_id}/qc", headers=auth("foreman", "BR02"))
    assert other.status_code == 404
