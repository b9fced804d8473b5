"""Deliveries, visit expiry and complaint escalation on a real database, with a set clock."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select

from services.followup import complaints, service, timers
from services.followup.config import Settings
from services.followup.main import SPEC
from services.followup.models import (
    Comeback,
    Complaint,
    ComplaintCategory,
    ComplaintEntry,
    ComplaintSource,
    Contact,
    DeliveredOrder,
    OutboxEvent,
    ServiceReminder,
    Severity,
    Visit,
    VisitStatus,
)
from services.followup.rules import ComplaintStatus
from shared.auth import Role, User
from shared.contracts.workorders import DeliveredJob, RepairOrderDelivered
from shared.db import Database
from shared.events import decode
from shared.migrations import upgrade
from tests.harness import second_starts_before_first_commits

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

AGENT = User(id="agent-1", name="Agent", roles=frozenset({Role.followup_agent}), branch="BR01")
MONDAY = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


class Clock:
    """A clock the test sets; with `tick`, each reading moves it on (events in order)."""

    def __init__(self, now: datetime, tick: timedelta = timedelta(0)):
        self.now, self.tick = now, tick

    def __call__(self) -> datetime:
        self.now += self.tick
        return self.now


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(
        database_url,
        info={
            "outbox_model": SPEC.outbox_model,
            "idempotency_model": SPEC.idempotency_model,
            "audit_model": SPEC.audit_model,
        },
    )
    await upgrade(database, SPEC.migrations)
    yield database
    await database.dispose()


def delivered(
    *,
    at: datetime = MONDAY,
    vehicle_id: uuid.UUID | None = None,
    customer_id: uuid.UUID | None = None,
    jobs: list[tuple[str, str, str | None]] | None = None,
    number: str = "RO-2026-000001",
) -> RepairOrderDelivered:
    return RepairOrderDelivered(
        repair_order_id=uuid.uuid4(),
        number=number,
        branch="BR01",
        customer_id=customer_id or uuid.uuid4(),
        vehicle_id=vehicle_id or uuid.uuid4(),
        vin="LSVAU218XN2183294",
        advisor="advisor-1",
        odometer_km=42000,
        delivered_at=at,
        jobs=[
            DeliveredJob(
                job_id=uuid.uuid4(), op_code=f"{g}-01", op_group=g, kind=k, technician_id=t
            )
            for g, k, t in (jobs or [("BRAKES", "repair", "tech-7")])
        ],
    )


async def outbox_types(db: Database) -> list[str]:
    async with db.reader() as session:
        rows = (await session.exec(select(OutboxEvent).order_by(col(OutboxEvent.seq)))).all()
        return [decode(row.payload).type for row in rows]


async def test_a_delivery_owes_one_visit_and_a_repeat_changes_nothing(db: Database) -> None:
    settings = Settings(clock=Clock(MONDAY))
    event = delivered()
    for _ in range(2):
        async with db.transaction() as session:
            await service.record_delivery(session, event, settings)
    async with db.reader() as session:
        visits = (await session.exec(select(Visit))).all()
        orders = (await session.exec(select(func.count()).select_from(DeliveredOrder))).one()
        assert orders == 1
        assert len(visits) == 1
        assert visits[0].due_at == datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # Thu 10:00 local
        assert visits[0].expires_at == datetime(2026, 12, 15, 10, 0, tzinfo=UTC)  # 18:00 local


async def test_a_customer_who_refused_contact_gets_no_visit(db: Database) -> None:
    settings = Settings(clock=Clock(MONDAY))
    customer = uuid.uuid4()
    async with db.transaction() as session:
        session.add(
            Contact(
                customer_id=customer,
                branch="BR01",
                name="王芳",
                preferred_channel="phone",
                language="zh-CN",
                contact_consent=False,
                as_of=MONDAY,
                updated_at=MONDAY,
            )
        )
    async with db.transaction() as session:
        await service.record_delivery(session, delivered(customer_id=customer), settings)
    async with db.reader() as session:
        assert (await session.exec(select(func.count()).select_from(Visit))).one() == 0
        assert (await session.exec(select(func.count()).select_from(DeliveredOrder))).one() == 1


async def test_visits_expire_once_after_day_fifteen(db: Database) -> None:
    clock = Clock(MONDAY)
    settings = Settings(clock=clock)
    async with db.transaction() as session:
        visit = await service.record_delivery(session, delivered(), settings)
    assert visit is not None
    clock.now = visit.expires_at - timedelta(seconds=1)
    assert (await timers.run_timers(db, settings))["expired_visits"] == 0
    # The service was down at the moment: the next pass, days later, still fires it once.
    clock.now = visit.expires_at + timedelta(days=3)
    assert (await timers.run_timers(db, settings))["expired_visits"] == 1
    assert (await timers.run_timers(db, settings))["expired_visits"] == 0
    async with db.reader() as session:
        stored = await session.get(Visit, visit.id)
        assert stored is not None and stored.status == VisitStatus.expired
        assert stored.outcome == "expired"
    assert await outbox_types(db) == ["followup.visit.expired.v1"]


async def open_case(db: Database, settings: Settings, severity: Severity) -> Complaint:
    async with db.transaction() as session:
        return await complaints.open_case(
            session,
            settings,
            by=AGENT,
            branch="BR01",
            source=ComplaintSource.call,
            severity=severity,
            category=ComplaintCategory.repair_quality,
            description="brakes still squeal",
        )


@pytest.mark.parametrize(("severity", "hours"), [(Severity.major, 24), (Severity.minor, 72)])
async def test_an_overdue_case_escalates_once_to_the_manager(
    db: Database, severity: Severity, hours: int
) -> None:
    clock = Clock(MONDAY)
    settings = Settings(clock=clock, branch_managers={"BR01": "manager-zhang"})
    case = await open_case(db, settings, severity)
    assert case.due_at == MONDAY + timedelta(hours=hours)
    clock.now = case.due_at - timedelta(seconds=1)
    assert (await timers.run_timers(db, settings))["escalated_complaints"] == 0
    clock.now = case.due_at
    assert (await timers.run_timers(db, settings))["escalated_complaints"] == 1
    clock.now = case.due_at + timedelta(days=2)
    assert (await timers.run_timers(db, settings))["escalated_complaints"] == 0
    async with db.reader() as session:
        stored = await session.get(Complaint, case.id)
        history = (
            await session.exec(
                select(ComplaintEntry.kind).where(ComplaintEntry.complaint_id == case.id)
            )
        ).all()
        assert stored is not None
        assert stored.owner == stored.escalated_to == "manager-zhang"
        assert stored.escalated_at == case.due_at
    assert sorted(history) == ["escalated", "opened"]
    types = await outbox_types(db)
    assert types == ["followup.complaint.opened.v1", "followup.complaint.escalated.v1"]
    async with db.reader() as session:
        last = (
            await session.exec(select(OutboxEvent).order_by(col(OutboxEvent.seq).desc()))
        ).first()
        assert last is not None
        data = decode(last.payload).data
    assert data["previous_owner"] == "agent-1" and data["escalated_to"] == "manager-zhang"


async def test_a_resolved_case_does_not_escalate(db: Database) -> None:
    clock = Clock(MONDAY)
    settings = Settings(clock=clock)
    case = await open_case(db, settings, Severity.major)
    async with db.transaction() as session:
        stored = await session.get(Complaint, case.id)
        assert stored is not None
        stored.status = ComplaintStatus.resolved
    clock.now = case.due_at + timedelta(hours=1)
    assert (await timers.run_timers(db, settings))["escalated_complaints"] == 0


async def test_two_timer_passes_at_once_escalate_each_case_once(db: Database) -> None:
    clock = Clock(MONDAY)
    settings = Settings(clock=clock, timer_batch=3)
    for _ in range(10):
        await open_case(db, settings, Severity.major)
    clock.now = MONDAY + timedelta(days=2)
    results = await asyncio.gather(timers.run_timers(db, settings), timers.run_timers(db, settings))
    assert sum(r["escalated_complaints"] for r in results) == 10
    assert (await outbox_types(db)).count("followup.complaint.escalated.v1") == 10


async def test_a_vehicle_back_for_the_same_system_is_a_comeback(db: Database) -> None:
    settings = Settings(clock=Clock(MONDAY))
    vehicle = uuid.uuid4()
    first = delivered(
        vehicle_id=vehicle, jobs=[("BRAKES", "repair", "tech-7"), ("OIL", "maintenance", "tech-2")]
    )
    again = delivered(
        at=MONDAY + timedelta(days=12),
        vehicle_id=vehicle,
        jobs=[("BRAKES", "repair", "tech-9"), ("OIL", "maintenance", "tech-2")],
        number="RO-2026-000002",
    )
    later = delivered(at=MONDAY + timedelta(days=60), vehicle_id=vehicle, number="RO-2026-000003")
    for event in (first, again, again, later):
        async with db.transaction() as session:
            await service.record_delivery(session, event, settings)
    async with db.reader() as session:
        found = (await session.exec(select(Comeback))).all()
        flagged = (
            await session.exec(
                select(DeliveredOrder.number).where(col(DeliveredOrder.is_comeback).is_(True))
            )
        ).all()
        assert len(found) == 1
        assert found[0].op_group == "BRAKES"
        assert found[0].earlier_repair_order_id == first.repair_order_id
        assert found[0].earlier_repair_order_number == "RO-2026-000001"
        assert found[0].technician_id == "tech-7"
    assert flagged == ["RO-2026-000002"]


async def test_a_vehicles_extra_open_reminders_are_superseded_by_the_migration(
    database_url: str,
) -> None:
    """Open reminders left twice for a car (deliveries raced on two replicas before the
    unique index): migration 0007 keeps the newest open and supersedes the rest."""
    db = Database(database_url)
    try:
        await upgrade(db, SPEC.migrations, "0005")
        raced, alone = uuid.uuid4(), uuid.uuid4()
        rows = [
            (uuid.uuid4(), raced, MONDAY),
            (newest := uuid.uuid4(), raced, MONDAY + timedelta(seconds=1)),
            (uuid.uuid4(), raced, MONDAY - timedelta(days=200)),
            (single := uuid.uuid4(), alone, MONDAY),
        ]
        table = ServiceReminder.__table__  # type: ignore[attr-defined]
        async with db.transaction() as session:
            for reminder_id, vehicle_id, created_at in rows:
                await session.execute(
                    sa_insert(table).values(
                        id=reminder_id,
                        branch="BR01",
                        vehicle_id=vehicle_id,
                        customer_id=uuid.uuid4(),
                        vin="LSVAU218XN2183294",
                        last_repair_order_id=uuid.uuid4(),
                        last_repair_order_number="RO-2026-000001",
                        last_odometer_km=42000,
                        due_km=52000,
                        daily_km=40.0,
                        due_reason="date",
                        declined_work=[],
                        status="open",
                        due_at=created_at + timedelta(days=180),
                        created_at=created_at,
                        updated_at=created_at,
                    )
                )
        await upgrade(db, SPEC.migrations)
        async with db.reader() as session:
            still_open = (
                await session.exec(
                    select(ServiceReminder.id).where(ServiceReminder.status == "open")
                )
            ).all()
        assert sorted(still_open) == sorted([newest, single])
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_a_cars_deliveries_handled_at_once_leave_one_open_reminder(pg_url: str) -> None:
    """A visit split into a customer-paid and a warranty order, both delivered at once and
    handled by two replicas: the second starts before the first commits. Each replaces
    the open reminder it saw; the one that cannot is handled again, as the consumer does
    with a failed event, and replaces the other's. One reminder stays open."""
    db = Database(pg_url, info={"outbox_model": SPEC.outbox_model})
    await upgrade(db, SPEC.migrations)
    settings = Settings(clock=Clock(MONDAY))
    car, customer = uuid.uuid4(), uuid.uuid4()
    first, second = (
        delivered(at=MONDAY - timedelta(minutes=n), vehicle_id=car, customer_id=customer)
        for n in (1, 2)
    )

    async def handle(event: RepairOrderDelivered) -> None:
        for _ in range(3):
            try:
                async with db.transaction() as session:
                    await service.record_delivery(session, event, settings)
                return
            except IntegrityError:
                continue
        raise AssertionError("still failing after three tries")

    try:
        await second_starts_before_first_commits(
            pg_url,
            lambda: handle(first),
            lambda: handle(second),
            # The first delivery's order row, being written by another transaction: the
            # first handler waits on it after it has read the car's open reminders.
            hold="INSERT INTO delivered_order (repair_order_id, number, branch, customer_id,"
            " vehicle_id, vin, delivered_at, has_fix, is_comeback)"
            " VALUES ($1, 'RO-0', 'BR01', $2, $3, 'LSVAU218XN2183294', now(), false, false)",
            args=(first.repair_order_id, customer, car),
        )
        async with db.reader() as session:
            reminders = (
                await session.exec(
                    select(ServiceReminder.last_repair_order_id).where(
                        ServiceReminder.vehicle_id == car, ServiceReminder.status == "open"
                    )
                )
            ).all()
        assert len(reminders) == 1
    finally:
        await db.dispose()
