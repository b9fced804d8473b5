"""Appointments against daily capacity: booking, over-full days, reschedule, arrival,
no-show, cancel, the day list and the show rate."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from services.reception.appointments import TRANSITIONS
from services.reception.models import AppointmentStatus
from tests.flow import open_days_ahead, register
from tests.harness import NatsServer, auth
from tests.test_bad_input import _client, assert_problem

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

ADVISOR = auth("advisor")
# 10:00 in Shanghai, a few days ahead: the same local day whatever the test's hour
DAY = open_days_ahead(3)
AT = datetime(DAY.year, DAY.month, DAY.day, 2, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def reception(database_url: str, nats_server: NatsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with _client("reception", database_url, nats_server) as client:
        yield client


async def test_only_a_booked_appointment_moves():
    for status in AppointmentStatus:
        allowed = TRANSITIONS[status]
        assert allowed == (set(AppointmentStatus) if status == "booked" else set())


async def test_bookings_fill_a_day_and_the_next_free_days_are_named(
    reception: httpx.AsyncClient,
):
    _, vehicle = await register(reception, "")
    manager = auth("manager")
    r = await reception.put(
        f"/capacity/{DAY}", headers=manager, json={"bays": 2, "technician_hours": "3"}
    )
    assert r.status_code == 200, r.text
    assert_problem(
        await reception.put(
            f"/capacity/{DAY}", headers=ADVISOR, json={"bays": 2, "technician_hours": "3"}
        ),
        403,
    )
    booking = {"vehicle_id": vehicle["id"], "starts_at": AT.isoformat(), "planned_hours": "2"}
    first = await reception.post("/appointments", headers=ADVISOR, json=booking)
    assert first.status_code == 201, first.text
    assert first.json()["day"] == DAY.isoformat()
    full = await reception.post("/appointments", headers=ADVISOR, json=booking)
    body = assert_problem(full, 409)
    assert body["type"].endswith("over-booked")
    assert body["next_free_days"][0] == (DAY + timedelta(days=1)).isoformat()
    capacity = await reception.get(f"/capacity/{DAY}", headers=auth("foreman"))
    assert capacity.json()["free_hours"] == "1.00"

    # reschedule to the next day frees this one; a stale tablet gets 412
    url = f"/appointments/{first.json()['id']}"
    etag = (await reception.get(url, headers=ADVISOR)).headers["ETag"]
    moved = await reception.post(
        f"{url}/reschedule",
        headers={**ADVISOR, "If-Match": etag},
        json={"starts_at": (AT + timedelta(days=1)).isoformat()},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["day"] == (DAY + timedelta(days=1)).isoformat()
    assert_problem(
        await reception.post(f"{url}/arrived", headers={**ADVISOR, "If-Match": etag}), 412
    )
    assert_problem(await reception.post(f"{url}/arrived", headers=ADVISOR), 428)
    again = await reception.post("/appointments", headers=ADVISOR, json=booking)
    assert again.status_code == 201

    arrived = await reception.post(
        f"{url}/arrived", headers={**ADVISOR, "If-Match": moved.headers["ETag"]}
    )
    assert arrived.status_code == 200 and arrived.json()["status"] == "arrived"
    assert_problem(
        await reception.post(
            f"{url}/cancel", headers={**ADVISOR, "If-Match": arrived.headers["ETag"]}
        ),
        409,
    )
    other = f"/appointments/{again.json()['id']}"
    no_show = await reception.post(
        f"{other}/no-show",
        headers={
            **ADVISOR,
            "If-Match": (await reception.get(other, headers=ADVISOR)).headers["ETag"],
        },
    )
    assert no_show.status_code == 200

    listed = await reception.get("/appointments", headers=ADVISOR, params={"day": str(DAY)})
    assert [a["status"] for a in listed.json()["items"]] == ["no_show"]
    assert listed.json()["next_cursor"] is None
    rate = await reception.get(
        "/appointments/show-rate",
        headers=auth("manager"),
        params={"start_on": str(DAY), "end_on": str(DAY + timedelta(days=1))},
    )
    assert rate.json()["show_rate"] == "0.5000"


async def test_bookings_refuse_bad_input(reception: httpx.AsyncClient):
    _, vehicle = await register(reception, "")
    good = {"vehicle_id": vehicle["id"], "starts_at": AT.isoformat(), "planned_hours": "1"}
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    cases = [
        ({**good, "planned_hours": "0"}, "planned_hours"),
        ({**good, "planned_hours": "x"}, "planned_hours"),
        ({**good, "starts_at": past}, "starts_at"),
        ({**good, "vehicle_id": "6f1c2d9e-8a4b-4c1e-9f7d-2b3a4c5d6e7f"}, "vehicle_id"),
        ({**good, "extra": 1}, "extra"),
    ]
    for body, field in cases:
        assert_problem(
            await reception.post("/appointments", headers=ADVISOR, json=body), 422, field
        )
    assert_problem(await reception.post("/appointments", headers=auth("cashier"), json=good), 403)
    assert_problem(
        await reception.get("/appointments", headers=ADVISOR, params={"day": "tomorrow"}),
        422,
        "day",
    )


async def test_an_intake_from_an_appointment_marks_it_arrived(reception: httpx.AsyncClient):
    _, vehicle = await register(reception, "")
    _, other = await register(reception, "")
    booking = {"vehicle_id": vehicle["id"], "starts_at": AT.isoformat(), "planned_hours": "1"}
    appointment = (await reception.post("/appointments", headers=ADVISOR, json=booking)).json()
    intake = {"vehicle_id": vehicle["id"], "odometer_km": 5000, "appointment_id": appointment["id"]}
    wrong = await reception.post(
        "/intakes", headers=ADVISOR, json={**intake, "vehicle_id": other["id"]}
    )
    assert_problem(wrong, 422, "appointment_id")
    r = await reception.post("/intakes", headers=ADVISOR, json=intake)
    assert r.status_code == 201, r.text
    now = await reception.get(f"/appointments/{appointment['id']}", headers=ADVISOR)
    assert now.json()["status"] == "arrived"
    assert_problem(
        await reception.post("/intakes", headers=ADVISOR, json={**intake, "odometer_km": 5001}), 409
    )


async def test_a_booking_takes_the_hours_of_its_planned_jobs(reception: httpx.AsyncClient):
    _, vehicle = await register(reception, "")
    for op_code, hours in (("MNT-10K", "0.8"), ("BRK-PAD-F", "1.2")):
        r = await reception.post(
            "/canned-jobs",
            headers=ADVISOR,
            json={"op_code": op_code, "flat_rate_hours": hours, "labour_rate": "380"},
        )
        assert r.status_code == 201, r.text
    day = DAY + timedelta(days=5)
    at = AT + timedelta(days=5)
    booking = {
        "vehicle_id": vehicle["id"],
        "starts_at": at.isoformat(),
        "planned_jobs": ["MNT-10K", "BRK-PAD-F"],
        "concerns": ["刹车有异响"],
    }
    r = await reception.post("/appointments", headers=ADVISOR, json=booking)
    assert r.status_code == 201, r.text
    assert r.json()["planned_hours"] == "2.00"
    assert r.json()["planned_jobs"] == ["MNT-10K", "BRK-PAD-F"]
    capacity = await reception.get(f"/capacity/{day}", headers=ADVISOR)
    assert capacity.json()["booked_hours"] == "2.00"
    # the advisor's own estimate wins over the jobs' flat rate
    r = await reception.post(
        "/appointments", headers=ADVISOR, json={**booking, "planned_hours": "3"}
    )
    assert r.json()["planned_hours"] == "3.00"
    for body, field in [
        ({**booking, "planned_jobs": ["MNT-10K", "NOPE"]}, "planned_jobs.1"),
        ({**booking, "planned_jobs": ["MNT-10K", "MNT-10K"]}, "planned_jobs"),
        ({**booking, "planned_jobs": []}, "planned_hours"),
    ]:
        problem = assert_problem(
            await reception.post("/appointments", headers=ADVISOR, json=body), 422
        )
        assert field in problem["detail"], (field, problem)
    capacity = await reception.get(f"/capacity/{day}", headers=ADVISOR)
    assert capacity.json()["booked_hours"] == "5.00"

    # the intake opened from the booking starts with what the customer said when booking
    listed = await reception.get("/appointments", headers=ADVISOR, params={"day": str(day)})
    first = listed.json()["items"]
    r = await reception.post(
        "/intakes",
        headers=ADVISOR,
        json={"vehicle_id": vehicle["id"], "odometer_km": 100, "appointment_id": first[0]["id"]},
    )
    assert r.status_code == 201, r.text
    assert r.json()["concerns"] == ["刹车有异响"]
