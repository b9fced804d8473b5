"""Appointment capacity under concurrent bookings (in process and across two reception
processes on one database), and the AppointmentBooked / AppointmentClosed events."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
import pytest
import pytest_asyncio

from tests.flow import open_days_ahead, register
from tests.harness import (
    NatsServer,
    auth,
    backend,
    create_pg_database,
    drop_pg_database,
    eventually,
)
from tests.test_bad_input import _client, assert_problem
from tools.processes import ServiceProcess

ADVISOR = auth("advisor")
MANAGER = auth("manager")
DAY = open_days_ahead(4)
AT = datetime(DAY.year, DAY.month, DAY.day, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest_asyncio.fixture
async def reception(database_url: str, nats_server: NatsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with _client("reception", database_url, nats_server) as client:
        yield client


async def _vehicles(client: httpx.AsyncClient, base: str, n: int) -> list[str]:
    return [(await register(client, base))[1]["id"] for _ in range(n)]


async def _book_at_once(
    clients: list[tuple[httpx.AsyncClient, str]], vehicles: list[str], hours: str
) -> list[httpx.Response]:
    """Every booking sent at the same moment, spread over the given tablets (clients)."""
    start = asyncio.Event()

    async def one(i: int, vehicle: str) -> httpx.Response:
        client, base = clients[i % len(clients)]
        await start.wait()
        return await client.post(
            f"{base}/appointments",
            headers=ADVISOR,
            json={"vehicle_id": vehicle, "starts_at": AT.isoformat(), "planned_hours": hours},
        )

    tasks = [asyncio.create_task(one(i, v)) for i, v in enumerate(vehicles)]
    await asyncio.sleep(0)  # let every task reach the start line
    start.set()
    return await asyncio.gather(*tasks)


def _check_no_overbooking(answers: list[httpx.Response], fit: int) -> None:
    booked = [r for r in answers if r.status_code == 201]
    refused = [r for r in answers if r.status_code != 201]
    assert len(booked) == fit, [r.text for r in answers]
    for r in refused:
        body = assert_problem(r, 409)
        assert body["type"].endswith("over-booked")
        assert body["next_free_slots"][0]["day"] == (DAY + timedelta(days=1)).isoformat()
        assert body["next_free_days"] == [slot["day"] for slot in body["next_free_slots"]]


@pytest.mark.asyncio
@pytest.mark.store
async def test_bookings_at_the_same_moment_never_overbook_a_day(reception: httpx.AsyncClient):
    r = await reception.put(
        f"/capacity/{DAY}", headers=MANAGER, json={"bays": 2, "technician_hours": "5"}
    )
    assert r.status_code == 200, r.text
    vehicles = await _vehicles(reception, "", 9)
    answers = await _book_at_once([(reception, "")], vehicles, "1.5")
    _check_no_overbooking(answers, fit=3)  # 3 × 1.5 = 4.5 of 5 hours
    capacity = (await reception.get(f"/capacity/{DAY}", headers=ADVISOR)).json()
    assert capacity["booked_hours"] == "4.50" and capacity["free_hours"] == "0.50"


@pytest.mark.asyncio
@pytest.mark.store
async def test_rescheduling_into_a_full_day_at_the_same_moment_never_overbooks(
    reception: httpx.AsyncClient,
):
    target = DAY + timedelta(days=2)
    await reception.put(
        f"/capacity/{target}", headers=MANAGER, json={"bays": 1, "technician_hours": "2"}
    )
    vehicles = await _vehicles(reception, "", 4)
    moved: list[str] = []
    for vehicle in vehicles:
        r = await reception.post(
            "/appointments",
            headers=ADVISOR,
            json={"vehicle_id": vehicle, "starts_at": AT.isoformat(), "planned_hours": "1"},
        )
        assert r.status_code == 201, r.text
        moved.append(r.json()["id"])

    async def reschedule(appointment_id: str) -> httpx.Response:
        url = f"/appointments/{appointment_id}"
        etag = (await reception.get(url, headers=ADVISOR)).headers["ETag"]
        return await reception.post(
            f"{url}/reschedule",
            headers={**ADVISOR, "If-Match": etag},
            json={"starts_at": (AT + timedelta(days=2)).isoformat()},
        )

    answers = await asyncio.gather(*(reschedule(a) for a in moved))
    assert sorted(r.status_code for r in answers) == [200, 200, 409, 409], [r.text for r in answers]
    listed = await reception.get("/appointments", headers=ADVISOR, params={"day": str(target)})
    assert sum(float(a["planned_hours"]) for a in listed.json()["items"]) == 2.0
    # a refused reschedule leaves the appointment where it was
    stayed = await reception.get("/appointments", headers=ADVISOR, params={"day": str(DAY)})
    assert [a["status"] for a in stayed.json()["items"]] == ["booked", "booked"]


@pytest.fixture
def shared_database(tmp_path: Path) -> Iterator[str]:
    if backend() == "postgres":
        url = asyncio.run(create_pg_database("ws_rc_capacity"))
        yield url
        asyncio.run(drop_pg_database(url))
    else:
        yield f"sqlite+aiosqlite:///{tmp_path / 'reception.db'}"


@pytest.mark.asyncio
@pytest.mark.e2e
async def test_two_reception_processes_booking_the_last_hours_at_once_never_overbook(
    shared_database: str, nats_server: NatsServer, tmp_path: Path
):
    """Two tablets on two replicas of reception: the bookings race on the database."""
    env = {
        "RECEPTION_DATABASE_URL": shared_database,
        "RECEPTION_NATS_URL": nats_server.url,
    }
    first = ServiceProcess("reception", env, tmp_path / "logs-1").start()
    second = ServiceProcess(
        "reception", {**env, "RECEPTION_AUTO_MIGRATE": "false"}, tmp_path / "logs-2"
    )
    try:
        second.start()
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.put(
                f"{first.url}/capacity/{DAY}",
                headers=MANAGER,
                json={"bays": 2, "technician_hours": "4"},
            )
            assert r.status_code == 200, r.text
            vehicles = await _vehicles(client, first.url, 10)
            answers = await _book_at_once(
                [(client, first.url), (client, second.url)], vehicles, "1"
            )
            _check_no_overbooking(answers, fit=4)
            capacity = (await client.get(f"{second.url}/capacity/{DAY}", headers=ADVISOR)).json()
            assert capacity["booked_hours"] == "4.00"
    finally:
        second.stop()
        first.stop()


@contextlib.asynccontextmanager
async def _appointment_events(nats_url: str) -> AsyncIterator[list[dict[str, Any]]]:
    connection = await nats.connect(nats_url)
    seen: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        seen.append(orjson.loads(msg.data))

    await connection.subscribe("reception.appointment.>", cb=collect)
    try:
        yield seen
    finally:
        await connection.drain()


@pytest.mark.asyncio
@pytest.mark.store
async def test_bookings_reschedules_and_their_ends_are_published(
    reception: httpx.AsyncClient, nats_server: NatsServer
):
    vehicles = await _vehicles(reception, "", 5)
    async with _appointment_events(nats_server.url) as seen:
        ids = []
        for vehicle in vehicles[:4]:
            r = await reception.post(
                "/appointments",
                headers=ADVISOR,
                json={"vehicle_id": vehicle, "starts_at": AT.isoformat(), "planned_hours": "1"},
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])

        async def etag(appointment_id: str) -> str:
            r = await reception.get(f"/appointments/{appointment_id}", headers=ADVISOR)
            return r.headers["ETag"]

        later = AT + timedelta(days=1, hours=1)
        r = await reception.post(
            f"/appointments/{ids[0]}/reschedule",
            headers={**ADVISOR, "If-Match": await etag(ids[0])},
            json={"starts_at": later.isoformat(), "planned_hours": "2.5"},
        )
        assert r.status_code == 200, r.text
        for appointment_id, action in zip(ids[1:3], ("no-show", "cancel"), strict=True):
            r = await reception.post(
                f"/appointments/{appointment_id}/{action}",
                headers={**ADVISOR, "If-Match": await etag(appointment_id)},
            )
            assert r.status_code == 200, r.text
        r = await reception.post(
            "/intakes",
            headers=ADVISOR,
            json={"vehicle_id": vehicles[3], "odometer_km": 100, "appointment_id": ids[3]},
        )
        assert r.status_code == 201, r.text
        # a refused move publishes nothing
        assert_problem(
            await reception.post(
                f"/appointments/{ids[1]}/arrived",
                headers={**ADVISOR, "If-Match": await etag(ids[1])},
            ),
            409,
        )

        # the relay publishes in commit order: once this booking's event is here, every
        # event of the moves before it is too
        sentinel = await reception.post(
            "/appointments",
            headers=ADVISOR,
            json={"vehicle_id": vehicles[4], "starts_at": AT.isoformat(), "planned_hours": "1"},
        )
        assert sentinel.status_code == 201

        async def sentinel_arrived() -> bool:
            return any(e["data"]["appointment_id"] == sentinel.json()["id"] for e in seen)

        await eventually(sentinel_arrived, what="the last booking's event")

    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in seen:
        by_type.setdefault(event["type"], []).append(event)
    booked = by_type["reception.appointment.booked.v1"]
    closed = by_type["reception.appointment.closed.v1"]
    assert len(booked) == 6 and len(closed) == 3, seen
    rescheduled = [e["data"] for e in booked if e["data"]["appointment_id"] == ids[0]]
    assert len(rescheduled) == 2
    latest = datetime.fromisoformat(rescheduled[-1]["scheduled_for"])
    assert latest == later and rescheduled[-1]["planned_hours"] == "2.5"
    outcomes = {e["data"]["appointment_id"]: e["data"]["outcome"] for e in closed}
    assert outcomes == {ids[1]: "no_show", ids[2]: "cancelled", ids[3]: "arrived"}
    assert all(e["subject"] == e["data"]["appointment_id"] for e in seen)
    assert {e["data"]["vehicle_id"] for e in closed} == set(vehicles[1:4])
    assert uuid.UUID(closed[0]["id"])


@pytest.mark.asyncio
@pytest.mark.store
async def test_bays_cap_the_day_and_an_arrived_car_keeps_its_hours(reception: httpx.AsyncClient):
    day = DAY + timedelta(days=7)
    at = AT + timedelta(days=7)
    r = await reception.put(
        f"/capacity/{day}", headers=MANAGER, json={"bays": 1, "technician_hours": "20"}
    )
    assert r.json()["bookable_hours"] == "9.00" and r.json()["free_hours"] == "9.00"
    vehicles = await _vehicles(reception, "", 3)
    ids = []
    for vehicle, hours in zip(vehicles, ("4", "4", "1.5"), strict=True):
        r = await reception.post(
            "/appointments",
            headers=ADVISOR,
            json={"vehicle_id": vehicle, "starts_at": at.isoformat(), "planned_hours": hours},
        )
        ids.append(r.json().get("id"))
        assert r.status_code == (201 if len(ids) < 3 else 409), r.text
    r = await reception.post(
        "/intakes",
        headers=ADVISOR,
        json={"vehicle_id": vehicles[0], "odometer_km": 10, "appointment_id": ids[0]},
    )
    assert r.status_code == 201, r.text
    capacity = (await reception.get(f"/capacity/{day}", headers=ADVISOR)).json()
    assert capacity["booked_hours"] == "8.00" and capacity["free_hours"] == "1.00"
    url = f"/appointments/{ids[1]}"
    etag = (await reception.get(url, headers=ADVISOR)).headers["ETag"]
    r = await reception.post(f"{url}/no-show", headers={**ADVISOR, "If-Match": etag})
    assert r.status_code == 200, r.text
    capacity = (await reception.get(f"/capacity/{day}", headers=ADVISOR)).json()
    assert capacity["booked_hours"] == "4.00" and capacity["free_hours"] == "5.00"
