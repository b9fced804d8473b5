"""The customer and vehicle archive: timelines rebuilt from a shuffled and duplicated event
stream equal the ones from the ordered stream; the customer timeline, data export and
erasure over the API, on a real database (SQLite, and PostgreSQL in its leg)."""

import asyncio
import itertools
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import event as sa_event
from sqlalchemy import insert as sa_insert
from sqlmodel import col, delete, select

from services.records import handlers
from services.records.main import SPEC
from services.records.models import (
    ArchivedCustomer,
    ArchivedVehicle,
    CustomerTimeline,
    TimelineEntry,
    VehicleTimeline,
)
from shared.contracts import (
    ComplaintEscalated,
    ComplaintOpened,
    ConsentRef,
    CustomerRegistered,
    CustomerSnapshot,
    DamageMarkRef,
    DeliveredJob,
    EstimateApproved,
    EstimateLine,
    ExtraWorkFound,
    IntakeInspected,
    IntakeOpened,
    RepairOrderDelivered,
    RepairOrderOpened,
    VehicleRegistered,
    VehicleSnapshot,
)
from shared.contracts.followup import (
    ComebackRecorded,
    ReminderSent,
    ServqualAnswer,
    SurveyAnswered,
    VisitClosed,
    VisitExpired,
)
from shared.contracts.reception import (
    AppointmentBooked,
    AppointmentClosed,
    CustomerUpdated,
    VehicleOwnerChanged,
)
from shared.contracts.records import PaymentConfirmed
from shared.contracts.workorders import (
    InvoiceLine,
    JobClocked,
    PaymentTaken,
    PayTypeTotal,
    QcRecorded,
    RepairOrderSettled,
)
from shared.db import Database
from shared.events import Contract
from shared.migrations import upgrade
from tests.harness import NatsServer, auth, eventually
from tests.test_bad_input import assert_problem
from tests.test_records_files import (
    JPEG,
    PDF,
    PNG,
    WEBP,
    RecordsClient,
    runtime_of,
    stored_blobs,
    upload,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

VIN = "LSVAU2180N2183294"
T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


def envelope(event: Contract, subject: uuid.UUID) -> Contract:
    """The event as a consumer receives it: with its CloudEvents envelope."""
    return type(event).from_envelope(event.to_envelope(subject=str(subject)))


class Story:
    """Ids of one customer's file: a car, two visits, a complaint."""

    def __init__(self, branch: str = "BR01") -> None:
        self.branch = branch
        self.customer_id, self.vehicle_id = uuid.uuid4(), uuid.uuid4()
        self.intakes = [uuid.uuid4(), uuid.uuid4()]
        self.orders = [uuid.uuid4(), uuid.uuid4()]
        self.estimate_id, self.extra_work_id = uuid.uuid4(), uuid.uuid4()
        self.complaint_id, self.visit_id = uuid.uuid4(), uuid.uuid4()
        self.appointment_id, self.job_id = uuid.uuid4(), uuid.uuid4()
        self.surveyed_visit_id = uuid.uuid4()
        # Photos of the work found (stored files), when the test has uploaded some.
        self.photo_file_ids: list[uuid.UUID] = []
        # The first intake's walk-around photos and signature (stored files, or just ids).
        self.intake_photos = [uuid.uuid4(), uuid.uuid4(), uuid.uuid4()]
        self.signature_file_id = uuid.uuid4()

    def inspected(
        self,
        version: int,
        at: datetime,
        marks: list[tuple[str, str, uuid.UUID | None]],
        signed: bool = False,
    ) -> IntakeInspected:
        """The first intake's walk-around as reception sends it after a change."""
        return IntakeInspected(
            intake_id=self.intakes[0], branch=self.branch, version=version,
            customer_id=self.customer_id, vehicle_id=self.vehicle_id, vin=VIN,
            damage_marks=[DamageMarkRef(position=position, kind=kind, photo_file_id=photo)
                          for position, kind, photo in marks],
            signature_file_id=self.signature_file_id if signed else None,
            inspected_by="adv-zhao", inspected_at=at,
        )  # fmt: skip

    def customer(self, name: str, mobile: str) -> CustomerSnapshot:
        return CustomerSnapshot(id=self.customer_id, name=name, mobile=mobile)

    def vehicle(self, plate: str) -> VehicleSnapshot:
        return VehicleSnapshot(
            id=self.vehicle_id, vin=VIN, plate=plate, make="SAIC Volkswagen", model_year=2022
        )


def line(description: str, net: str, op_code: str | None = "BRK01") -> EstimateLine:
    return EstimateLine(
        line_id=uuid.uuid4(),
        kind="labour" if op_code else "part",
        description=description,
        op_code=op_code,
        flat_rate_hours=Decimal("1.2"),
        labour_rate=Decimal("300"),
        net=Decimal(net),
    )


def events_of(story: Story) -> list[Contract]:
    """Everything the platform says about one customer, in the order it happened."""
    s, at = story, T0
    pads, discs, wipers, hose = (
        line("前刹车片", "360"),
        line("前刹车盘", "820"),
        line("雨刮", "120", None),
        line("冷却液管", "240"),
    )
    visit2 = at + timedelta(days=90)
    consent = [
        ConsentRef(line_id=pads.line_id, decision="approved", by="王芳", channel="in_person", at=at)
    ]
    return [
        CustomerRegistered(branch=s.branch, customer=s.customer("王芳", "13800138000"),
                           registered_at=at),
        VehicleRegistered(branch=s.branch, customer_id=s.customer_id, vehicle=s.vehicle("沪A12345"),
                          registered_at=at + timedelta(minutes=2)),
        # Booked by phone before the car was known, then moved; the intake takes it up.
        AppointmentBooked(appointment_id=s.appointment_id, branch=s.branch,
                          customer_id=s.customer_id, scheduled_for=at + timedelta(hours=1),
                          planned_hours=Decimal("1.5"), booked_by="adv-zhao",
                          booked_at=at + timedelta(minutes=1)),
        AppointmentBooked(appointment_id=s.appointment_id, branch=s.branch,
                          customer_id=s.customer_id, scheduled_for=at + timedelta(minutes=5),
                          planned_hours=Decimal("1.5"), booked_by="adv-zhao",
                          booked_at=at + timedelta(minutes=3)),
        AppointmentClosed(appointment_id=s.appointment_id, branch=s.branch,
                          customer_id=s.customer_id, scheduled_for=at + timedelta(minutes=5),
                          outcome="arrived", closed_by="adv-zhao",
                          closed_at=at + timedelta(minutes=5)),
        IntakeOpened(intake_id=s.intakes[0], branch=s.branch, opened_at=at + timedelta(minutes=5),
                     advisor="adv-zhao", customer=s.customer("王芳", "13900139000"),
                     vehicle=s.vehicle("沪A12345"), odometer_km=42000, concerns=["刹车异响"],
                     appointment_id=s.appointment_id),
        # The walk-around, saved three times: photos added, one replaced, then signed.
        s.inspected(2, at + timedelta(minutes=8),
                    [("rear_bumper_left", "scratch", s.intake_photos[0])]),
        s.inspected(3, at + timedelta(minutes=10),
                    [("rear_bumper_left", "scratch", s.intake_photos[1]),
                     ("door_front_right", "dent", s.intake_photos[2]), ("roof", "chip", None)]),
        s.inspected(4, at + timedelta(minutes=12),
                    [("rear_bumper_left", "scratch", s.intake_photos[1]),
                     ("door_front_right", "dent", s.intake_photos[2]), ("roof", "chip", None)],
                    signed=True),
        EstimateApproved(estimate_id=s.estimate_id, revision=1, intake_id=s.intakes[0],
                         branch=s.branch, customer_id=s.customer_id, customer_name="王芳",
                         vehicle_id=s.vehicle_id, vin=VIN, plate="沪A12345", advisor="adv-zhao",
                         odometer_km=42000, promised_at=at + timedelta(hours=6),
                         approved_lines=[pads], declined_lines=[discs, wipers], consents=consent,
                         approved_at=at + timedelta(minutes=20)),
        # The repair order opens at the very moment of the approval: ties stay stable.
        RepairOrderOpened(repair_order_id=s.orders[0], number="RO-2026-000001", branch=s.branch,
                          intake_id=s.intakes[0], customer_id=s.customer_id,
                          vehicle_id=s.vehicle_id, vin=VIN, status="draft",
                          opened_at=at + timedelta(minutes=20)),
        ExtraWorkFound(extra_work_id=s.extra_work_id, repair_order_id=s.orders[0],
                       repair_order_number="RO-2026-000001", intake_id=s.intakes[0],
                       branch=s.branch, found_by="tech-li", findings="冷却液管老化渗漏",
                       proposed_lines=[hose], photo_file_ids=s.photo_file_ids,
                       found_at=at + timedelta(hours=2)),
        EstimateApproved(estimate_id=s.estimate_id, revision=2, intake_id=s.intakes[0],
                         branch=s.branch, customer_id=s.customer_id, customer_name="王芳",
                         vehicle_id=s.vehicle_id, vin=VIN, plate="沪A12345", advisor="adv-zhao",
                         odometer_km=42000, promised_at=at + timedelta(hours=7),
                         approved_lines=[hose],
                         consents=[ConsentRef(line_id=hose.line_id, decision="approved",
                                              by="王芳", channel="phone",
                                              at=at + timedelta(hours=2, minutes=9))],
                         approved_at=at + timedelta(hours=2, minutes=10),
                         repair_order_id=s.orders[0], extra_work_id=s.extra_work_id),
        # Clock segments of the brake job (paused for parts, then finished) and its QC.
        JobClocked(clock_id=uuid.uuid4(), repair_order_id=s.orders[0], number="RO-2026-000001",
                   branch=s.branch, job_id=s.job_id, op_code="BRK01", technician_id="tech-li",
                   flat_rate_hours=Decimal("1.2"), started_at=at + timedelta(hours=3),
                   ended_at=at + timedelta(hours=3, minutes=30), hours=Decimal("0.5"),
                   reason="waiting_parts"),
        JobClocked(clock_id=uuid.uuid4(), repair_order_id=s.orders[0], number="RO-2026-000001",
                   branch=s.branch, job_id=s.job_id, op_code="BRK01", technician_id="tech-li",
                   flat_rate_hours=Decimal("1.2"), started_at=at + timedelta(hours=4),
                   ended_at=at + timedelta(hours=5), hours=Decimal("1.0")),
        QcRecorded(qc_id=uuid.uuid4(), repair_order_id=s.orders[0], number="RO-2026-000001",
                   branch=s.branch, job_id=s.job_id, op_code="BRK01", technician_id="tech-li",
                   passed=False, reason="制动异响仍在", road_test=True, inspected_by="qc-wu",
                   inspected_at=at + timedelta(hours=5, minutes=10)),
        QcRecorded(qc_id=uuid.uuid4(), repair_order_id=s.orders[0], number="RO-2026-000001",
                   branch=s.branch, job_id=s.job_id, op_code="BRK01", technician_id="tech-li",
                   passed=True, road_test=True, inspected_by="qc-wu",
                   inspected_at=at + timedelta(hours=5, minutes=40)),
        # The ERP confirms the payment naming only the invoice, and sends it twice.
        *[PaymentConfirmed(erp_payment_id="ERP-PAY-0001", branch=s.branch,
                           invoice_number="INV-2026-000001", amount=Decimal("678"),
                           method="transfer", paid_at=at + timedelta(hours=6, minutes=30),
                           received_at=at + timedelta(hours=6, minutes=minute))
          for minute in (31, 45)],
        RepairOrderSettled(repair_order_id=s.orders[0], number="RO-2026-000001",
                           invoice_number="INV-2026-000001", branch=s.branch,
                           customer_id=s.customer_id, vehicle_id=s.vehicle_id, vin=VIN,
                           lines=[InvoiceLine(line_id=pads.line_id, kind="labour",
                                              description="前刹车片", net=Decimal("360"))],
                           totals=[PayTypeTotal(pay_type="customer", net=Decimal("600"),
                                                tax=Decimal("78"), gross=Decimal("678"))],
                           net_total=Decimal("600"), tax_total=Decimal("78"),
                           gross_total=Decimal("678"), customer_due=Decimal("678"),
                           payments=[PaymentTaken(method="wechat", amount=Decimal("678"))],
                           settled_by="cashier-qian", settled_at=at + timedelta(hours=6)),
        RepairOrderDelivered(repair_order_id=s.orders[0], number="RO-2026-000001", branch=s.branch,
                             customer_id=s.customer_id, vehicle_id=s.vehicle_id, vin=VIN,
                             plate="沪A12345", advisor="adv-zhao", odometer_km=42000,
                             delivered_at=at + timedelta(hours=6),
                             promised_at=at + timedelta(hours=7),
                             jobs=[DeliveredJob(job_id=uuid.uuid4(), op_code="BRK01",
                                                op_group="brakes", technician_id="tech-li",
                                                flat_rate_hours=Decimal("1.2"))],
                             declined_work=["前刹车盘", "雨刮"]),
        ComplaintOpened(complaint_id=s.complaint_id, branch=s.branch, origin="call",
                        severity="minor", category="noise", customer_id=s.customer_id,
                        repair_order_id=s.orders[0], technician_id="tech-li", owner="agent-sun",
                        due_at=at + timedelta(days=5), opened_at=at + timedelta(days=3)),
        # The escalation names neither the car nor the customer, only the case.
        ComplaintEscalated(complaint_id=s.complaint_id, branch=s.branch, severity="minor",
                           category="noise", status="open", previous_owner="agent-sun",
                           escalated_to="manager-zhou", due_at=at + timedelta(days=7),
                           escalated_at=at + timedelta(days=5, minutes=1)),
        VisitExpired(visit_id=s.visit_id, branch=s.branch, repair_order_id=s.orders[0],
                     customer_id=s.customer_id, attempts=3, expired_at=at + timedelta(days=15)),
        VisitClosed(visit_id=s.surveyed_visit_id, branch=s.branch, repair_order_id=s.orders[0],
                    customer_id=s.customer_id, outcome="surveyed", reached=True, attempts=1,
                    closed_at=at + timedelta(days=3, hours=2)),
        SurveyAnswered(survey_id=uuid.uuid4(), visit_id=s.surveyed_visit_id, branch=s.branch,
                       repair_order_id=s.orders[0], customer_id=s.customer_id, overall=8, nps=9,
                       servqual=[ServqualAnswer(dimension="reliability", expectation=7,
                                                perception=6)],
                       answered_at=at + timedelta(days=3, hours=2)),
        ReminderSent(reminder_id=uuid.uuid4(), branch=s.branch, customer_id=s.customer_id,
                     vehicle_id=s.vehicle_id, kind="maintenance", due_on=date(2026, 6, 1),
                     channel="sms", sent_at=at + timedelta(days=80)),
        # The second visit: a new plate and a new phone number.
        IntakeOpened(intake_id=s.intakes[1], branch=s.branch, opened_at=visit2,
                     advisor="adv-zhao", customer=s.customer("王芳", "13700137000"),
                     vehicle=s.vehicle("沪B99999"), odometer_km=47000, concerns=["保养"]),
        RepairOrderOpened(repair_order_id=s.orders[1], number="RO-2026-000090", branch=s.branch,
                          intake_id=s.intakes[1], customer_id=s.customer_id,
                          vehicle_id=s.vehicle_id, vin=VIN, status="draft",
                          opened_at=visit2 + timedelta(minutes=1)),
        # Back for the brakes: names the car and both visits, not the customer.
        ComebackRecorded(comeback_id=uuid.uuid4(), branch=s.branch, vehicle_id=s.vehicle_id,
                         op_group="brakes", repair_order_id=s.orders[1],
                         earlier_repair_order_id=s.orders[0], technician_id="tech-li",
                         delivered_at=visit2 + timedelta(hours=3),
                         earlier_delivered_at=at + timedelta(hours=6)),
    ]  # fmt: skip


def with_envelopes(events: list[Contract], story: Story) -> list[Contract]:
    return [envelope(e, story.vehicle_id) for e in events]


# The archive's handlers (reports and webhooks subscribe to some of the same events).
ROUTES = {
    h.contract.type: h
    for h in handlers.subscriber.handlers
    if h.durable.startswith("records__archive_")
}


async def feed(db: Database, events: list[Contract], *, one_transaction: bool = False) -> None:
    """Through the handlers as the runner calls them: one transaction per event, or a batch."""
    if one_transaction:
        async with db.transaction() as session:
            for event in events:
                await ROUTES[event.type].func(event, session)
        return
    for event in events:
        async with db.transaction() as session:
            await ROUTES[event.type].func(event, session)


async def archive_of(db: Database) -> dict[str, Any]:
    async with db.reader() as session:
        entries = (
            await session.exec(
                select(TimelineEntry).order_by(
                    col(TimelineEntry.occurred_at), col(TimelineEntry.id)
                )
            )
        ).all()
        customers = (
            await session.exec(select(ArchivedCustomer).order_by(col(ArchivedCustomer.customer_id)))
        ).all()
        vehicles = (
            await session.exec(select(ArchivedVehicle).order_by(col(ArchivedVehicle.vehicle_id)))
        ).all()
        return {
            "entries": [e.model_dump(mode="json") for e in entries],
            "customers": [c.model_dump(mode="json") for c in customers],
            "vehicles": [v.model_dump(mode="json") for v in vehicles],
        }


async def forget(db: Database) -> None:
    async with db.transaction() as session:
        for table in (TimelineEntry, ArchivedVehicle, ArchivedCustomer):
            await session.exec(delete(table))


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade(database, SPEC.migrations)
    yield database
    await database.dispose()


async def test_shuffled_and_repeated_events_give_the_same_archive(db: Database) -> None:
    story = Story()
    events = with_envelopes(events_of(story), story)
    await feed(db, events)
    expected = await archive_of(db)

    entries = expected["entries"]
    assert dict(Counter(e["kind"] for e in entries)) == {
        "customer.registered": 1,
        "vehicle.registered": 1,
        "appointment.booked": 2,
        "appointment.closed": 1,
        "intake.opened": 2,
        "intake.inspected": 1,  # three versions, the newest kept
        "estimate.approved": 2,
        "repair_order.opened": 2,
        "extra_work.found": 1,
        "job.clocked": 2,
        "job.qc_recorded": 2,
        "payment.confirmed": 1,  # sent twice by the ERP, one entry
        "repair_order.settled": 1,
        "repair_order.delivered": 1,
        "complaint.opened": 1,
        "complaint.escalated": 1,
        "followup.visit_expired": 1,
        "followup.visit_closed": 1,
        "survey.answered": 1,
        "reminder.sent": 1,
        "comeback.recorded": 1,
    }
    assert len(entries) == len(events) - 3
    times = [e["occurred_at"] for e in entries]
    assert times == sorted(times)
    # Every entry found its car and customer, whichever ids its event named.
    for entry in entries:
        if entry["kind"] != "customer.registered":  # before the car
            assert entry["vehicle_id"] == str(story.vehicle_id), entry["kind"]
        assert entry["customer_id"] == str(story.customer_id), entry["kind"]
    by_kind = {e["kind"]: e for e in entries}
    approval = next(e for e in entries if e["kind"] == "estimate.approved")
    assert [x["description"] for x in approval["summary"]["declined_lines"]] == ["前刹车盘", "雨刮"]
    assert approval["summary"]["consents"][0]["channel"] == "in_person"
    delivery = by_kind["repair_order.delivered"]
    assert delivery["summary"]["technicians"] == ["tech-li"]
    assert delivery["summary"]["on_time"] is True
    bookings = [e for e in entries if e["kind"] == "appointment.booked"]
    assert [b["summary"]["rescheduled"] for b in bookings] == [False, True]
    assert by_kind["appointment.closed"]["summary"]["outcome"] == "arrived"
    clocked = [e["summary"] for e in entries if e["kind"] == "job.clocked"]
    assert [(c["technician_id"], c["hours"], c["reason"]) for c in clocked] == [
        ("tech-li", "0.5", "waiting_parts"),
        ("tech-li", "1.0", "done"),
    ]
    qc = [e["summary"]["passed"] for e in entries if e["kind"] == "job.qc_recorded"]
    assert qc == [False, True]
    # The first visit's intake and estimates joined its repair order, whatever came first.
    first_visit = [e["kind"] for e in entries if e["repair_order_id"] == str(story.orders[0])]
    assert first_visit.count("estimate.approved") == 2 and "intake.opened" in first_visit
    assert "intake.inspected" in first_visit
    walkaround = by_kind["intake.inspected"]
    assert walkaround["reference_id"] == str(story.intakes[0])
    assert walkaround["summary"]["version"] == 4
    assert walkaround["summary"]["photos"] == [
        {"file_id": str(story.intake_photos[1]), "position": "rear_bumper_left", "kind": "scratch"},
        {"file_id": str(story.intake_photos[2]), "position": "door_front_right", "kind": "dent"},
    ]
    assert walkaround["summary"]["photo_count"] == 2
    assert len(walkaround["summary"]["damage_marks"]) == 3
    assert walkaround["summary"]["signature_file_id"] == str(story.signature_file_id)
    payment = by_kind["payment.confirmed"]
    assert payment["repair_order_id"] == str(story.orders[0])  # found through the invoice
    assert payment["summary"]["amount"] == "678"
    assert by_kind["survey.answered"]["summary"]["nps"] == 9
    assert by_kind["comeback.recorded"]["repair_order_id"] == str(story.orders[1])
    # The cards hold the newest details, whatever came last.
    assert expected["vehicles"][0]["plate"] == "沪B99999"
    assert expected["customers"][0]["mobile"] == "13700137000"

    rng = random.Random(20261129)
    for attempt in range(4):
        await forget(db)
        stream = events + rng.sample(events, k=len(events) // 2)
        rng.shuffle(stream)
        await feed(db, stream, one_transaction=attempt % 2 == 1)
        assert await archive_of(db) == expected, f"attempt {attempt}"


async def test_an_older_event_never_overwrites_newer_details(db: Database) -> None:
    story = Story()
    events = with_envelopes(events_of(story), story)
    intakes = [e for e in events if isinstance(e, IntakeOpened)]
    await feed(db, [intakes[1]])
    registrations = [e for e in events if isinstance(e, CustomerRegistered | VehicleRegistered)]
    await feed(db, [*registrations, intakes[0]])  # registration and the first intake come late
    archive = await archive_of(db)
    assert archive["vehicles"][0]["plate"] == "沪B99999"
    assert archive["customers"][0]["mobile"] == "13700137000"


async def test_the_walk_around_keeps_its_newest_version_in_any_order(db: Database) -> None:
    """Three versions of a walk-around, each order of arrival, each twice, before and after
    the intake itself: one entry, the newest version, on the car, customer and visit."""
    story = Story()
    events = with_envelopes(events_of(story), story)
    versions = [e for e in events if isinstance(e, IntakeInspected)]
    intake = next(e for e in events if isinstance(e, IntakeOpened))
    opened = next(e for e in events if isinstance(e, RepairOrderOpened))
    expected = None
    for order in itertools.permutations(versions):
        await forget(db)
        await feed(db, [order[0], order[0], *order[1:], intake, order[2], opened, order[1]])
        archive = await archive_of(db)
        walkarounds = [e for e in archive["entries"] if e["kind"] == "intake.inspected"]
        assert len(walkarounds) == 1
        entry = walkarounds[0]
        assert entry["summary"]["version"] == 4 and entry["summary"]["photo_count"] == 2
        assert datetime.fromisoformat(entry["occurred_at"]) == versions[-1].inspected_at
        assert (entry["vehicle_id"], entry["customer_id"], entry["repair_order_id"]) == (
            str(story.vehicle_id),
            str(story.customer_id),
            str(story.orders[0]),
        )
        expected = expected or archive
        assert archive == expected, order


async def test_owner_changes_and_customer_edits_in_any_order(db: Database) -> None:
    """The vehicle's card follows its newest owner and the customer's card the newest edit,
    whatever order (and however often) the events arrive in."""
    story = Story()
    buyer = uuid.uuid4()
    first = story.customer("王芳", "13800138000")
    edited = story.customer("王芳", "13900139000")
    events = with_envelopes(
        [
            CustomerRegistered(branch=story.branch, customer=first, registered_at=T0),
            CustomerRegistered(branch=story.branch, registered_at=T0,
                               customer=CustomerSnapshot(id=buyer, name="李雷", mobile="136")),
            VehicleRegistered(branch=story.branch, customer_id=story.customer_id,
                              vehicle=story.vehicle("沪A12345"), registered_at=T0),
            VehicleOwnerChanged(branch=story.branch, vehicle=story.vehicle("沪A12345"),
                                previous_customer_id=story.customer_id, customer_id=buyer,
                                reason="sold", changed_by="advisor-1",
                                changed_at=T0 + timedelta(days=30)),
            CustomerUpdated(branch=story.branch, customer=edited, mobiles=["13900139000"],
                            updated_by="advisor-1", updated_at=T0 + timedelta(days=40)),
        ],
        story,
    )  # fmt: skip
    await feed(db, events)
    expected = await archive_of(db)
    assert expected["vehicles"][0]["customer_id"] == str(buyer)
    mobiles = {c["customer_id"]: c["mobile"] for c in expected["customers"]}
    assert mobiles[str(story.customer_id)] == "13900139000"
    kinds = Counter(e["kind"] for e in expected["entries"])
    assert kinds["vehicle.owner_changed"] == 1 and kinds["customer.updated"] == 1
    change = next(e for e in expected["entries"] if e["kind"] == "vehicle.owner_changed")
    assert change["customer_id"] == str(buyer)
    assert change["summary"]["previous_customer_id"] == str(story.customer_id)

    rng = random.Random(7)
    for attempt in range(3):
        await forget(db)
        stream = [*events, *events]
        rng.shuffle(stream)
        await feed(db, stream)
        assert await archive_of(db) == expected, f"attempt {attempt}"


# --- over the API ------------------------------------------------------------------------


@pytest_asyncio.fixture
async def records(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with RecordsClient(database_url, nats_server, tmp_path / "files") as client:
        yield client


async def seeded(client: httpx.AsyncClient, branch: str = "BR01") -> Story:
    story = Story(branch)
    await feed(runtime_of(client).db, with_envelopes(events_of(story), story))
    return story


CLERK = auth("records_clerk")
# Entries of one story's customer: one per event, the ERP's repeated payment once.
ENTRIES = 27


async def test_customer_timeline_pages_in_the_order_things_happened(records) -> None:
    story = await seeded(records)
    await seeded(records)  # someone else's file stays out of it
    url = f"/customers/{story.customer_id}/timeline"
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        r = await records.get(url, headers=auth("advisor"), params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        CustomerTimeline.model_validate(body)  # the documented shape
        assert body["name"] == "王芳" and body["erased"] is False
        seen += body["entries"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == ENTRIES
    times = [e["occurred_at"] for e in seen]
    assert times == sorted(times)
    assert {e["customer_id"] for e in seen} == {str(story.customer_id)}

    assert_problem(await records.get(url, headers=auth("advisor", branch="BR02")), 404)
    assert_problem(await records.get(url, headers=auth("technician")), 403)
    assert_problem(await records.get(f"/customers/{uuid.uuid4()}/timeline", headers=CLERK), 404)
    assert_problem(await records.get(url, headers=CLERK, params={"cursor": "nonsense"}), 422)


def instants(value: Any, key: str = "") -> list[str]:
    """Every time in a timeline's JSON: `occurred_at` and the summaries' `…_at`, `at` and
    `…_for` fields that hold one."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in instants(v, k)]
    if isinstance(value, list):
        return [t for v in value for t in instants(v, key)]
    if isinstance(value, str) and (key.endswith("at") or key.endswith("_for")) and "T" in value:
        return [value]
    return []


async def test_timelines_show_every_time_in_the_branch_zone(records) -> None:
    """Reception's booking carries the advisor's +08:00, its closing the UTC read back from
    its row: both, and every other time of the timeline, read in the branch's zone
    (Asia/Shanghai), the same instants as the events'."""
    story = Story()
    shanghai = ZoneInfo("Asia/Shanghai")
    events = [
        e.model_copy(update={"scheduled_for": e.scheduled_for.astimezone(shanghai)})
        if isinstance(e, AppointmentBooked)
        else e
        for e in events_of(story)
    ]
    await feed(runtime_of(records).db, with_envelopes(events, story))
    for url in (
        f"/vehicles/{story.vehicle_id}/timeline",
        f"/customers/{story.customer_id}/timeline",
    ):
        r = await records.get(url, headers=CLERK, params={"limit": 200})
        assert r.status_code == 200, r.text
        entries = r.json()["entries"]
        times = instants(entries)
        assert len(times) > len(entries), times  # the summaries' times are there too
        assert all(t.endswith("+08:00") for t in times), [t for t in times if "+08:00" not in t]
        by_kind = {e["kind"]: e for e in entries}
        booked = [e for e in entries if e["kind"] == "appointment.booked"][-1]
        closed = by_kind["appointment.closed"]
        assert booked["summary"]["scheduled_for"] == closed["summary"]["scheduled_for"]
        assert datetime.fromisoformat(closed["summary"]["scheduled_for"]) == T0 + timedelta(
            minutes=5
        )
        assert datetime.fromisoformat(closed["occurred_at"]) == T0 + timedelta(minutes=5)
        stamps = [datetime.fromisoformat(e["occurred_at"]) for e in entries]
        assert stamps == sorted(stamps)


async def test_export_holds_everything_about_the_customer(records) -> None:
    story = await seeded(records)
    url = f"/customers/{story.customer_id}/export"
    assert_problem(await records.get(url, headers=auth("advisor")), 403)
    assert_problem(await records.get(url, headers=auth("records_clerk", branch="BR02")), 404)
    r = await records.get(url, headers=auth("manager"))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["customer"]["name"] == "王芳"
    assert data["customer"]["mobile"] == "13700137000"
    assert [v["vin"] for v in data["vehicles"]] == [VIN]
    found = (await records.get("/vehicles", params={"vin": VIN}, headers=CLERK)).json()
    assert ([v["vin"] for v in found["items"]], found["next_cursor"]) == ([VIN], None)
    assert len(data["timeline"]) == ENTRIES
    assert [e["kind"] for e in data["timeline"] if e["kept_for_law"]] == ["repair_order.settled"]
    assert data["erasures"] == []


async def test_erasure_keeps_invoices_and_drops_personal_data(records) -> None:
    story = await seeded(records)
    url = f"/customers/{story.customer_id}/erasure"
    request = {"requested_by": "王芳 (in person, ID checked)", "request_channel": "in_person"}
    assert_problem(await records.post(url, headers=auth("advisor"), json=request), 403)
    assert_problem(
        await records.post(url, headers=auth("records_clerk", "BR02"), json=request), 404
    )
    assert_problem(await records.post(url, headers=CLERK, json={"request_channel": "fax"}), 422)
    key = {**CLERK, "Idempotency-Key": "erase-0001"}
    r = await records.post(url, headers=key, json=request)
    assert r.status_code == 201, r.text
    erasure = r.json()
    assert erasure["requested_by"] == request["requested_by"]
    assert erasure["entries_kept_for_law"] == 1
    assert erasure["vehicles_anonymised"] == 1
    assert erasure["files_erased"] == 0
    replay = await records.post(url, headers=key, json=request)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == erasure
    assert_problem(await records.post(url, headers=key, json={**request, "reason": "x"}), 422)
    assert_problem(await records.post(url, headers=CLERK, json=request), 409)

    # An event that was still on its way arrives after the erasure.
    late = Story()
    late.customer_id, late.vehicle_id = story.customer_id, story.vehicle_id
    second_intake = [e for e in events_of(late) if isinstance(e, IntakeOpened)][1]
    await feed(runtime_of(records).db, with_envelopes([second_intake], late))

    data = (await records.get(f"/customers/{story.customer_id}/export", headers=CLERK)).json()
    text = str(data["customer"]) + str(data["vehicles"]) + str(data["timeline"])
    for personal in ("王芳", "13800138000", "13700137000", "13900139000", "沪A12345", "沪B99999"):
        assert personal not in text, personal
    assert data["customer"]["erased_at"] and data["customer"]["name"] is None
    invoice = next(e for e in data["timeline"] if e["kind"] == "repair_order.settled")
    assert invoice["summary"]["invoice_number"] == "INV-2026-000001"
    assert invoice["summary"]["gross_total"] == "678"
    assert invoice["summary"]["totals"][0]["tax"] == "78"
    assert len(data["timeline"]) == ENTRIES + 1  # history kept, anonymised
    assert [e["requested_by"] for e in data["erasures"]] == [request["requested_by"]]
    assert data["erasures"][0]["erased_by"]

    timeline = (await records.get(f"/customers/{story.customer_id}/timeline", headers=CLERK)).json()
    assert timeline["erased"] is True and timeline["name"] is None
    car = (await records.get(f"/vehicles/{story.vehicle_id}/timeline", headers=CLERK)).json()
    VehicleTimeline.model_validate(car)
    assert car["plate"] is None and car["vin"] == VIN


async def test_erasure_deletes_the_files_only_the_customer_refers_to(records) -> None:
    async def stored(content: bytes, *refs: tuple[str, object]) -> str:
        r = await upload(records, content)
        assert r.status_code == 201, r.text
        file_id = r.json()["id"]
        for owner, owner_id in refs:
            r = await records.post(
                f"/files/{file_id}/references",
                headers=CLERK,
                json={"owner": owner, "owner_id": str(owner_id)},
            )
            assert r.status_code == 201, r.text
        return str(file_id)

    story = Story()
    someone_else = uuid.uuid4()
    intake = story.intakes[0]
    photo = await stored(JPEG + b"1", ("reception.intake_photo", intake))
    signature = await stored(PNG, ("reception.intake_signature", intake))
    finding = await stored(WEBP)  # named only by the extra work's event
    shared_photo = await stored(
        JPEG + b"2", ("reception.intake_photo", intake), ("reception.intake_photo", someone_else)
    )
    invoice = await stored(PDF, ("workorders.invoice_pdf", story.orders[0]))
    story.photo_file_ids = [uuid.UUID(finding)]
    await feed(runtime_of(records).db, with_envelopes(events_of(story), story))
    blobs = len(await stored_blobs(records))

    url = f"/customers/{story.customer_id}/erasure"
    r = await records.post(url, headers=CLERK, json={"requested_by": "王芳"})
    assert r.status_code == 201, r.text
    assert r.json()["files_erased"] == 3
    for gone in (photo, signature, finding):
        assert_problem(await records.get(f"/files/{gone}", headers=CLERK), 404)
    for kept in (shared_photo, invoice):
        assert (await records.get(f"/files/{kept}/content", headers=CLERK)).status_code == 200

    async def blobs_deleted() -> bool:
        return len(await stored_blobs(records)) == blobs - 3

    await eventually(blobs_deleted, what="the erased files' bytes deleted")


async def test_the_walk_arounds_photos_are_exported_and_erased_even_when_late(records) -> None:
    """The export names the intake's photos and signature; a walk-around archived only
    after the customer's erasure has its files erased too, and counted on the erasure."""

    async def stored(content: bytes, owner: str, owner_id: uuid.UUID) -> uuid.UUID:
        r = await upload(records, content)
        assert r.status_code == 201, r.text
        file_id = r.json()["id"]
        ref = {"owner": owner, "owner_id": str(owner_id)}
        r = await records.post(f"/files/{file_id}/references", headers=CLERK, json=ref)
        assert r.status_code == 201, r.text
        return uuid.UUID(file_id)

    db = runtime_of(records).db
    story, late = Story(), Story()
    late.customer_id, late.vehicle_id = story.customer_id, story.vehicle_id
    for s in (story, late):
        s.intake_photos = [
            await stored(
                JPEG + s.intakes[0].bytes + bytes([n]), "reception.intake_photo", s.intakes[0]
            )
            for n in range(3)
        ]
        s.signature_file_id = await stored(PNG + s.intakes[0].bytes, "reception.intake_signature",
                                           s.intakes[0])  # fmt: skip
    await feed(db, with_envelopes(events_of(story), story))
    url = f"/customers/{story.customer_id}/export"
    files = (await records.get(url, headers=CLERK)).json()["files"]
    named = {uuid.UUID(f["file_id"]): f for f in files}
    # The newest walk-around names two of the three photos taken, and the signature.
    assert set(named) == {*story.intake_photos[1:], story.signature_file_id}
    assert {(f["named_by"], f["reference_id"], f["stored"]) for f in files} == {
        ("intake.inspected", str(story.intakes[0]), True)
    }
    assert named[story.signature_file_id]["media_type"] == "image/png"

    # The other intake of the customer reaches records only after the erasure.
    r = await records.post(
        f"/customers/{story.customer_id}/erasure", headers=CLERK, json={"requested_by": "王芳"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["files_erased"] == 4  # the intake's three photos and signature
    walkaround: list[Contract] = [e for e in events_of(late) if isinstance(e, IntakeInspected)]
    await feed(db, with_envelopes(walkaround, late))
    # Every file the late intake refers to, the photo its newest version dropped included.
    for gone in (*late.intake_photos, late.signature_file_id):
        assert_problem(await records.get(f"/files/{gone}", headers=CLERK), 404)
    data = (await records.get(url, headers=CLERK)).json()
    assert data["erasures"][0]["files_erased"] == 4 + 4
    assert not any(f["stored"] for f in data["files"])
    # A stale version arriving later still changes nothing.
    await feed(db, with_envelopes(walkaround[:1], late))
    again = (await records.get(url, headers=CLERK)).json()
    assert again["erasures"] == data["erasures"] and again["timeline"] == data["timeline"]


@pytest.mark.postgres
async def test_concurrent_handlers_on_postgres_still_link_the_visit(pg_url: str) -> None:
    """Two replicas handle the repair order and the extra work found on it at the same
    moment: whichever commits second sees the other's entry."""
    database = Database(pg_url)
    await upgrade(database, SPEC.migrations)
    try:
        for _ in range(10):
            story = Story()
            events = with_envelopes(events_of(story), story)
            opened = next(e for e in events if isinstance(e, RepairOrderOpened))
            extra = next(e for e in events if isinstance(e, ExtraWorkFound))

            async def handle(event: Contract) -> None:
                async with database.transaction() as session:
                    await ROUTES[event.type].func(event, session)

            await asyncio.gather(handle(extra), handle(opened))
            async with database.reader() as session:
                linked = (
                    await session.exec(
                        select(TimelineEntry.vehicle_id, TimelineEntry.customer_id).where(
                            TimelineEntry.kind == "extra_work.found",
                            TimelineEntry.reference_id == story.extra_work_id,
                        )
                    )
                ).one()
            assert tuple(linked) == (story.vehicle_id, story.customer_id)
    finally:
        await database.dispose()


async def test_a_case_finds_the_car_through_entries_that_found_it_later(db: Database) -> None:
    """The escalation names only the complaint, the complaint only the customer and the
    visit, and the visit's car comes last: the car still reaches the escalation."""
    story = Story()
    events = with_envelopes(events_of(story), story)
    escalation, complaint, opened = (
        next(e for e in events if isinstance(e, kind))
        for kind in (ComplaintEscalated, ComplaintOpened, RepairOrderOpened)
    )
    await feed(db, [escalation, complaint, opened])
    archive = await archive_of(db)
    cars = {e["kind"]: e["vehicle_id"] for e in archive["entries"]}
    assert cars == dict.fromkeys(
        ["complaint.escalated", "complaint.opened", "repair_order.opened"], str(story.vehicle_id)
    )


@pytest.mark.postgres
async def test_concurrent_walk_around_versions_on_postgres_keep_the_newest(pg_url: str) -> None:
    """Replicas handle three versions of one walk-around at the same moment: one entry,
    the newest version, whichever commits last."""
    database = Database(pg_url)
    await upgrade(database, SPEC.migrations)
    try:
        for _ in range(10):
            story = Story()
            versions = [
                e for e in with_envelopes(events_of(story), story) if isinstance(e, IntakeInspected)
            ]

            async def handle(event: Contract) -> None:
                async with database.transaction() as session:
                    await ROUTES[event.type].func(event, session)

            await asyncio.gather(*(handle(e) for e in reversed(versions)))
            async with database.reader() as session:
                kept = (
                    await session.exec(
                        select(TimelineEntry.summary).where(
                            TimelineEntry.kind == "intake.inspected",
                            TimelineEntry.reference_id == story.intakes[0],
                        )
                    )
                ).all()
            assert [summary["version"] for summary in kept] == [4]
            assert kept[0]["signature_file_id"] == str(story.signature_file_id)
    finally:
        await database.dispose()


async def test_archiving_a_whole_story_never_scans_the_timeline(db: Database) -> None:
    """Every statement on the timeline while the handlers archive a customer's whole story
    (the entries of a visit finding each other by intake, booking and invoice) is served by
    an index: a scan would read the branch's whole archive for every event."""
    story = Story()
    events = with_envelopes(events_of(story), story)
    sent: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "timeline_entry" in statement and statement.startswith(("SELECT", "UPDATE")):
            # An executemany's statement is explained with its first set of parameters.
            sent.append((statement, parameters[0] if isinstance(parameters, list) else parameters))

    sa_event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    await feed(db, events)
    sa_event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    for column in ("intake_id", "appointment_id", "invoice_number"):
        assert any(f"timeline_entry.{column} =" in statement for statement, _ in sent), column

    async with db.engine.connect() as conn:
        for statement, parameters in sent:
            if db.is_sqlite:
                plan = " / ".join(
                    row[-1]
                    for row in await conn.exec_driver_sql(
                        f"EXPLAIN QUERY PLAN {statement}", parameters
                    )
                )
                assert "SCAN timeline_entry" not in plan, f"{statement}: {plan}"
            else:  # the planner takes any index that serves the query over a sequential scan
                driver = (await conn.get_raw_connection()).driver_connection
                assert driver is not None
                await driver.execute("SET enable_seqscan = off")
                rows = await driver.fetch(f"EXPLAIN {statement}", *parameters)
                await driver.execute("RESET enable_seqscan")
                plan = " / ".join(row[0] for row in rows)
                assert "Seq Scan on timeline_entry" not in plan, f"{statement}: {plan}"


async def test_entries_archived_before_the_link_columns_get_them(database_url: str) -> None:
    """Migration 0014 fills the link columns of the entries already archived: `intake_id`
    of the intake's own from their reference and of the estimate's and the repair order's
    from their summary, `appointment_id` of the intake and `invoice_number` of the
    settlement and of the ERP's payment from their summary."""
    db = Database(database_url)
    try:
        await upgrade(db, SPEC.migrations, "0013")
        intake, estimate, order, vehicle, booking, payment = (uuid.uuid4() for _ in range(6))
        invoice = "INV-2026-000007"
        rows = {  # kind: reference, repair order, summary
            "intake.opened": (intake, None, {"appointment_id": str(booking)}),
            "intake.inspected": (intake, None, {"version": 2}),
            "estimate.approved": (estimate, None, {"intake_id": str(intake)}),
            "repair_order.opened": (order, order, {"intake_id": str(intake), "number": "RO-1"}),
            "repair_order.settled": (order, order, {"invoice_number": invoice}),
            "payment.confirmed": (payment, None, {"invoice_number": invoice}),
            "vehicle.registered": (vehicle, None, {"vin": VIN}),
        }
        table = TimelineEntry.__table__  # type: ignore[attr-defined]
        async with db.transaction() as session:
            for kind, (reference, repair_order, summary) in rows.items():
                values = {
                    "id": uuid.uuid4(),
                    "event_id": str(uuid.uuid4()),
                    "kind": kind,
                    "branch": "BR01",
                    "occurred_at": T0,
                    "reference_id": reference,
                    "vehicle_id": vehicle,
                    "repair_order_id": repair_order,
                    "summary": summary,
                }
                await session.execute(sa_insert(table).values(values))
        await upgrade(db, SPEC.migrations)
        of_intake = {"intake.opened", "intake.inspected", "estimate.approved"}
        of_intake.add("repair_order.opened")
        expected = {
            kind: (
                intake if kind in of_intake else None,
                booking if kind == "intake.opened" else None,
                invoice if kind in ("repair_order.settled", "payment.confirmed") else None,
            )
            for kind in rows
        }
        async with db.reader() as session:
            query = select(
                TimelineEntry.kind,
                TimelineEntry.intake_id,
                TimelineEntry.appointment_id,
                TimelineEntry.invoice_number,
            )
            found = {kind: tuple(links) for kind, *links in (await session.exec(query)).all()}
            assert found == expected
            assert await handlers._order_of_intake(session, "BR01", intake) == order
            assert await handlers._intake_of_appointment(session, "BR01", booking) == vehicle
    finally:
        await db.dispose()
