"""The first real flow through all four services, as real processes over HTTP."""

import httpx
import pytest

from tests.flow import valid_vin
from tests.harness import Stack, auth, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def test_intake_flows_to_workorders_records_and_followup(stack: Stack) -> None:
    advisor = auth("advisor")
    async with httpx.AsyncClient(timeout=10) as client:
        reception = stack.url("reception")
        r = await client.post(
            f"{reception}/customers",
            headers=advisor,
            json={"name": "李雷", "mobile": "13912345678", "preferred_channel": "wechat"},
        )
        assert r.status_code == 201, r.text
        customer = r.json()
        vin = valid_vin(serial=2183294)
        r = await client.post(
            f"{reception}/vehicles",
            headers=advisor,
            json={"customer_id": customer["id"], "vin": vin.lower(), "plate": "沪A12345"},
        )
        assert r.status_code == 201, r.text
        vehicle = r.json()
        assert vehicle["vin"] == vin
        assert vehicle["make"] == "SAIC Volkswagen"
        assert vehicle["model_year"] == 2022
        r = await client.post(
            f"{reception}/intakes",
            headers=advisor,
            json={"vehicle_id": vehicle["id"], "odometer_km": 42000, "concerns": ["刹车异响"]},
        )
        assert r.status_code == 201, r.text
        intake = r.json()

        async def repair_order() -> dict | None:
            r = await client.get(
                f"{stack.url('workorders')}/repair-orders",
                params={"intake_id": intake["id"]},
                headers=auth("foreman"),
            )
            assert r.status_code == 200, r.text
            items = r.json()["items"]
            return items[0] if items else None

        order = await eventually(repair_order, what="draft repair order")
        assert order["status"] == "draft"
        assert order["vehicle_id"] == vehicle["id"]
        assert order["number"].startswith("RO-")

        async def timeline() -> list | None:
            r = await client.get(
                f"{stack.url('records')}/vehicles/{vehicle['id']}/timeline",
                headers=auth("records_clerk"),
            )
            if r.status_code == 404:
                return None
            kinds = [e["kind"] for e in r.json()["entries"]]
            return kinds if {"intake.opened", "repair_order.opened"} <= set(kinds) else None

        kinds = await eventually(timeline, what="vehicle timeline")
        assert kinds.index("intake.opened") < kinds.index("repair_order.opened")

        async def contact() -> dict | None:
            r = await client.get(
                f"{stack.url('followup')}/contacts/{customer['id']}", headers=auth("followup_agent")
            )
            return r.json() if r.status_code == 200 and r.json()["visits"] == 1 else None

        found = await eventually(contact, what="follow-up contact")
        assert found["name"] == "李雷"
        assert found["preferred_channel"] == "wechat"

        # Another branch sees none of it.
        r = await client.get(
            f"{stack.url('workorders')}/repair-orders/{order['id']}",
            headers=auth("foreman", branch="BR02"),
        )
        assert r.status_code == 404
