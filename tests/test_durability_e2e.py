"""Nothing is lost and nothing doubles when a service is killed or NATS goes away."""

import httpx
import pytest

from tests.flow import open_intake, register, repair_orders_for
from tests.harness import Stack, auth, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def test_workorders_killed_then_restarted_opens_each_repair_order_once(stack: Stack):
    workorders = stack.services["workorders"]
    async with httpx.AsyncClient(timeout=10) as client:
        _, vehicle = await register(client, stack.url("reception"))
        workorders.kill()
        intakes = [
            await open_intake(client, stack.url("reception"), vehicle["id"]) for _ in range(50)
        ]
        workorders.start()
        ids = {i["id"] for i in intakes}

        async def all_arrived() -> list | None:
            orders = await repair_orders_for(client, stack.url("workorders"), ids)
            return orders if len(orders) >= 50 else None

        orders = await eventually(all_arrived, timeout=30, what="50 repair orders")
        assert len(orders) == 50
        assert {o["intake_id"] for o in orders} == ids
        assert len({o["number"] for o in orders}) == 50


async def test_nats_down_reception_keeps_answering_and_everything_arrives(stack: Stack):
    async with httpx.AsyncClient(timeout=10) as client:
        customer, vehicle = await register(client, stack.url("reception"), name="断网客户")
        stack.nats.stop()
        intakes = [
            await open_intake(client, stack.url("reception"), vehicle["id"]) for _ in range(20)
        ]
        stack.nats.start()
        ids = {i["id"] for i in intakes}

        async def orders_arrived() -> bool:
            return len(await repair_orders_for(client, stack.url("workorders"), ids)) == 20

        await eventually(orders_arrived, timeout=40, what="20 repair orders after NATS restart")

        async def timeline_complete() -> bool:
            r = await client.get(
                f"{stack.url('records')}/vehicles/{vehicle['id']}/timeline",
                params={"limit": 200},
                headers=auth("records_clerk"),
            )
            if r.status_code != 200:
                return False
            entries = r.json()["entries"]
            intake_refs = {e["reference_id"] for e in entries if e["kind"] == "intake.opened"}
            orders = [e for e in entries if e["kind"] == "repair_order.opened"]
            return intake_refs == ids and len(orders) == 20

        await eventually(timeline_complete, timeout=40, what="records timeline with 20 visits")

        async def contact_counted() -> bool:
            r = await client.get(
                f"{stack.url('followup')}/contacts/{customer['id']}", headers=auth("followup_agent")
            )
            return r.status_code == 200 and r.json()["visits"] == 20

        await eventually(contact_counted, timeout=40, what="followup contact with 20 visits")
