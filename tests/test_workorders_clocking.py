"""Clocking on constructed timelines: actual hours, efficiency and utilisation per
technician and day, one open clock per technician."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import pytest_asyncio

from services.workorders import service, workshop
from services.workorders.config import Settings
from services.workorders.main import create_app
from services.workorders.models import Job, RepairOrder
from services.workorders.schemas import ClockOff, JobAssignment, StopReason
from shared.auth import Role, User
from shared.db import Database
from shared.problems import Conflict
from tests.harness import NatsServer
from tests.test_workorders_api import approved, labour

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

FOREMAN = User(id="foreman-1", name="F", roles=frozenset({Role.foreman}), branch="BR01")
LI = User(id="tech-li", name="Li", roles=frozenset({Role.technician}), branch="BR01")
WANG = User(id="tech-wang", name="Wang", roles=frozenset({Role.technician}), branch="BR01")
# Monday 30 Nov 2026, 08:00 in Shanghai
MORNING = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
DAY = date(2026, 11, 30)
ZONE = "Asia/Shanghai"


@pytest_asyncio.fixture
async def db(database_url: str, nats_server: NatsServer) -> AsyncIterator[Database]:
    app = create_app(Settings(database_url=database_url, nats_url=nats_server.url))
    async with app.router.lifespan_context(app):
        yield app.state.runtime.db


async def _jobs(
    db: Database, *hours: str, technicians: tuple[User, ...] = (LI,)
) -> list[uuid.UUID]:
    lines = [labour(f"OP-{i}", h, "100") for i, h in enumerate(hours)]
    async with db.transaction() as session:
        order = await service.apply_consent(session, approved(lines=lines))
        assert order is not None
        jobs = await service.jobs_of(session, order.id)
        for n, job in enumerate(jobs):
            await workshop.assign(
                session,
                job.id,
                JobAssignment(technician_id=technicians[n % len(technicians)].id, bay="B1"),
                FOREMAN,
                if_match=f'"{job.version}"',
                zone="Asia/Shanghai",
            )
        return [j.id for j in jobs]


async def _clock(db: Database, job_id: uuid.UUID, on: datetime, off: datetime, reason: str):
    async with db.hot_transaction() as tx:
        await workshop.clock_on(tx, job_id, LI, on)
    async with db.hot_transaction() as tx:
        await workshop.clock_off(tx, job_id, ClockOff(reason=StopReason(reason)), LI, off)


async def test_efficiency_and_utilisation_for_a_day(db: Database):
    brakes, engine = await _jobs(db, "1.5", "2")
    await _clock(db, brakes, MORNING, MORNING + timedelta(minutes=30), "break")
    await _clock(
        db, brakes, MORNING + timedelta(hours=1), MORNING + timedelta(hours=1.5), "finished"
    )
    await _clock(
        db, engine, MORNING + timedelta(hours=2), MORNING + timedelta(hours=4), "end_of_shift"
    )
    async with db.reader() as session:
        [row] = await workshop.productivity(
            session, FOREMAN, DAY, ZONE, 8.0, MORNING + timedelta(hours=9)
        )
        job = await session.get(Job, brakes)
        assert job is not None
        public = await service.job_detail(session, job)
    assert public.actual_hours == Decimal("1.00")
    assert row.clocked_hours == Decimal("3.00")
    assert row.flat_rate_hours == Decimal("1.5")
    assert row.efficiency == Decimal("0.50")
    assert row.utilisation == Decimal("0.38")
    assert row.jobs_finished == 1


async def test_a_clock_running_over_midnight_counts_on_each_day(db: Database):
    [job] = await _jobs(db, "1")
    evening = MORNING + timedelta(hours=15)  # 23:00 local
    await _clock(db, job, evening, evening + timedelta(hours=2), "finished")
    async with db.reader() as session:
        [first] = await workshop.productivity(session, FOREMAN, DAY, ZONE, 8.0, evening)
        [second] = await workshop.productivity(
            session, FOREMAN, DAY + timedelta(days=1), ZONE, 8.0, evening
        )
    assert (first.clocked_hours, first.jobs_finished) == (Decimal("1.00"), 0)
    assert (second.clocked_hours, second.jobs_finished) == (Decimal("1.00"), 1)
    assert second.efficiency == Decimal("1.00")


async def test_one_open_clock_per_technician(db: Database):
    first, second = await _jobs(db, "1", "1")
    async with db.hot_transaction() as tx:
        await workshop.clock_on(tx, first, LI, MORNING)
    with pytest.raises(Conflict):
        async with db.hot_transaction() as tx:
            await workshop.clock_on(tx, second, LI, MORNING + timedelta(minutes=1))
    with pytest.raises(Conflict):
        async with db.hot_transaction() as tx:
            await workshop.clock_off(tx, second, ClockOff(), LI, MORNING)
    # A clock-off stamped before its clock-on (a tablet's clock behind) counts as zero.
    async with db.hot_transaction() as tx:
        entry = await workshop.clock_off(tx, first, ClockOff(), LI, MORNING - timedelta(minutes=5))
        assert entry.ended_at == entry.started_at
    async with db.reader() as session:
        rows = await workshop.productivity(session, LI, DAY, ZONE, 8.0, MORNING)
    assert [r.clocked_hours for r in rows] == [Decimal("0.00")]


async def test_two_clock_ons_at_the_same_moment_leave_one_running(db: Database):
    first, second = await _jobs(db, "1", "1")

    async def clock_on(job_id: uuid.UUID) -> bool:
        try:
            async with db.hot_transaction() as tx:
                await workshop.clock_on(tx, job_id, LI, MORNING)
        except Conflict:
            return False
        return True

    results = await asyncio.gather(clock_on(first), clock_on(second))
    assert sorted(results) == [False, True]
    async with db.reader() as session:
        assert (await workshop.open_entry(session, LI.id)) is not None


async def test_two_technicians_start_the_same_order_at_once(db: Database):
    first, second = await _jobs(db, "1", "1", technicians=(LI, WANG))
    async with db.reader() as session:
        job = await session.get(Job, first)
        assert job is not None
        order_id = job.repair_order_id
        before = await session.get(RepairOrder, order_id)
        assert before is not None
        version = before.version

    async def clock_on(job_id: uuid.UUID, technician: User) -> None:
        async with db.hot_transaction() as tx:
            await workshop.clock_on(tx, job_id, technician, MORNING)

    await asyncio.gather(clock_on(first, LI), clock_on(second, WANG))
    async with db.reader() as session:
        order = await session.get(RepairOrder, order_id)
        assert order is not None and order.status == "in_progress"
        assert order.version == version + 1  # moved once, neither technician refused
