"""Work found in the workshop (an inspection's amber and red items, or extra work) that
names one of the branch's canned jobs reaches the customer priced as the canned job is:
its labour rate, its parts added and priced; other lines stay for the advisor to price."""

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from shared.contracts import EstimateLine
from shared.contracts.workorders import ExtraWorkFound
from tests.harness import eventually
from tests.test_reception_estimates import ADVISOR, Reception, _publish_extra_work, ids
from tests.test_reception_estimates import reception as reception

pytestmark = [pytest.mark.asyncio, pytest.mark.store]


async def test_found_work_with_a_canned_op_code_comes_priced(reception: Reception):
    canned = {
        "op_code": "BRK-010",
        "op_group": "brakes",
        "description": "更换前刹车片",
        "job_kind": "repair",
        "flat_rate_hours": "0.80",
        "labour_rate": "380.00",
        "parts": [{"part_number": "BP-4411", "quantity": "1", "unit_price": "420.00"}],
    }
    r = await reception.client.post("/canned-jobs", headers=ADVISOR, json=canned)
    assert r.status_code == 201, r.text
    r = await reception.estimate()
    before = ids(r)
    extra_work_id = uuid.uuid4()
    event = ExtraWorkFound(
        extra_work_id=extra_work_id,
        repair_order_id=uuid.uuid4(),
        repair_order_number="RO-2026-000001",
        intake_id=r.json()["intake_id"],
        branch="BR01",
        found_by="tech-li",
        findings="[red] 前刹车片厚度 / Front brake pads 1.5 mm",
        proposed_lines=[
            EstimateLine(
                line_id=uuid.uuid4(),
                kind="labour",
                op_code="BRK-010",
                flat_rate_hours="0.8",
                description="前刹车片厚度 / Front brake pads: 更换前刹车片",
                extra_work_id=extra_work_id,
            ),
            EstimateLine(
                line_id=uuid.uuid4(),
                kind="fee",
                description="灯光 / Lights",
                extra_work_id=extra_work_id,
            ),
        ],
        found_at=datetime.now(UTC),
    )
    await _publish_extra_work(reception.nats_url, event)
    url = f"/estimates/{r.json()['id']}"

    async def revised() -> httpx.Response | None:
        current = await reception.client.get(url, headers=ADVISOR)
        return current if current.json()["revision"] == 2 else None

    current = await eventually(revised, what="the extra-work revision")
    found = [line for line in current.json()["lines"] if line["line_id"] not in before]
    assert [(line["kind"], line["op_code"]) for line in found] == [
        ("labour", "BRK-010"),
        ("part", "BRK-010"),
        ("fee", None),
    ]
    labour, part, fee = found
    assert (labour["labour_rate"], labour["net"]) == ("380.00", "304.00")  # 0.8 h × 380
    assert (part["part_number"], part["net"]) == ("BP-4411", "420.00")
    assert part["extra_work_id"] == str(extra_work_id)
    assert fee["net"] == "0.00"  # no canned job: the advisor prices it
