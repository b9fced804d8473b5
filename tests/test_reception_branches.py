"""The branch directory and staff roster (reception's): created and replaced with
`If-Match`, bad input named and nothing written, another branch not there, who works on a
day, and both events as they reach NATS."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from sqlmodel import func, select

from services.reception.branch_models import Branch, StaffMember
from services.reception.models import OutboxEvent
from tests.flow import open_days_ahead, open_intake, register
from tests.harness import NatsServer, auth, eventually
from tests.test_bad_input import _client, assert_problem
from tests.test_reception_customers import _events

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

MANAGER, ADMIN, ADVISOR, TECH = auth("manager"), auth("admin"), auth("advisor"), auth("technician")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
BRANCH: dict[str, Any] = {
    "name": "浦东服务中心",
    "address": "上海市浦东新区张江路 100 号",
    "time_zone": "Asia/Shanghai",
    "business_hours": {d: {"start": "08:30", "end": "18:00"} for d in WEEKDAYS[:6]},
    "tax_rate": "0.13",
    "daily_bays": 6,
    "daily_technician_hours": "48",
    "follow_up_day": 3,
    "targets": {"on_time_delivery": "0.95", "major_complaint_rate": "0.01"},
}
# A Monday, so that weekdays are known; the tests never ask what today is.
MONDAY = date(2026, 12, 7)


def shift(*days: str, start: str = "08:30", end: str = "17:30") -> dict:
    return {d: {"start": start, "end": end} for d in days}


@pytest_asyncio.fixture
async def reception(database_url: str, nats_server: NatsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with _client("reception", database_url, nats_server) as client:
        yield client


async def _count(client: httpx.AsyncClient, model: type) -> int:
    db = client._transport.app.state.runtime.db  # type: ignore[attr-defined]
    async with db.reader() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_a_branch_is_created_and_replaced_with_if_match(reception: httpx.AsyncClient):
    r = await reception.put("/branches/BR01", headers=MANAGER, json=BRANCH)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["version"] == 1 and r.headers["ETag"]
    assert created["business_hours"]["mon"] == {"start": "08:30", "end": "18:00"}
    assert "sun" not in created["business_hours"]
    assert created["targets"] == {"on_time_delivery": "0.95", "major_complaint_rate": "0.01"}

    r = await reception.get("/branches/BR01", headers=TECH)  # every member of staff reads it
    assert r.status_code == 200 and r.json()["name"] == "浦东服务中心"
    etag = r.headers["ETag"]

    edit = {**BRANCH, "time_zone": "Asia/Urumqi", "follow_up_day": 5}
    assert_problem(await reception.put("/branches/BR01", headers=MANAGER, json=edit), 428)
    r = await reception.put("/branches/BR01", headers={**MANAGER, "If-Match": etag}, json=edit)
    assert r.status_code == 200, r.text
    assert (r.json()["time_zone"], r.json()["follow_up_day"], r.json()["version"]) == (
        "Asia/Urumqi",
        5,
        2,
    )
    stale = await reception.put(
        "/branches/BR01", headers={**MANAGER, "If-Match": etag}, json=BRANCH
    )
    assert_problem(stale, 412)
    assert (await reception.get("/branches/BR01", headers=ADVISOR)).json()["time_zone"] == (
        "Asia/Urumqi"
    )

    r = await reception.get("/branches", headers=ADVISOR)
    assert [b["code"] for b in r.json()["items"]] == ["BR01"] and r.json()["next_cursor"] is None


async def test_bad_branches_and_members_name_the_field_and_write_nothing(
    reception: httpx.AsyncClient,
):
    bad = [
        ({**BRANCH, "time_zone": "Mars/Olympus"}, "time_zone"),
        ({**BRANCH, "tax_rate": "1.5"}, "tax_rate"),
        ({**BRANCH, "follow_up_day": 16}, "follow_up_day"),
        ({**BRANCH, "business_hours": {"mon": {"start": "18:00", "end": "08:00"}}}, "mon"),
        ({**BRANCH, "business_hours": {"monday": BRANCH["business_hours"]["mon"]}},
         "business_hours"),
        ({k: v for k, v in BRANCH.items() if k != "name"}, "name"),
    ]  # fmt: skip
    for body, field in bad:
        r = await reception.put("/branches/BR01", headers=MANAGER, json=body)
        assert r.status_code == 422, (field, r.text)
        assert field in r.text, (field, r.text)
    assert await _count(reception, Branch) == 0
    assert await _count(reception, OutboxEvent) == 0

    # A member needs the branch in the directory first.
    member = {"name": "李师傅", "roles": ["technician"], "working_hours": shift("mon")}
    r = await reception.put("/branches/BR01/staff/tech-li", headers=MANAGER, json=member)
    assert_problem(r, 404)
    assert (await reception.put("/branches/BR01", headers=MANAGER, json=BRANCH)).status_code == 201
    bad_members = [
        ({**member, "roles": ["screen"]}, "roles"),
        ({**member, "roles": []}, "roles"),
        ({**member, "working_hours": {"mon": {"start": "9", "end": "17:00"}}}, "mon"),
        ({**member, "days_off": ["2026-02-30"]}, "days_off"),
    ]
    for body, field in bad_members:
        r = await reception.put("/branches/BR01/staff/tech-li", headers=MANAGER, json=body)
        assert r.status_code == 422, (field, r.text)
        assert field in r.text, (field, r.text)
    assert await _count(reception, StaffMember) == 0
    assert await _count(reception, OutboxEvent) == 1  # the branch's own


async def test_another_branch_is_not_there_but_for_the_groups_admin(
    reception: httpx.AsyncClient,
):
    other = auth("manager", branch="BR02")
    assert (await reception.put("/branches/BR01", headers=MANAGER, json=BRANCH)).status_code == 201
    assert_problem(await reception.get("/branches/BR01", headers=other), 404)
    assert_problem(await reception.put("/branches/BR01", headers=other, json=BRANCH), 404)
    assert_problem(await reception.get("/branches/BR01/staff", headers=other), 404)
    assert (await reception.get("/branches", headers=other)).json()["items"] == []
    assert_problem(await reception.put("/branches/BR02", headers=ADVISOR, json=BRANCH), 403)

    admin = auth("admin", branch="HQ")
    r = await reception.put("/branches/BR02", headers=admin, json={**BRANCH, "name": "虹桥"})
    assert r.status_code == 201, r.text
    r = await reception.get("/branches", headers=admin)
    assert [b["code"] for b in r.json()["items"]] == ["BR01", "BR02"]


async def test_the_roster_and_who_works_on_a_day(reception: httpx.AsyncClient):
    assert (await reception.put("/branches/BR01", headers=MANAGER, json=BRANCH)).status_code == 201
    week = ("mon", "tue", "wed", "thu", "fri")
    people: dict[str, dict[str, Any]] = {
        "tech-li": {"name": "李师傅", "roles": ["technician"], "skills": ["brakes"], "bay": "B3",
                    "working_hours": shift(*week, start="08:30")},
        "tech-wang": {"name": "王师傅", "roles": ["technician", "qc"], "bay": "B4",
                      "working_hours": shift("mon", "sat", start="07:30"),
                      "days_off": [(MONDAY + timedelta(days=7)).isoformat()]},
        "adv-zhao": {"name": "赵顾问", "roles": ["advisor"], "working_hours": shift(*week)},
        "tech-sun": {"name": "孙师傅", "roles": ["technician"], "working_hours": shift(*week),
                     "active": False},
    }  # fmt: skip
    for staff_id, body in people.items():
        r = await reception.put(f"/branches/BR01/staff/{staff_id}", headers=MANAGER, json=body)
        assert r.status_code == 201, r.text

    async def working(on: date, role: str | None = None) -> list[tuple[str, str]]:
        params = {"on": on.isoformat(), **({"role": role} if role else {})}
        r = await reception.get("/branches/BR01/working", headers=TECH, params=params)
        assert r.status_code == 200, r.text
        return [(m["staff_id"], m["start"]) for m in r.json()["items"]]

    assert await working(MONDAY) == [("tech-wang", "07:30"), ("adv-zhao", "08:30"),
                                     ("tech-li", "08:30")]  # fmt: skip
    assert await working(MONDAY, "technician") == [("tech-wang", "07:30"), ("tech-li", "08:30")]
    assert await working(MONDAY + timedelta(days=7), "technician") == [("tech-li", "08:30")]
    assert await working(MONDAY + timedelta(days=5)) == [("tech-wang", "07:30")]  # Saturday
    assert await working(MONDAY + timedelta(days=6)) == []  # Sunday

    # The roster, paged by id; left staff are on it, inactive.
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await reception.get("/branches/BR01/staff", headers=ADVISOR, params=params)).json()
        seen += [(m["staff_id"], m["active"]) for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [("adv-zhao", True), ("tech-li", True), ("tech-sun", False),
                    ("tech-wang", True)]  # fmt: skip
    r = await reception.get("/branches/BR01/staff", headers=ADVISOR, params={"role": "qc"})
    assert [m["staff_id"] for m in r.json()["items"]] == ["tech-wang"]

    # Replacing a member needs the ETag.
    r = await reception.get("/branches/BR01/staff/tech-li", headers=ADVISOR)
    etag = r.headers["ETag"]
    off = {**people["tech-li"], "days_off": [MONDAY.isoformat()]}
    assert_problem(
        await reception.put("/branches/BR01/staff/tech-li", headers=MANAGER, json=off), 428
    )
    r = await reception.put(
        "/branches/BR01/staff/tech-li", headers={**MANAGER, "If-Match": etag}, json=off
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    assert await working(MONDAY, "technician") == [("tech-wang", "07:30")]
    assert_problem(
        await reception.put(
            "/branches/BR01/staff/tech-li", headers={**MANAGER, "If-Match": etag}, json=off
        ),
        412,
    )


async def test_branch_and_roster_changes_reach_nats(
    reception: httpx.AsyncClient, nats_server: NatsServer
):
    async with (
        _events(nats_server.url, "reception.branch.changed.v1") as branches,
        _events(nats_server.url, "reception.staff_member.changed.v1") as members,
    ):
        r = await reception.put("/branches/BR01", headers=MANAGER, json=BRANCH)
        etag = r.headers["ETag"]
        r = await reception.put(
            "/branches/BR01", headers={**MANAGER, "If-Match": etag},
            json={**BRANCH, "time_zone": "Asia/Urumqi"},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        body = {"name": "李师傅", "roles": ["technician"], "skills": ["ev-high-voltage"],
                "bay": "B3", "working_hours": shift("mon", "tue"),
                "days_off": ["2026-12-24"]}  # fmt: skip
        r = await reception.put("/branches/BR01/staff/tech-li", headers=MANAGER, json=body)
        assert r.status_code == 201, r.text

        async def arrived() -> bool:
            return len(branches) == 2 and len(members) == 1

        await eventually(arrived, what="branch and roster events on NATS")
    first, second = (e for e in sorted(branches, key=lambda e: e["data"]["version"]))
    assert (first["type"], first["source"], first["subject"]) == (
        "reception.branch.changed.v1", "reception", "BR01",
    )  # fmt: skip
    assert (first["data"]["time_zone"], second["data"]["time_zone"]) == (
        "Asia/Shanghai", "Asia/Urumqi",
    )  # fmt: skip
    assert second["data"]["version"] == 2 and second["data"]["tax_rate"] == "0.13"
    assert second["data"]["business_hours"]["sat"] == {"start": "08:30", "end": "18:00"}
    event = members[0]
    assert event["subject"] == "BR01/tech-li"
    data = event["data"]
    assert (data["staff_id"], data["roles"], data["bay"], data["days_off"], data["active"]) == (
        "tech-li", ["technician"], "B3", ["2026-12-24"], True,
    )  # fmt: skip
    assert data["working_hours"] == shift("mon", "tue") and data["version"] == 1


async def test_reception_books_and_prices_by_its_branch_record(reception: httpx.AsyncClient):
    la = ZoneInfo("America/Los_Angeles")
    body = {**BRANCH, "time_zone": "America/Los_Angeles", "tax_rate": "0.06",
            "daily_bays": 2, "daily_technician_hours": "12"}  # fmt: skip
    assert (await reception.put("/branches/BR01", headers=MANAGER, json=body)).status_code == 201
    _, vehicle = await register(reception, "")
    # 18:00 UTC three days on: the morning in Los Angeles, already the next day in Shanghai.
    starts_at = datetime.combine(open_days_ahead(3), time(18), tzinfo=UTC)
    day = starts_at.astimezone(la).date()
    assert day != starts_at.astimezone(ZoneInfo("Asia/Shanghai")).date()
    r = await reception.post(
        "/appointments",
        headers={**ADVISOR, "Idempotency-Key": "b-1"},
        json={"vehicle_id": vehicle["id"], "starts_at": starts_at.isoformat(),
              "planned_hours": "2"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["day"] == day.isoformat()
    r = await reception.get(f"/capacity/{day.isoformat()}", headers=ADVISOR)
    capacity = r.json()
    assert (capacity["bays"], Decimal(capacity["technician_hours"])) == (2, Decimal("12"))
    assert Decimal(capacity["free_hours"]) == Decimal("10")

    intake = await open_intake(reception, "", vehicle["id"])
    r = await reception.post(
        "/estimates",
        headers={**ADVISOR, "Idempotency-Key": "b-2"},
        json={"intake_id": intake["id"],
              "promised_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
              "lines": [{"kind": "labour", "op_code": "BRK-PAD-F", "flat_rate_hours": "1",
                         "labour_rate": "100"}]},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    assert Decimal(r.json()["tax_rate"]) == Decimal("0.06")
    assert Decimal(str(r.json()["totals"]["tax"])) == Decimal("6.00")
