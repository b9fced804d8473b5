"""Estimate to repair order with real processes: partial consent reaches the workshop as
exactly the approved lines; extra work found comes back for consent and the order grows."""

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
    r = await client.post(
        f"{reception}/estimates/{estimate['id']}/consents",
        headers={**ADVISOR, "If-Match": revised["etag"]},
        json={
            "decisions": [{"line_id": new_line["line_id"], "decision": "approved"}],
            "by": "测试客户",
            "channel": "phone",
            "call_note": "同意更换后刹车盘",
        },
    )
    assert r.status_code == 200, r.text
    await eventually(
        lambda: order_with({brakes, new_line["line_id"]}), what="the repair order to grow"
    )
