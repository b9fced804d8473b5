"""Scheduled reports: generated when due and only then, once; listed and downloaded; and the
runs missed while the service was down made up at start-up, exactly once with two replicas."""

import asyncio
import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from services.records import report_schedule
from services.records.report_models import ReportRun, ReportRunFile, ReportSchedule
from shared import pdf
from shared.db import Database
from tests.harness import NatsServer, auth, eventually
from tests.test_bad_input import assert_problem
from tests.test_records_files import RecordsClient, runtime_of
from tests.test_records_reports import feed, november

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

MANAGER = auth("manager")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def schedule(frequency: str, hour: int, created_at: datetime) -> ReportSchedule:
    return ReportSchedule(
        owner_branch="BR01",
        branch="BR01",
        frequency=frequency,
        hour=hour,
        language="en",
        created_by="manager-1",
        created_at=created_at,
    )


async def test_which_periods_are_owed_and_when() -> None:
    created = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # Monday 08:00 in Shanghai
    now = datetime(2026, 12, 2, 22, 59, tzinfo=UTC)  # Thursday 3 December, 06:59 local
    daily = report_schedule.owed(schedule("daily", 7, created), now, "Asia/Shanghai", 3)
    # 07:00 local on 3 December is a minute away: the newest owed day is 1 December.
    assert [(p.from_on, due) for p, due in daily] == [
        (date(2026, 12, 1), datetime(2026, 12, 1, 23, 0, tzinfo=UTC)),
        (date(2026, 11, 30), datetime(2026, 11, 30, 23, 0, tzinfo=UTC)),
        (date(2026, 11, 29), datetime(2026, 11, 29, 23, 0, tzinfo=UTC)),
    ]
    weekly = report_schedule.owed(schedule("weekly", 6, created), now, "Asia/Shanghai", 10)
    assert [(p.from_on, p.to_on) for p, _ in weekly] == [
        (date(2026, 11, 23), date(2026, 11, 29)),
        (date(2026, 11, 16), date(2026, 11, 22)),
        (date(2026, 11, 9), date(2026, 11, 15)),
        (date(2026, 11, 2), date(2026, 11, 8)),
    ]  # the week of 2 November was due on the 9th (after creation); 26 Oct's was not owed
    monthly = report_schedule.owed(schedule("monthly", 6, created), now, "Asia/Shanghai", 10)
    assert [(p.from_on, p.to_on) for p, _ in monthly] == [(date(2026, 11, 1), date(2026, 11, 30))]
    early = datetime(2026, 11, 30, 21, 59, tzinfo=UTC)  # 05:59 local on 1 December
    assert report_schedule.owed(schedule("monthly", 6, created), early, "Asia/Shanghai", 10) == []


async def test_a_run_is_generated_when_due_once_and_kept(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    client = RecordsClient(database_url, nats_server, tmp_path / "files")
    client.settings.report_check_interval_seconds = 3600
    async with client as records:
        await feed(records, november().events)
        db, settings = runtime_of(records).db, client.settings
        r = await records.post(
            "/reports/schedules", json={"frequency": "daily", "hour": 7, "language": "en"},
            headers=MANAGER,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        schedule_id = uuid.UUID(r.json()["id"])
        async with db.transaction() as session:
            row = await session.get(ReportSchedule, schedule_id)
            assert row is not None
            row.created_at = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
        due = datetime(2026, 11, 3, 23, 0, tzinfo=UTC)  # 4 November, 07:00 local
        # 1 November's run was due at 07:00 local on the 2nd (23:00 UTC on the 1st), the 2nd's
        # a day later: each is generated at its due time, not before, and once.
        assert (
            await report_schedule.run_due(db, settings, now=due - timedelta(days=1, seconds=1)) == 1
        )
        assert await report_schedule.run_due(db, settings, now=due - timedelta(seconds=1)) == 1
        assert await report_schedule.run_due(db, settings, now=due - timedelta(seconds=1)) == 0
        assert await report_schedule.run_due(db, settings, now=due) == 1
        assert await report_schedule.run_due(db, settings, now=due + timedelta(minutes=5)) == 0

        r = await records.get(
            "/reports/runs", params={"schedule_id": str(schedule_id)}, headers=MANAGER
        )
        assert r.status_code == 200, r.text
        runs = r.json()["items"]
        assert [x["from_on"] for x in runs] == ["2026-11-03", "2026-11-02", "2026-11-01"]
        assert all(x["status"] == "ready" for x in runs)
        assert runs[0]["files"] == ["pdf", "xlsx", "csv", "json"]
        newest = runs[0]["id"]
        r = await records.get(f"/reports/runs/{newest}/files/csv", headers=MANAGER)
        assert r.status_code == 200
        rows = {
            row["key"]: row
            for row in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))
            if row["section"] == "kpi"
        }
        assert float(rows["revenue_total"]["value"]) == 1050  # RO1, settled on the 3rd
        r = await records.get(f"/reports/runs/{newest}/files/pdf", headers=MANAGER)
        assert r.headers["content-type"] == "application/pdf"
        assert "2026-11-03" in pdf.pdf_text(r.content)
        page = (await records.get("/reports/runs", params={"limit": 2}, headers=MANAGER)).json()
        assert len(page["items"]) == 2 and page["next_cursor"]

        other = auth("manager", "BR02")
        assert_problem(await records.get(f"/reports/runs/{newest}", headers=other), 404)
        assert_problem(await records.get(f"/reports/runs/{newest}/files/pdf", headers=other), 404)
        assert_problem(await records.get(f"/reports/runs/{newest}/files/doc", headers=MANAGER), 422)
        assert (await records.get("/reports/schedules", headers=other)).json() == {
            "items": [],
            "next_cursor": None,
        }
        mine = (await records.get("/reports/schedules", headers=MANAGER)).json()
        assert [s["id"] for s in mine["items"]] == [str(schedule_id)]

        r = await records.delete(f"/reports/schedules/{schedule_id}", headers=MANAGER)
        assert r.status_code == 200 and r.json()["active"] is False
        assert await report_schedule.run_due(db, settings, now=due + timedelta(days=3)) == 0


async def test_schedules_refuse_bad_input_and_other_roles(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    async with RecordsClient(database_url, nats_server, tmp_path / "files") as records:
        cases = [
            ({"frequency": "hourly"}, "frequency"),
            ({"frequency": "daily", "hour": 24}, "hour"),
            ({"frequency": "daily", "language": "fr"}, "language"),
            ({"frequency": "daily", "branch": "BR02"}, "branch"),
            ({"frequency": "daily", "branch": "group"}, "branch"),
            ({"frequency": "daily", "colour": "red"}, "colour"),
            ({}, "frequency"),
        ]
        for body, field in cases:
            r = await records.post("/reports/schedules", json=body, headers=MANAGER)
            assert_problem(r, 422, field)
        for role in ("advisor", "technician", "cashier", "admin"):
            r = await records.post(
                "/reports/schedules", json={"frequency": "daily"}, headers=auth(role)
            )
            assert_problem(r, 403)
        db = runtime_of(records).db
        async with db.reader() as session:
            assert (await session.exec(select(ReportSchedule))).all() == []
        headers = {**auth("records_clerk"), "Idempotency-Key": "weekly-1"}
        for _ in range(2):
            r = await records.post(
                "/reports/schedules", json={"frequency": "weekly"}, headers=headers
            )
            assert r.status_code == 201, r.text
        assert r.json()["hour"] == 6 and r.json()["branch"] == "BR01"
        hq = await records.post(
            "/reports/schedules", json={"frequency": "monthly", "branch": "group"},
            headers=auth("manager", "HQ"),
        )  # fmt: skip
        assert hq.status_code == 201 and hq.json()["branch"] is None
        async with db.reader() as session:
            assert len((await session.exec(select(ReportSchedule))).all()) == 2


async def test_runs_missed_while_down_are_made_up_at_start_up_once_with_two_replicas(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    first = RecordsClient(database_url, nats_server, tmp_path / "files")
    first.settings.report_check_interval_seconds = 3600
    async with first as records:
        await feed(records, november().events)
        r = await records.post(
            "/reports/schedules", json={"frequency": "daily", "hour": 0, "language": "zh-CN"},
            headers=MANAGER,
        )  # fmt: skip
        assert r.status_code == 201, r.text
        schedule_id = uuid.UUID(r.json()["id"])
    # The service is down; the schedule dates from three days ago, so the three days before
    # today (local time) are owed when it comes back.
    now = datetime.now(UTC)
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            row = await session.get(ReportSchedule, schedule_id)
            assert row is not None
            row.created_at = now - timedelta(days=3)
    finally:
        await db.dispose()
    today = now.astimezone(SHANGHAI).date()
    owed = {today - timedelta(days=n) for n in (1, 2, 3)}

    replicas = [RecordsClient(database_url, nats_server, tmp_path / "files") for _ in range(2)]
    for replica in replicas:
        replica.settings.auto_migrate = False
        replica.settings.report_check_interval_seconds = 0.2  # several passes each
    clients = await asyncio.gather(*(replica.__aenter__() for replica in replicas))
    try:
        runtime = runtime_of(clients[0])

        async def made_up() -> list[ReportRun]:
            async with runtime.db.reader() as session:
                runs = list((await session.exec(select(ReportRun))).all())
                session.expunge_all()
            assert {r.from_on for r in runs} == owed
            assert all(r.status == "ready" for r in runs)
            return runs

        runs = await eventually(made_up, timeout=60)
        # More passes of both replicas at the same moment generate nothing more.
        again = await asyncio.gather(
            *(
                report_schedule.run_due(runtime_of(c).db, r.settings)
                for c, r in zip(clients, replicas, strict=True)
            )
        )
        assert again == [0, 0]
        async with runtime.db.reader() as session:
            assert len((await session.exec(select(ReportRun))).all()) == 3
            files = (await session.exec(select(ReportRunFile.run_id, ReportRunFile.format))).all()
        assert len(files) == 3 * 4
        assert all(r.made_up for r in runs)
        r = await clients[1].get("/reports/runs", headers=MANAGER)
        [newest, *_] = r.json()["items"]
        assert newest["from_on"] == str(today - timedelta(days=1)) and newest["made_up"]
        r = await clients[1].get(f"/reports/runs/{newest['id']}/files/pdf", headers=MANAGER)
        assert "售后经营日报" in pdf.pdf_text(r.content)
    finally:
        for replica in replicas:
            await replica.__aexit__(None, None, None)
