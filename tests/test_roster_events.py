"""The branch directory and staff roster reach the other services through NATS: reception
(the owner) in process with workorders, followup and records, one real nats-server.
Dispatch takes only a technician of the branch working the job's day once the branch has a
roster (anyone before), and a branch's time-zone change reaches every service counting its
days."""

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import select

from services.followup.config import Settings as FollowupSettings
from services.followup.main import create_app as followup_app
from services.followup.models import BranchZone as FollowupZone
from services.reception.config import Settings as ReceptionSettings
from services.reception.main import create_app as reception_app
from services.records.config import Settings as RecordsSettings
from services.records.main import create_app as records_app
from services.records.models import BranchZone as RecordsZone
from services.workorders import service
from services.workorders.config import Settings as WorkordersSettings
from services.workorders.main import create_app as workorders_app
from services.workorders.roster import BranchZone as WorkordersZone
from tests.harness import NatsServer, auth, eventually
from tests.test_bad_input import assert_problem
from tests.test_workorders_api import approved

pytestmark = pytest.mark.asyncio

MANAGER, FOREMAN = auth("manager"), auth("foreman")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SHANGHAI, BERLIN = ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin")


@dataclass
class Services:
    reception: httpx.AsyncClient
    workorders: httpx.AsyncClient
    apps: dict[str, FastAPI]


@contextlib.asynccontextmanager
async def running(tmp_path: Path, nats_url: str) -> AsyncIterator[Services]:
    def db(name: str) -> str:
        return f"sqlite+aiosqlite:///{tmp_path / name}.db"

    apps = {
        "reception": reception_app(ReceptionSettings(database_url=db("r"), nats_url=nats_url)),
        "workorders": workorders_app(WorkordersSettings(database_url=db("w"), nats_url=nats_url)),
        "followup": followup_app(FollowupSettings(database_url=db("f"), nats_url=nats_url)),
        "records": records_app(
            RecordsSettings(
                database_url=db("s"), nats_url=nats_url, files_dir=str(tmp_path / "files")
            )
        ),
    }
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        for name, app in apps.items():
            await stack.enter_async_context(app.router.lifespan_context(app))
            clients[name] = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")
            )
        yield Services(clients["reception"], clients["workorders"], apps)


def branch(zone: str) -> dict[str, Any]:
    return {
        "name": "浦东服务中心",
        "time_zone": zone,
        "business_hours": {d: {"start": "08:00", "end": "18:00"} for d in WEEKDAYS[:6]},
        "tax_rate": "0.13",
        "daily_bays": 6,
        "daily_technician_hours": "48",
    }


def member(name: str, weekdays: list[str], days_off: list[date] | None = None) -> dict:
    return {
        "name": name,
        "roles": ["technician"],
        "bay": "B1",
        "working_hours": {d: {"start": "08:30", "end": "17:30"} for d in weekdays},
        "days_off": [d.isoformat() for d in days_off or []],
    }


async def open_job(services: Services) -> str:
    """An open repair order of BR01 with one pending job (the consent applied in process)."""
    db = services.apps["workorders"].state.runtime.db
    async with db.transaction() as session:
        order = await service.apply_consent(session, approved(intake_id=uuid.uuid4()))
    assert order is not None
    r = await services.workorders.get(f"/repair-orders/{order.id}", headers=FOREMAN)
    assert r.status_code == 200, r.text
    return str(r.json()["jobs"][0]["id"])


async def dispatch(client: httpx.AsyncClient, job_id: str, technician: str, at: datetime):
    job = await client.get(f"/jobs/{job_id}", headers=FOREMAN)
    assert job.status_code == 200, job.text
    return await client.put(
        f"/jobs/{job_id}/assignment",
        headers={**FOREMAN, "If-Match": job.headers["ETag"]},
        json={"technician_id": technician, "bay": "B2", "planned_start_at": at.isoformat()},
    )


async def test_dispatch_takes_only_technicians_working_that_day(
    tmp_path: Path, nats_server: NatsServer
):
    # A day a week ahead in the branch's zone: its weekday, and the weekday after it.
    day = datetime.now(SHANGHAI).date() + timedelta(days=7)
    weekday, next_weekday = WEEKDAYS[day.weekday()], WEEKDAYS[(day.weekday() + 1) % 7]
    nine = datetime.combine(day, time(9), SHANGHAI)
    async with running(tmp_path, nats_server.url) as s:
        job_id = await open_job(s)

        # No roster for the branch yet: anyone is dispatched, as before the directory.
        r = await dispatch(s.workorders, job_id, "tech-nobody", nine)
        assert r.status_code == 200, r.text

        r = await s.reception.put("/branches/BR01", headers=MANAGER, json=branch("Asia/Shanghai"))
        assert r.status_code == 201, r.text
        roster = {
            "tech-li": member("李师傅", [weekday]),
            "tech-wang": member("王师傅", [next_weekday]),
            "tech-zhao": member("赵师傅", [weekday], days_off=[day]),
        }
        for staff_id, body in roster.items():
            r = await s.reception.put(
                f"/branches/BR01/staff/{staff_id}", headers=MANAGER, json=body
            )
            assert r.status_code == 201, r.text

        async def working() -> list[str] | None:
            r = await s.workorders.get(
                "/technicians/working", params={"on": day.isoformat()}, headers=FOREMAN
            )
            assert r.status_code == 200, r.text
            ids = [t["technician_id"] for t in r.json()["items"]]
            return ids or None

        assert await eventually(working, what="roster in workorders") == ["tech-li"]

        async def known_everyone() -> bool:
            # tech-wang works the next day: the whole roster has arrived
            r = await s.workorders.get(
                "/technicians/working",
                params={"on": (day + timedelta(days=1)).isoformat()},
                headers=FOREMAN,
            )
            return [t["technician_id"] for t in r.json()["items"]] == ["tech-wang"]

        await eventually(known_everyone, what="tech-wang in workorders")

        before = (await s.workorders.get(f"/jobs/{job_id}", headers=FOREMAN)).json()
        for refused in ("tech-wang", "tech-zhao", "tech-nobody"):
            r = await dispatch(s.workorders, job_id, refused, nine)
            assert_problem(r, 422, "technician_id")
        after = (await s.workorders.get(f"/jobs/{job_id}", headers=FOREMAN)).json()
        assert after == before  # nothing written on a refusal

        r = await dispatch(s.workorders, job_id, "tech-li", nine)
        assert r.status_code == 200, r.text
        assert (r.json()["technician_id"], r.json()["bay"]) == ("tech-li", "B2")

        # tech-wang on his own day is taken too.
        r = await dispatch(s.workorders, job_id, "tech-wang", nine + timedelta(days=1))
        assert r.status_code == 200, r.text

        # Leaving the roster: refused from then on.
        current = await s.reception.get("/branches/BR01/staff/tech-li", headers=MANAGER)
        r = await s.reception.put(
            "/branches/BR01/staff/tech-li",
            headers={**MANAGER, "If-Match": current.headers["ETag"]},
            json={**roster["tech-li"], "active": False},
        )
        assert r.status_code == 200, r.text
        await eventually(lambda: _nobody_working(s.workorders, day), what="tech-li gone")
        assert_problem(await dispatch(s.workorders, job_id, "tech-li", nine), 422, "technician_id")


async def _nobody_working(client: httpx.AsyncClient, day: date) -> bool:
    r = await client.get("/technicians/working", params={"on": day.isoformat()}, headers=FOREMAN)
    return r.json()["items"] == []


async def test_a_branch_time_zone_change_reaches_the_services_that_count_its_days(
    tmp_path: Path, nats_server: NatsServer
):
    day = datetime.now(SHANGHAI).date() + timedelta(days=7)
    weekday = WEEKDAYS[day.weekday()]
    # 05:00 in Shanghai on `day` is still the day before in Berlin (6 or 7 hours behind).
    early = datetime.combine(day, time(5), SHANGHAI)
    assert early.astimezone(BERLIN).date() == day - timedelta(days=1)
    async with running(tmp_path, nats_server.url) as s:
        for name in ("workorders", "followup", "records"):
            assert s.apps[name].state.settings.zone_of("BR01") == "Asia/Shanghai"  # settings
        job_id = await open_job(s)
        r = await s.reception.put("/branches/BR01", headers=MANAGER, json=branch("Asia/Shanghai"))
        assert r.status_code == 201, r.text
        etag = r.headers["ETag"]
        r = await s.reception.put(
            "/branches/BR01/staff/tech-li", headers=MANAGER, json=member("李师傅", [weekday])
        )
        assert r.status_code == 201, r.text

        async def li_working() -> bool:
            return not await _nobody_working(s.workorders, day)

        await eventually(li_working, what="roster in workorders")
        # In Shanghai the planned start falls on tech-li's day.
        r = await dispatch(s.workorders, job_id, "tech-li", early)
        assert r.status_code == 200, r.text

        r = await s.reception.put(
            "/branches/BR01", headers={**MANAGER, "If-Match": etag}, json=branch("Europe/Berlin")
        )
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 2

        async def zones() -> dict[str, str] | None:
            seen = {n: s.apps[n].state.settings.zone_of("BR01") for n in s.apps if n != "reception"}
            return seen if set(seen.values()) == {"Europe/Berlin"} else None

        await eventually(zones, what="Berlin in workorders, followup and records")
        for name, model in (
            ("workorders", WorkordersZone),
            ("followup", FollowupZone),
            ("records", RecordsZone),
        ):
            async with s.apps[name].state.runtime.db.reader() as session:
                row = (
                    await session.exec(select(model.branch, model.time_zone, model.version))
                ).one()
            assert tuple(row) == ("BR01", "Europe/Berlin", 2), name
        # Another branch, unannounced, keeps the settings' zone.
        assert s.apps["followup"].state.settings.zone_of("BR09") == "Asia/Shanghai"

        # The same instant is now the day before, which tech-li does not work.
        assert_problem(await dispatch(s.workorders, job_id, "tech-li", early), 422, "technician_id")

        # Another replica of workorders on the same database learns the zone from the table
        # it reloads (its consumer did not see the event: the first replica took it).
        replica = workorders_app(
            WorkordersSettings(
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'w'}.db",
                nats_url=nats_server.url,
                branch_zone_refresh_seconds=0.2,
            )
        )
        async with replica.router.lifespan_context(replica):

            async def replica_zone() -> bool:
                return replica.state.settings.zone_of("BR01") == "Europe/Berlin"

            await eventually(replica_zone, what="Berlin in the second replica")
