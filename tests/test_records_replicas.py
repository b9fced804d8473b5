"""Records' handlers racing on PostgreSQL: two replicas as real processes sharing the
durable consumers, and pairs of handlers forced into the worst interleaving, where the
second has started before the first commits. A visit's entries still find each other and
an older description never overwrites a newer one, whatever order they commit in."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from sqlmodel import select

from services.records import report_handlers, webhook_service
from services.records.main import SPEC
from services.records.models import ArchivedCustomer, ArchivedVehicle, TimelineEntry
from services.records.report_models import ReportAppointment
from services.records.webhook_models import DeliveryStatus, WebhookDelivery
from services.records.webhook_worker import Outcome, Policy, claim, record
from shared.contracts import (
    AppointmentBooked,
    CustomerRegistered,
    CustomerSnapshot,
    CustomerUpdated,
    EstimateApproved,
    IntakeInspected,
    IntakeOpened,
    RepairOrderOpened,
    VehicleOwnerChanged,
    VehicleRegistered,
    VehicleSnapshot,
)
from shared.db import Database
from shared.events import Contract, Envelope, utcnow
from shared.migrations import upgrade
from tests.harness import (
    NatsServer,
    eventually,
    publish_at_once,
    replicas,
    second_starts_before_first_commits,
)
from tests.test_records_archive import ROUTES
from tests.test_records_webhooks import App, register, settings_for

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio]

VISITS = 100
VIN = "LSVAU2180N2183294"
T0 = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
CONSUMERS = {
    "records__archive_appointment_booked": "RECEPTION",
    "records__archive_intake": "RECEPTION",
    "records__archive_intake_inspected": "RECEPTION",
    "records__archive_estimate": "RECEPTION",
    "records__archive_repair_order": "WORKORDERS",
}


def visit(n: int) -> tuple[dict[str, uuid.UUID], list[Envelope]]:
    """A booking made before the car was known, the intake that takes it up, its
    walk-around and estimate, and the repair order workorders opens from the intake."""
    ids = {name: uuid.uuid4() for name in ("customer", "vehicle", "appointment", "intake")}
    ids["repair_order"] = uuid.uuid4()
    at = T0 + timedelta(minutes=n)
    events: list[tuple[Contract, uuid.UUID]] = [
        (
            AppointmentBooked(
                appointment_id=ids["appointment"],
                branch="BR01",
                customer_id=ids["customer"],
                scheduled_for=at + timedelta(hours=1),
                planned_hours=Decimal("1"),
                booked_by="adv-1",
                booked_at=at - timedelta(days=1),
            ),
            ids["appointment"],
        ),
        (
            IntakeOpened(
                intake_id=ids["intake"],
                branch="BR01",
                opened_at=at,
                advisor="adv-1",
                customer=CustomerSnapshot(id=ids["customer"], name=f"客户 {n}"),
                vehicle=VehicleSnapshot(id=ids["vehicle"], vin=VIN, plate="沪A12345"),
                odometer_km=20_000,
                appointment_id=ids["appointment"],
            ),
            ids["intake"],
        ),
        (
            IntakeInspected(
                intake_id=ids["intake"],
                branch="BR01",
                version=2,
                customer_id=ids["customer"],
                vehicle_id=ids["vehicle"],
                vin=VIN,
                inspected_by="adv-1",
                inspected_at=at + timedelta(minutes=3),
            ),
            ids["intake"],
        ),
        (
            EstimateApproved(
                estimate_id=uuid.uuid4(),
                revision=1,
                intake_id=ids["intake"],
                branch="BR01",
                customer_id=ids["customer"],
                customer_name=f"客户 {n}",
                vehicle_id=ids["vehicle"],
                vin=VIN,
                advisor="adv-1",
                odometer_km=20_000,
                promised_at=at + timedelta(hours=4),
                approved_at=at + timedelta(minutes=10),
            ),
            ids["intake"],
        ),
        (
            RepairOrderOpened(
                repair_order_id=ids["repair_order"],
                number=f"RO-2026-{n:06d}",
                branch="BR01",
                intake_id=ids["intake"],
                customer_id=ids["customer"],
                vehicle_id=ids["vehicle"],
                vin=VIN,
                status="draft",
                opened_at=at + timedelta(minutes=1),
            ),
            ids["repair_order"],
        ),
    ]
    return ids, [event.to_envelope(subject=str(subject)) for event, subject in events]


@pytest.mark.e2e
async def test_a_visits_events_at_the_same_moment_on_two_replicas_are_linked(
    pg_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    visits = [visit(n) for n in range(VISITS)]
    # Each visit's events side by side, so both replicas take them up together.
    envelopes = [envelope for _, events in visits for envelope in events]
    database = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    with replicas("records", pg_url, nats_server.url, tmp_path):
        await publish_at_once(nats_server.url, envelopes, consumers=CONSUMERS)
        conn = await asyncpg.connect(database)
        try:

            async def all_archived() -> bool:
                archived = await conn.fetchval("SELECT count(*) FROM timeline_entry")
                return bool(archived == len(envelopes))

            await eventually(all_archived, timeout=45, what="every event archived")
            rows = await conn.fetch(
                "SELECT kind, intake_id, appointment_id, reference_id, vehicle_id,"
                " repair_order_id FROM timeline_entry"
            )
        finally:
            await conn.close()
    orders = {ids["intake"]: ids["repair_order"] for ids, _ in visits}
    cars = {ids["appointment"]: ids["vehicle"] for ids, _ in visits}
    unlinked = [
        row["kind"]
        for row in rows
        if row["kind"] != "appointment.booked"
        and row["repair_order_id"] != orders[row["intake_id"]]
    ]
    bookings = [
        row["vehicle_id"] == cars[row["reference_id"]]
        for row in rows
        if row["kind"] == "appointment.booked"
    ]
    assert not unlinked, f"{len(unlinked)} entries without their repair order: {unlinked}"
    assert len(bookings) == VISITS and all(bookings), (
        f"{bookings.count(False)} of {VISITS} bookings without the car of their intake"
    )


# --- two handlers in the worst interleaving -------------------------------------------


@pytest_asyncio.fixture
async def db(pg_url: str) -> AsyncIterator[Database]:
    database = Database(pg_url)
    await upgrade(database, SPEC.migrations)
    yield database
    await database.dispose()


def _received(envelope: Envelope) -> Contract:
    contract = ROUTES[envelope.type].contract
    return contract.from_envelope(envelope)


async def _handle(db: Database, envelope: Envelope) -> None:
    async with db.transaction() as session:
        await ROUTES[envelope.type].func(_received(envelope), session)


async def _first_then_second(
    db: Database, pg_url: str, first: Envelope, second: Envelope, held: uuid.UUID
) -> None:
    """`first` commits while `second` is already running: both wait behind a lock held on
    `held` (a key both handlers take), `first` queued first."""
    await second_starts_before_first_commits(
        pg_url,
        lambda: _handle(db, first),
        lambda: _handle(db, second),
        hold="SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        args=(str(held),),
    )


def _kind(envelopes: list[Envelope], contract: type[Contract]) -> Envelope:
    return next(e for e in envelopes if e.type == contract.type)


@pytest.mark.store
@pytest.mark.parametrize("late", [IntakeOpened, IntakeInspected, EstimateApproved])
async def test_an_intakes_entry_finds_the_repair_order_committed_meanwhile(
    db: Database, pg_url: str, late: type[Contract]
) -> None:
    ids, events = visit(0)
    opened = _kind(events, RepairOrderOpened)
    await _first_then_second(db, pg_url, opened, _kind(events, late), ids["customer"])
    async with db.reader() as session:
        linked = (
            await session.exec(select(TimelineEntry.kind, TimelineEntry.repair_order_id))
        ).all()
    assert sorted(linked) == sorted(
        [("repair_order.opened", ids["repair_order"]), (_entry_kind(late), ids["repair_order"])]
    )


def _entry_kind(contract: type[Contract]) -> str:
    return ".".join(contract.type.split(".")[1:3])


@pytest.mark.store
async def test_a_booking_finds_the_car_of_the_intake_committed_meanwhile(
    db: Database, pg_url: str
) -> None:
    ids, events = visit(0)
    intake, booked = _kind(events, IntakeOpened), _kind(events, AppointmentBooked)
    await _first_then_second(db, pg_url, intake, booked, ids["customer"])
    async with db.reader() as session:
        car = (
            await session.exec(
                select(TimelineEntry.vehicle_id).where(TimelineEntry.kind == "appointment.booked")
            )
        ).one()
    assert car == ids["vehicle"]


async def _registered(db: Database, ids: dict[str, uuid.UUID]) -> None:
    """The customer's and the car's cards, as reception registered them a month before."""
    at = T0 - timedelta(days=30)
    customer = CustomerSnapshot(id=ids["customer"], name="客户 0", mobile="13800000000")
    vehicle = VehicleSnapshot(id=ids["vehicle"], vin=VIN, plate="沪A00000")
    for event, subject in (
        (CustomerRegistered(branch="BR01", customer=customer, registered_at=at), customer.id),
        (
            VehicleRegistered(
                branch="BR01", customer_id=customer.id, vehicle=vehicle, registered_at=at
            ),
            vehicle.id,
        ),
    ):
        await _handle(db, event.to_envelope(subject=str(subject)))


def _day_after(intake: Envelope) -> datetime:
    return datetime.fromisoformat(intake.data["opened_at"]) + timedelta(days=1)


@pytest.mark.store
async def test_an_older_intake_never_overwrites_the_customer_updated_meanwhile(
    db: Database, pg_url: str
) -> None:
    ids, events = visit(0)
    intake = _kind(events, IntakeOpened)
    updated = CustomerUpdated(
        branch="BR01",
        customer=CustomerSnapshot(id=ids["customer"], name="客户 0", mobile="13900000000"),
        updated_by="adv-1",
        updated_at=_day_after(intake),
    ).to_envelope(subject=str(ids["customer"]))
    await _registered(db, ids)
    await _first_then_second(db, pg_url, updated, intake, ids["customer"])
    async with db.reader() as session:
        customer = await session.get(ArchivedCustomer, ids["customer"])
        assert customer is not None
        assert (customer.mobile, customer.as_of) == ("13900000000", _day_after(intake))


@pytest.mark.store
async def test_an_older_intake_never_overwrites_the_car_sold_meanwhile(
    db: Database, pg_url: str
) -> None:
    """The car is sold and gets new plates while an intake of the day before, under the
    seller and with the plates it had then, is archived."""
    ids, events = visit(0)
    intake, buyer = _kind(events, IntakeOpened), uuid.uuid4()
    sold = VehicleOwnerChanged(
        branch="BR01",
        vehicle=VehicleSnapshot(id=ids["vehicle"], vin=VIN, plate="沪B54321"),
        previous_customer_id=ids["customer"],
        customer_id=buyer,
        changed_by="adv-1",
        changed_at=_day_after(intake),
    ).to_envelope(subject=str(ids["vehicle"]))
    await _registered(db, ids)
    await _first_then_second(db, pg_url, sold, intake, buyer)
    async with db.reader() as session:
        vehicle = await session.get(ArchivedVehicle, ids["vehicle"])
        assert vehicle is not None
        assert (vehicle.customer_id, vehicle.plate, vehicle.as_of) == (
            buyer,
            "沪B54321",
            _day_after(intake),
        )


@pytest.mark.store
async def test_an_older_reschedule_never_overwrites_the_newer_one_in_the_reports(
    db: Database, pg_url: str
) -> None:
    """Two reschedules of one booking reach the report facts at once, the newer first: the
    booking keeps the newer slot."""
    ids, _ = visit(0)

    def booked(minutes: int) -> Envelope:
        return AppointmentBooked(
            appointment_id=ids["appointment"],
            branch="BR01",
            customer_id=ids["customer"],
            scheduled_for=T0 + timedelta(days=1, minutes=minutes),
            planned_hours=Decimal("1"),
            booked_by="adv-1",
            booked_at=T0 + timedelta(minutes=minutes),
        ).to_envelope(subject=str(ids["appointment"]))

    async def report(envelope: Envelope) -> None:
        async with db.transaction() as session:
            await report_handlers.appointment_booked(
                AppointmentBooked.from_envelope(envelope), session
            )

    await report(booked(0))
    await second_starts_before_first_commits(
        pg_url,
        lambda: report(booked(20)),
        lambda: report(booked(10)),
        hold="SELECT 1 FROM report_appointment WHERE appointment_id = $1 FOR UPDATE",
        args=(ids["appointment"],),
    )
    async with db.reader() as session:
        row = await session.get(ReportAppointment, ids["appointment"])
        assert row is not None
        assert (row.scheduled_for, row.as_of) == (
            T0 + timedelta(days=1, minutes=20),
            T0 + timedelta(minutes=20),
        )


@pytest.mark.store
async def test_a_delivery_recorded_by_two_senders_at_once_keeps_its_success(
    pg_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    """A sender whose claim outlived its lease (a slow endpoint) and the sender that claimed
    the delivery after it both record their attempt at once: the success stands, it is not
    sent again, and the failure recorded after it changes nothing."""
    settings = settings_for(pg_url, nats_server, tmp_path)
    async with App(settings) as records:
        await register(records, "http://93.184.215.14/never-called")
    # The service is stopped: only the test's senders take the delivery.
    db = Database(pg_url)
    try:
        async with db.transaction() as session:
            await webhook_service.enqueue(
                session,
                branch="BR01",
                event_type="customer.registered",
                occurred_at=utcnow(),
                data={"customer_id": str(uuid.uuid4())},
                source_event_id=str(uuid.uuid4()),
            )
        policy = Policy.of(settings)
        (job,) = await claim(db, policy, lease=60)
        await second_starts_before_first_commits(
            pg_url,
            lambda: record(db, policy, [(job, Outcome(utcnow(), status_code=204))]),
            lambda: record(db, policy, [(job, Outcome(utcnow(), status_code=503))]),
            hold="SELECT 1 FROM webhook_delivery WHERE id = $1 FOR UPDATE",
            args=(job.delivery_id,),
        )
        async with db.reader() as session:
            delivery = await session.get(WebhookDelivery, job.delivery_id)
            assert delivery is not None
            assert (delivery.status, delivery.attempts) == (DeliveryStatus.succeeded, 1)
    finally:
        await db.dispose()
