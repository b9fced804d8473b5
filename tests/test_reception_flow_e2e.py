"""Estimate to repair order with real processes: partial consent reaches the workshop as
exactly the approved lines; extra work found comes back for consent, is priced by the
advisor (the customer may not approve it unpriced), keeps its link through the revisions,
and the order grows by a job of that extra work, billed at the agreed price."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.flow import open_intake, register, repair_orders_for
from tests.harness import Stack, auth, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

ADVISOR = auth("advisor")


async def test_consented_lines_reach_the_repair_order_and_extra_work_comes_back(
    stack: Stack,
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        await consent_flow(client, stack.url("reception"), stack.url("workorders"))


async def consent_flow(client: httpx.AsyncClient, reception: str, workorders: str) -> None:
    """Shared with the in-process variant in test_reception_workorders.py."""
    _, vehicle = await register(client, reception)
    intake = await open_intake(client, reception, vehicle["id"])
    promised = (datetime.now(UTC) + timedelta(hours=6)).isoformat()
    r = await client.post(
        f"{reception}/estimates",
        headers={**ADVISOR, "Idempotency-Key": f"est-{uuid.uuid4()}"},
        json={
            "intake_id": intake["id"],
            "promised_at": promised,
            "lines": [
                {
                    "kind": "labour",
                    "op_code": "BRK-PAD-F",
                    "description": "更换前刹车片",
                    "flat_rate_hours": "1.2",
                    "labour_rate": "380",
                },
                {
                    "kind": "part",
                    "op_code": "BRK-PAD-F",
                    "part_number": "5QD698151",
                    "unit_price": "468",
                },
                {
                    "kind": "labour",
                    "op_code": "AC-CLEAN",
                    "description": "空调清洗",
                    "flat_rate_hours": "0.5",
                    "labour_rate": "380",
                },
            ],
        },
    )
    assert r.status_code == 201, r.text
    estimate = r.json()
    brakes, pads, aircon = (line["line_id"] for line in estimate["lines"])
    r = await client.post(
        f"{reception}/estimates/{estimate['id']}/consents",
        headers={**ADVISOR, "If-Match": r.headers["ETag"]},
        json={
            "decisions": [
                {"line_id": brakes, "decision": "approved"},
                {"line_id": pads, "decision": "approved"},
                {"line_id": aircon, "decision": "declined"},
            ],
            "by": "测试客户",
            "channel": "phone",
            "call_note": "刹车同意，空调下次",
        },
    )
    assert r.status_code == 200, r.text

    async def order_with(job_lines: set[str]) -> dict[str, Any] | None:
        orders = await repair_orders_for(client, workorders, {intake["id"]})
        if not orders:
            return None
        r = await client.get(
            f"{workorders}/repair-orders/{orders[0]['id']}", headers=auth("foreman")
        )
        detail: dict[str, Any] = r.json()
        jobs = {job["line_id"] for job in detail.get("jobs", [])}
        return detail if jobs == job_lines else None

    order = await eventually(lambda: order_with({brakes}), what="the approved job")
    assert aircon not in {job["line_id"] for job in order["jobs"]}

    r = await client.post(
        f"{workorders}/repair-orders/{order['id']}/extra-work",
        headers=auth("foreman"),
        json={
            "findings": "后刹车盘磨损",
            "proposed_lines": [
                {
                    "kind": "labour",
                    "op_code": "BRK-DISC-R",
                    "description": "更换后刹车盘",
                    "flat_rate_hours": "1.5",
                }
            ],
        },
    )
    assert r.status_code == 201, r.text
    extra_work_id = r.json()["id"]

    async def extra_revision() -> dict[str, Any] | None:
        r = await client.get(f"{reception}/estimates/{estimate['id']}", headers=ADVISOR)
        body: dict[str, Any] = r.json()
        return body if body.get("extra_work_id") == extra_work_id else None

    revised = await eventually(extra_revision, what="the extra-work revision")
    (new_line,) = [line for line in revised["lines"] if line["answer"] is None]
    assert new_line["extra_work_id"] == extra_work_id
    consent = {
        "decisions": [{"line_id": new_line["line_id"], "decision": "approved"}],
        "by": "测试客户",
        "channel": "phone",
        "call_note": "同意更换后刹车盘",
    }
    # Found in the workshop without a price: the customer cannot approve it at 0.00.
    r = await client.post(
        f"{reception}/estimates/{estimate['id']}/consents",
        headers={**ADVISOR, "If-Match": revised["etag"]},
        json=consent,
    )
    assert r.status_code == 409, r.text
    assert r.json()["line_id"] == new_line["line_id"] and "price" in r.json()["detail"]

    # The advisor prices it, keeping every line by its id: the revision still answers the
    # extra work, and so does its line.
    kept = {"line_id", "kind", "description", "op_code", "op_group", "job_kind"}
    lines = [
        {k: v for k, v in line.items() if k in kept | {"flat_rate_hours", "labour_rate"}}
        | ({"labour_rate": "380"} if line["line_id"] == new_line["line_id"] else {})
        if line["kind"] == "labour"
        else {k: v for k, v in line.items() if k in kept | {"part_number", "unit_price"}}
        for line in revised["lines"]
    ]
    r = await client.put(
        f"{reception}/estimates/{estimate['id']}",
        headers={**ADVISOR, "If-Match": revised["etag"]},
        json={"promised_at": promised, "lines": lines},
    )
    assert r.status_code == 200, r.text
    priced = r.json()
    assert priced["extra_work_id"] == extra_work_id
    assert priced["repair_order_id"] == order["id"]
    (priced_line,) = [line for line in priced["lines"] if line["answer"] is None]
    assert (priced_line["line_id"], priced_line["net"]) == (new_line["line_id"], "570.00")
    assert priced_line["extra_work_id"] == extra_work_id
    r = await client.post(
        f"{reception}/estimates/{estimate['id']}/consents",
        headers={**ADVISOR, "If-Match": r.headers["ETag"]},
        json=consent,
    )
    assert r.status_code == 200, r.text
    order = await eventually(
        lambda: order_with({brakes, new_line["line_id"]}), what="the repair order to grow"
    )
    job = next(j for j in order["jobs"] if j["line_id"] == new_line["line_id"])
    assert job["extra_work_id"] == extra_work_id
    assert [(e["id"], e["status"]) for e in order["extra_work"]] == [(extra_work_id, "approved")]
    r = await client.get(
        f"{workorders}/repair-orders/{order['id']}/invoice-preview", headers=auth("cashier")
    )
    assert r.status_code == 200, r.text
    billed = next(line for line in r.json()["lines"] if line["line_id"] == new_line["line_id"])
    assert (billed["quantity"], billed["unit_price"], billed["net"]) == ("1.5", "380", "570.00")
