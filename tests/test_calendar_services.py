"""The branch calendar where the services count days and hours: reception's appointment
days, workorders' promise projection, followup's complaint deadlines. The 2026 Spring
Festival and National Day weeks with their make-up working days, 2027's with the notice
entered in the settings, and a branch's own closing day; each test sets its clock."""

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine

from services.followup import timers
from services.followup.config import Settings as FollowupSettings
from services.followup.main import create_app as followup_app
from services.reception.config import Settings as ReceptionSettings
from services.reception.main import create_app as reception_app
from services.workorders import promise
from services.workorders.config import Settings as WorkordersSettings
from services.workorders.main import create_app as workorders_app
from services.workorders.promise import PlannedJob, calendars_of, project
from shared.calendar import BranchCalendar
from shared.db import Database
from tests.flow import register
from tests.harness import NatsServer, auth, eventually
from tests.test_bad_input import assert_problem
from tests.test_followup_timers import Clock
from tests.test_workorders_api import Workorders, approved, labour

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def clock() -> Iterator[Any]:
    """Moves this process's clock to an instant (ticking on from there) for one test."""
    travels: list[Any] = []

    def at(instant: datetime) -> None:
        travel = time_machine.travel(instant, tick=True)
        travel.start()
        travels.append(travel)

    yield at
    for travel in reversed(travels):
        travel.stop()


# --- reception: the days a branch takes appointments -------------------------------------


@asynccontextmanager
async def reception(
    database_url: str, nats_server: NatsServer, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = reception_app(
        ReceptionSettings(database_url=database_url, nats_url=nats_server.url, **settings)
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield client


async def book(client: httpx.AsyncClient, vehicle: str, at: datetime, hours: str = "1"):
    return await client.post(
        "/appointments",
        headers=auth("advisor"),
        json={"vehicle_id": vehicle, "starts_at": at.isoformat(), "planned_hours": hours},
    )


async def day_list(client: httpx.AsyncClient, day: date) -> list[dict[str, Any]]:
    r = await client.get("/appointments", headers=auth("advisor"), params={"day": str(day)})
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.mark.asyncio
@pytest.mark.store
async def test_spring_festival_2026_is_refused_and_its_worked_saturdays_are_bookable(
    database_url: str, nats_server: NatsServer, clock
) -> None:
    clock(local(2026, 2, 10, 9, 0))
    # BR01 also closes on the Tuesday after the festival (stocktaking).
    async with reception(
        database_url, nats_server, calendar_closing_days={"BR01": ["2026-02-24"]}
    ) as client:
        _, vehicle = await register(client, "")
        for day in (date(2026, 2, 17), date(2026, 2, 21), date(2026, 2, 23), date(2026, 2, 24)):
            r = await book(client, vehicle["id"], local(day.year, day.month, day.day, 10))
            body = assert_problem(r, 422, "starts_at")
            assert day.isoformat() in body["detail"]
            # The next open days: after the break, past the branch's own closing day.
            assert body["next_free_days"] == ["2026-02-25", "2026-02-26", "2026-02-27"]
            assert [s["day"] for s in body["next_free_slots"]] == body["next_free_days"]
            assert await day_list(client, day) == []  # nothing written
        # Saturday 14 and Saturday 28 February are worked (调休): bookable.
        for worked in (14, 28):
            r = await book(client, vehicle["id"], local(2026, 2, worked, 10))
            assert r.status_code == 201, r.text
            assert r.json()["day"] == f"2026-02-{worked}"
        # An ordinary weekend takes cars as it always does.
        assert (await book(client, vehicle["id"], local(2026, 3, 8, 10))).status_code == 201

        r = await client.get("/capacity/2026-02-18", headers=auth("foreman"))
        assert r.json()["open"] is False and r.json()["free_hours"] == "0.00"
        assert (await client.get("/capacity/2026-02-14", headers=auth("foreman"))).json()["open"]

        # A full Friday before the festival offers the worked Saturday, then the days
        # after the break and the closing day.
        r = await client.put(
            "/capacity/2026-02-13",
            headers=auth("manager"),
            json={"bays": 1, "technician_hours": "1"},
        )
        assert r.status_code == 200, r.text
        body = assert_problem(await book(client, vehicle["id"], local(2026, 2, 13, 10), "2"), 409)
        assert body["next_free_days"] == ["2026-02-14", "2026-02-25", "2026-02-26"]


@pytest.mark.asyncio
@pytest.mark.store
async def test_national_day_2026_a_reschedule_into_the_week_is_refused(
    database_url: str, nats_server: NatsServer, clock
) -> None:
    clock(local(2026, 9, 14, 9, 0))
    async with reception(database_url, nats_server) as client:
        _, vehicle = await register(client, "")
        # Sunday 20 September is worked in exchange for a day of the week.
        r = await book(client, vehicle["id"], local(2026, 9, 20, 10))
        assert r.status_code == 201, r.text
        url = f"/appointments/{r.json()['id']}"
        r = await client.post(
            f"{url}/reschedule",
            headers={**auth("advisor"), "If-Match": r.headers["ETag"]},
            json={"starts_at": local(2026, 10, 3, 10).isoformat()},
        )
        body = assert_problem(r, 422, "starts_at")
        # Saturday 10 October is worked too.
        assert body["next_free_days"] == ["2026-10-08", "2026-10-09", "2026-10-10"]
        stayed = await client.get(url, headers=auth("advisor"))
        assert stayed.json()["day"] == "2026-09-20" and stayed.json()["status"] == "booked"
        r = await client.post(
            f"{url}/reschedule",
            headers={**auth("advisor"), "If-Match": stayed.headers["ETag"]},
            json={"starts_at": local(2026, 10, 10, 9, 30).isoformat()},
        )
        assert r.status_code == 200 and r.json()["day"] == "2026-10-10", r.text


@pytest.mark.asyncio
@pytest.mark.store
async def test_2027_spring_festival_from_the_notice_in_the_settings(
    database_url: str, nats_server: NatsServer, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Days standing for what 2027's notice will say (the pinned `holidays` release has
    # only the statutory days, 5-10 February): two more weekdays off, a Saturday worked.
    monkeypatch.setenv("RECEPTION_CALENDAR_HOLIDAYS", '{"CN": ["2027-02-11", "2027-02-12"]}')
    monkeypatch.setenv("RECEPTION_CALENDAR_WORKDAYS", '{"CN": ["2027-02-20"]}')
    clock(local(2027, 1, 25, 9, 0))
    async with reception(database_url, nats_server) as client:
        _, vehicle = await register(client, "")
        body = assert_problem(await book(client, vehicle["id"], local(2027, 2, 11, 10)), 422)
        # The weekend after the notice's last day off is part of the break.
        assert body["next_free_days"] == ["2027-02-15", "2027-02-16", "2027-02-17"]
        assert (await book(client, vehicle["id"], local(2027, 2, 20, 10))).status_code == 201
        assert (await book(client, vehicle["id"], local(2027, 2, 4, 10))).status_code == 201


# --- workorders: when an order will be finished --------------------------------------------

H = timedelta(hours=1)
CN = BranchCalendar.of("Asia/Shanghai")
QC_AND_HAND_OVER = timedelta(minutes=30)


def finish_of(
    start: datetime, hours: float, calendar: BranchCalendar = CN, *, tech: str | None = "li"
) -> datetime:
    """One order, one job of `hours` for technician `tech`, projected at `start`."""
    order = uuid.uuid4()
    planned = PlannedJob(
        job_id=uuid.uuid4(),
        order_id=order,
        technician_id=tech,
        remaining=timedelta(hours=hours),
        queued_at=start,
        branch="BR01",
    )
    finish = project([planned], start, QC_AND_HAND_OVER, {"BR01": calendar})[order]
    return finish.astimezone(SHANGHAI)


def test_work_left_at_closing_goes_on_after_national_day_2026() -> None:
    # Wednesday 30 September, 17:00: one hour today, two on Thursday 8 October, then QC.
    assert finish_of(local(2026, 9, 30, 17), 3) == local(2026, 10, 8, 11, 30)
    # Left at closing time exactly: the next working day's morning.
    assert finish_of(local(2026, 9, 30, 18), 1, tech=None) == local(2026, 10, 8, 10, 30)
    # Without the branch's calendar the projection ran through the night.
    order = uuid.uuid4()
    planned = PlannedJob(uuid.uuid4(), order, "li", 3 * H, local(2026, 9, 30, 17))
    straight = project([planned], local(2026, 9, 30, 17), QC_AND_HAND_OVER)[order]
    assert straight == local(2026, 9, 30, 20, 30)


def test_a_queue_across_the_spring_festival_2026_and_its_worked_saturdays() -> None:
    # Friday 13 February at closing: Saturday 14th is worked (调休), the car is done then.
    assert finish_of(local(2026, 2, 13, 18), 2) == local(2026, 2, 14, 11, 30)
    # Saturday 14th, 17:00, with the branch's stocktaking on Tuesday 24th: one hour that
    # evening, the break (15th-23rd), the closing day, one hour on Wednesday 25th.
    stocktaking = BranchCalendar.of("Asia/Shanghai", closing_days=[date(2026, 2, 24)])
    assert finish_of(local(2026, 2, 14, 17), 2, stocktaking) == local(2026, 2, 25, 10, 30)
    # An ordinary weekend is a workshop day: Friday's work goes on on Saturday.
    assert finish_of(local(2026, 3, 6, 17, 30), 1) == local(2026, 3, 7, 10, 0)
    # The branch's own hours: open until 20:00, the same car is done the same evening.
    late = BranchCalendar.of("Asia/Shanghai", 8, 20)
    assert finish_of(local(2026, 2, 13, 17), 2, late) == local(2026, 2, 13, 19, 30)
    # One technician's queue: the second car starts where the first left off.
    first, second = uuid.uuid4(), uuid.uuid4()
    at = local(2026, 2, 13, 16)
    jobs = [
        PlannedJob(uuid.uuid4(), first, "li", 1.5 * H, at, branch="BR01"),
        PlannedJob(uuid.uuid4(), second, "li", 2 * H, at + H, branch="BR01"),
    ]
    finishes = project(jobs, at, QC_AND_HAND_OVER, {"BR01": CN})
    assert finishes[first] == local(2026, 2, 13, 18, 0)  # QC's half hour fits before 18:00
    assert finishes[second] == local(2026, 2, 14, 11, 0)  # 17:30-18:00, then 09:00-10:30


def test_2027_spring_festival_with_the_notice_in_the_settings() -> None:
    # The pinned release has 5-10 February 2027; the notice (as the settings give it here)
    # adds the 11th and 12th, so the weekend after them is in the break too.
    settings = WorkordersSettings(
        calendar_holidays={"CN": [date(2027, 2, 11), date(2027, 2, 12)]},
        calendar_workdays={"CN": [date(2027, 2, 20)]},
    )
    calendar = calendars_of(settings, {"BR01"})["BR01"]
    assert finish_of(local(2027, 2, 4, 17), 2, calendar) == local(2027, 2, 15, 10, 30)
    assert finish_of(local(2027, 2, 4, 17), 2) == local(2027, 2, 11, 10, 30)  # no notice


@pytest.mark.asyncio
@pytest.mark.store
async def test_an_order_promised_for_national_day_is_at_risk_before_the_holiday(
    database_url: str, nats_server: NatsServer
) -> None:
    # 3 h of work at 16:00 on 30 September, promised for 10:00 the next morning (a day the
    # branch is closed): it is finished on 8 October at the earliest.
    now = local(2026, 9, 30, 16).astimezone(UTC)
    settings = WorkordersSettings(
        database_url=database_url,
        nats_url=nats_server.url,
        promise_check_interval=3600,
        promise_recheck_delay=3600,
    )
    app = workorders_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        wo = Workorders(client, app.state.runtime.db, nats_server.url)
        order = await wo.consent(
            approved(
                lines=[labour("ENG-1", "3", "900")],
                promised_at=now + 18 * H,
                approved_at=now - H,
            )
        )
        expected = local(2026, 10, 8, 10, 30)  # 16-18 on the 30th, 09-10:30 on the 8th

        async def projected() -> dict[str, Any] | None:
            # The service's own pass at start projects on the real clock; the one here
            # (and the state it leaves) is the last once it has run after that one.
            async with wo.db.transaction() as session:
                await promise.check_promises(session, settings, now)
            detail = await wo.order(order["id"])
            finish = detail["projected_finish_at"]
            return detail if finish and datetime.fromisoformat(finish) == expected else None

        detail = await eventually(projected, timeout=10, what="the projection past the holiday")
        # Straight through it would be 19:30 on the 30th, in time for the promise.
        assert detail["at_risk_since"] is not None


# --- followup: complaint deadlines in working hours ---------------------------------------


@asynccontextmanager
async def followup(
    database_url: str, nats_server: NatsServer, clock: Clock, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, FollowupSettings, Database]]:
    config = FollowupSettings(
        database_url=database_url,
        nats_url=nats_server.url,
        clock=clock,
        timer_interval=3600,
        branch_managers={"BR01": "manager-zhang"},
        **settings,
    )
    app = followup_app(config)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield client, config, app.state.runtime.db


async def complain(client: httpx.AsyncClient, severity: str) -> dict[str, Any]:
    r = await client.post(
        "/complaints",
        headers=auth("followup_agent"),
        json={"source": "call", "severity": severity, "category": "repair_quality",
              "description": "brakes still squeal"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return {**r.json(), "etag": r.headers["ETag"]}


def due(case: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(case["due_at"]).astimezone(SHANGHAI)


@pytest.mark.asyncio
@pytest.mark.store
async def test_complaints_opened_before_national_day_2026_fall_due_after_it(
    database_url: str, nats_server: NatsServer
) -> None:
    clock = Clock(local(2026, 9, 30, 17).astimezone(UTC))
    async with followup(database_url, nats_server, clock) as (client, settings, db):
        major, minor = await complain(client, "major"), await complain(client, "minor")
        # Major, one working day (9 h): 17-18 on the 30th, 09-17 on Thursday 8 October.
        assert due(major) == local(2026, 10, 8, 17)
        # Minor, three (27 h): 1 h, the 8th, the 9th, and 8 h of Saturday the 10th (调休).
        assert due(minor) == local(2026, 10, 10, 17)
        # A week later on the wall clock, in the middle of the holiday, nothing is overdue.
        clock.now = local(2026, 10, 7, 23, 59).astimezone(UTC)
        manager = auth("manager")
        r = await client.get("/complaints", params={"overdue": "true"}, headers=manager)
        assert r.json()["items"] == []
        assert (await timers.run_timers(db, settings))["escalated_complaints"] == 0
        clock.now = local(2026, 10, 8, 17, 1).astimezone(UTC)
        r = await client.get("/complaints", params={"overdue": "true"}, headers=manager)
        assert [case["id"] for case in r.json()["items"]] == [major["id"]]
        assert (await timers.run_timers(db, settings))["escalated_complaints"] == 1


@pytest.mark.asyncio
@pytest.mark.store
async def test_complaint_deadlines_over_the_spring_festival_2026_and_a_closing_day(
    database_url: str, nats_server: NatsServer
) -> None:
    clock = Clock(local(2026, 2, 13, 16).astimezone(UTC))  # Friday before the festival
    closing = {"BR01": [date(2026, 2, 24)]}
    async with followup(database_url, nats_server, clock, calendar_closing_days=closing) as (
        client,
        _,
        _,
    ):
        # 16-18 on Friday, then Saturday the 14th is a working day (调休).
        assert due(await complain(client, "major")) == local(2026, 2, 14, 16)
        clock.now = local(2026, 2, 14, 12).astimezone(UTC)
        # 6 h on Saturday; the break (15th-23rd) and the branch's closing day (24th) skipped;
        # 9 h on the 25th and 26th; 3 h on the 27th.
        minor = await complain(client, "minor")
        assert due(minor) == local(2026, 2, 27, 12)
        # Made major: counted again from the opening, 6 h on Saturday and 3 h on the 25th.
        r = await client.patch(
            f"/complaints/{minor['id']}",
            headers={**auth("followup_agent"), "If-Match": minor["etag"]},
            json={"severity": "major"},
        )
        assert r.status_code == 200, r.text
        assert due(r.json()) == local(2026, 2, 25, 12)
        # Opened on a Sunday of an ordinary weekend: counted from Monday's opening.
        clock.now = local(2026, 3, 8, 15).astimezone(UTC)
        assert due(await complain(client, "major")) == local(2026, 3, 9, 18)


@pytest.mark.asyncio
@pytest.mark.store
async def test_a_complaint_before_the_2027_spring_festival_with_the_notice_in_the_settings(
    database_url: str, nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(local(2027, 2, 4, 17).astimezone(UTC))
    async with followup(database_url, nats_server, clock) as (client, _, _):
        # Without the notice: the pinned release's days off, 5-10 February.
        assert due(await complain(client, "major")) == local(2027, 2, 11, 17)
    monkeypatch.setenv("FOLLOWUP_CALENDAR_HOLIDAYS", '{"CN": ["2027-02-11", "2027-02-12"]}')
    async with followup(database_url, nats_server, clock) as (client, _, _):
        # With it: the 11th and 12th off, and the weekend after them in the break.
        assert due(await complain(client, "major")) == local(2027, 2, 15, 17)
