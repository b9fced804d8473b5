"""`make run`'s demo data against the services as real processes: a branch day with every
state of a visit, read back through the APIs; a second load adds nothing."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.harness import JWT_SECRET, Stack, auth, eventually
from tools import demo

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

ZONE = "Asia/Shanghai"
# What each stage of a car's story leaves on its repair order.
ORDER_STATUS = {
    "received": "draft",
    "estimated": "draft",
    "dispatched": "open",
    "in_work": "in_progress",
    "waiting_parts": "waiting_parts",
    "qc": "qc",
    "ready": "settled",
    "delivered": "delivered",
}


def items(body: Any) -> list[dict[str, Any]]:
    return list(body["items"] if isinstance(body, dict) else body)


async def test_demo_loads_a_branch_day_with_every_state_once(stack: Stack) -> None:
    urls = {name: stack.url(name) for name in stack.names}
    today = datetime.now(UTC).astimezone(ZoneInfo(ZONE)).date()
    started = time.monotonic()
    summary = await demo.load_async(urls, JWT_SECRET, ZONE)
    took = time.monotonic() - started
    assert summary is not None
    assert took < 30, f"the demo took {took:.1f} s"
    print(f"demo loaded in {took:.2f} s")
    assert set(summary.stages) == set(demo.STAGES)

    async with httpx.AsyncClient(timeout=10) as client:
        orders = await all_orders(client, stack.url("workorders"))
        by_plate = {order["plate"]: order for order in orders}
        assert len(orders) == len(demo.CARS)
        for car in demo.CARS:
            assert by_plate[car.plate]["status"] == ORDER_STATUS[car.stage], car

        # Received cars wait for their estimate; one estimate waits for consent.
        estimates = {}
        for car in demo.CARS:
            if car.stage in ("received", "estimated"):
                r = await client.get(
                    f"{stack.url('reception')}/intakes/{by_plate[car.plate]['intake_id']}/estimate",
                    headers=auth("advisor"),
                )
                estimates[car.stage] = r.status_code, r.json().get("status")
        assert estimates["received"][0] == 404
        assert estimates["estimated"] == (200, "awaiting_consent")

        details = {}
        for order in orders:
            r = await client.get(
                f"{stack.url('workorders')}/repair-orders/{order['id']}", headers=auth("advisor")
            )
            details[order["plate"]] = r.json()
        jobs = {car.stage: details[car.plate]["jobs"] for car in demo.CARS}
        # The roster: five technicians with their own bays share the work.
        dispatched = [job for stage in jobs.values() for job in stage if job["technician_id"]]
        assert {job["technician_id"] for job in dispatched} == {t.id for t in demo.TECHNICIANS}
        assert {(job["technician_id"], job["bay"]) for job in dispatched} == {
            (t.id, t.bay) for t in demo.TECHNICIANS
        }
        # ...and are the branch's roster, which workorders offers for today.
        r = await client.get(
            f"{stack.url('workorders')}/technicians/working",
            params={"on": today.isoformat()},
            headers=auth("foreman"),
        )
        working = {(t["technician_id"], t["bay"]) for t in r.json()["items"]}
        assert working == {(t.id, t.bay) for t in demo.TECHNICIANS}
        r = await client.get(f"{stack.url('reception')}/branches/BR01", headers=auth("advisor"))
        assert (r.status_code, r.json()["time_zone"]) == (200, ZONE)
        assert {job["status"] for job in jobs["dispatched"]} == {"assigned"}
        assert "in_progress" in {job["status"] for job in jobs["in_work"]}
        (waiting,) = jobs["waiting_parts"]
        assert (waiting["status"], waiting["pause_reason"]) == ("paused", "waiting_parts")
        assert waiting["parts_eta_at"] is not None
        assert {job["status"] for job in jobs["qc"]} == {"done"}
        for stage in ("ready", "delivered"):
            car = next(c for c in demo.CARS if c.stage == stage)
            detail = details[car.plate]
            assert detail["invoice_number"] and detail["invoice_prints"] == 1
            assert Decimal(str(detail["invoice"]["gross_total"])) > 0
            assert {job["status"] for job in detail["jobs"]} <= {"qc_passed", "cancelled"}
        delivered = [details[c.plate] for c in demo.CARS if c.stage == "delivered"]
        assert all(order["delivered_at"] and order["settled_at"] for order in delivered)
        assert any(order["declined_lines"] for order in delivered)

        # Promises at risk: the car whose promise is 40 minutes away with 2.5 hours of
        # work left, and the car waiting for a part that comes after its promise.
        expected = {c.plate for c in demo.CARS if c.promise == "soon" or c.part_eta}

        async def at_risk() -> set[str] | None:
            r = await client.get(
                f"{stack.url('workorders')}/repair-orders/at-risk", headers=auth("advisor")
            )
            plates = {order["plate"] for order in items(r.json())}
            return plates if expected <= plates else None

        assert await eventually(at_risk, timeout=30, what="promises at risk") == expected

        # Appointments: the cars that came in on one today, and bookings ahead.
        tomorrow = today + timedelta(days=1)
        booked: dict[str, list[dict[str, Any]]] = {}
        for day in (today, tomorrow, tomorrow + timedelta(days=1)):
            r = await client.get(
                f"{stack.url('reception')}/appointments",
                params={"day": day.isoformat()},
                headers=auth("advisor"),
            )
            for appointment in items(r.json()):
                booked.setdefault(appointment["status"], []).append(appointment)
        assert len(booked["arrived"]) == sum(car.booked for car in demo.CARS)
        # The day may have turned while loading: tomorrow's are then the day after's.
        ahead = [a for a in booked["booked"] if a["day"] != today.isoformat()]
        assert len(ahead) >= len(demo.TOMORROW)
        assert summary.appointments == len(booked["arrived"]) + len(booked["booked"])

        # Delivered cars reach follow-up.
        for order in delivered:

            async def visit(customer_id: str = order["customer_id"]) -> bool:
                r = await client.get(
                    f"{stack.url('followup')}/contacts/{customer_id}",
                    headers=auth("followup_agent"),
                )
                return r.status_code == 200 and r.json()["visits"] >= 1

            await eventually(visit, what="delivered customer's follow-up contact")

        r = await client.get(
            f"{stack.url('reception')}/customers", params={"limit": 200}, headers=auth("advisor")
        )
        customers = len(items(r.json()))

    # Run again on the same data: nothing more.
    assert await demo.load_async(urls, JWT_SECRET, ZONE) is None
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(
            f"{stack.url('reception')}/customers", params={"limit": 200}, headers=auth("advisor")
        )
        assert len(items(r.json())) == customers == len(demo.CARS)
        assert len(await all_orders(client, stack.url("workorders"))) == len(demo.CARS)


async def all_orders(client: httpx.AsyncClient, workorders: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        r = await client.get(f"{workorders}/repair-orders", params=params, headers=auth("foreman"))
        assert r.status_code == 200, r.text
        found += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return found
