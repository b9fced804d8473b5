"""The customer and vehicle archive: timelines rebuilt from a shuffled and duplicated event
stream equal the ones from the ordered stream; the customer timeline, data export and
erasure over the API, on a real database (SQLite, and PostgreSQL in its leg)."""

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
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
    DeliveredJob,
    EstimateApproved,
    EstimateLine,
    ExtraWorkFound,
    IntakeOpened,
    RepairOrderDelivered,
    RepairOrderOpened,
    VehicleRegistered,
    VehicleSnapshot,
)
from shared.contracts.followup import VisitExpired
from shared.contracts.workorders import InvoiceLine, PaymentTaken, PayTypeTotal, RepairOrderSettled
from shared.db import Database
from shared.events import Contract
from shared.migrations import upgrade
from tests.harness import NatsServer, auth
from tests.test_bad_input import assert_problem
from tests.test_records_files import RecordsClient, runtime_of

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
        IntakeOpened(intake_id=s.intakes[0], branch=s.branch, opened_at=at + timedelta(minutes=5),
                     advisor="adv-zhao", customer=s.customer("王芳", "13900139000"),
                     vehicle=s.vehicle("沪A12345"), odometer_km=42000, concerns=["刹车异响"]),
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
                       proposed_lines=[hose], found_at=at + timedelta(hours=2)),
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
        # The second visit: a new plate and a new phone number.
        IntakeOpened(intake_id=s.intakes[1], branch=s.branch, opened_at=visit2,
                     advisor="adv-zhao", customer=s.customer("王芳", "13700137000"),
                     vehicle=s.vehicle("沪B99999"), odometer_km=47000, concerns=["保养"]),
        RepairOrderOpened(repair_order_id=s.orders[1], number="RO-2026-000090", branch=s.branch,
                          intake_id=s.intakes[1], customer_id=s.customer_id,
                          vehicle_id=s.vehicle_id, vin=VIN, status="draft",
                          opened_at=visit2 + timedelta(minutes=1)),
    ]  # fmt: skip


def with_envelopes(events: list[Contract], story: Story) -> list[Contract]:
    return [envelope(e, story.vehicle_id) for e in events]


ROUTES = {h.contract.type: h for h in handlers.subscriber.handlers}


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
        customers = (await session.exec(select(ArchivedCustomer))).all()
        vehicles = (await session.exec(select(ArchivedVehicle))).all()
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
    assert [e["kind"] for e in entries] == [
        "customer.registered",
        "vehicle.registered",
        "intake.opened",
        *sorted(["estimate.approved", "repair_order.opened"], key=lambda k: next(
            e["id"] for e in entries if e["kind"] == k
        )),
        "extra_work.found",
        "estimate.approved",
        *sorted(["repair_order.settled", "repair_order.delivered"], key=lambda k: next(
            e["id"] for e in entries if e["kind"] == k
        )),
        "complaint.opened",
        "complaint.escalated",
        "followup.visit_expired",
        "intake.opened",
        "repair_order.opened",
    ]  # fmt: skip
    assert len({e["event_id"] for e in entries}) == len(events)
    # Entries that named only the visit or the case found their car and customer.
    by_kind = {e["kind"]: e for e in entries}
    for kind in ("extra_work.found", "complaint.escalated", "complaint.opened"):
        assert by_kind[kind]["vehicle_id"] == str(story.vehicle_id), kind
        assert by_kind[kind]["customer_id"] == str(story.customer_id), kind
    approval = next(e for e in entries if e["kind"] == "estimate.approved")
    assert [x["description"] for x in approval["summary"]["declined_lines"]] == ["前刹车盘", "雨刮"]
    assert approval["summary"]["consents"][0]["channel"] == "in_person"
    delivery = by_kind["repair_order.delivered"]
    assert delivery["summary"]["technicians"] == ["tech-li"]
    assert delivery["summary"]["on_time"] is True
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
    newest_intake = events[-2]
    await feed(db, [newest_intake])
    await feed(db, events[:3])  # registration and the first intake come late
    archive = await archive_of(db)
    assert archive["vehicles"][0]["plate"] == "沪B99999"
    assert archive["customers"][0]["mobile"] == "13700137000"


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
    assert len(seen) == 14
    times = [e["occurred_at"] for e in seen]
    assert times == sorted(times)
    assert {e["customer_id"] for e in seen} == {str(story.customer_id)}

    assert_problem(await records.get(url, headers=auth("advisor", branch="BR02")), 404)
    assert_problem(await records.get(url, headers=auth("technician")), 403)
    assert_problem(await records.get(f"/customers/{uuid.uuid4()}/timeline", headers=CLERK), 404)
    assert_problem(await records.get(url, headers=CLERK, params={"cursor": "nonsense"}), 422)


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
    assert len(data["timeline"]) == 14
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
    replay = await records.post(url, headers=key, json=request)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == erasure
    assert_problem(await records.post(url, headers=key, json={**request, "reason": "x"}), 422)
    assert_problem(await records.post(url, headers=CLERK, json=request), 409)

    # An event that was still on its way arrives after the erasure.
    late = Story()
    late.customer_id, late.vehicle_id = story.customer_id, story.vehicle_id
    await feed(runtime_of(records).db, with_envelopes([events_of(late)[-2]], late))

    data = (await records.get(f"/customers/{story.customer_id}/export", headers=CLERK)).json()
    text = str(data["customer"]) + str(data["vehicles"]) + str(data["timeline"])
    for personal in ("王芳", "13800138000", "13700137000", "13900139000", "沪A12345", "沪B99999"):
        assert personal not in text, personal
    assert data["customer"]["erased_at"] and data["customer"]["name"] is None
    invoice = next(e for e in data["timeline"] if e["kind"] == "repair_order.settled")
    assert invoice["summary"]["invoice_number"] == "INV-2026-000001"
    assert invoice["summary"]["gross_total"] == "678"
    assert invoice["summary"]["totals"][0]["tax"] == "78"
    assert len(data["timeline"]) == 15  # history kept, anonymised
    assert [e["requested_by"] for e in data["erasures"]] == [request["requested_by"]]
    assert data["erasures"][0]["erased_by"]

    timeline = (await records.get(f"/customers/{story.customer_id}/timeline", headers=CLERK)).json()
    assert timeline["erased"] is True and timeline["name"] is None
    car = (await records.get(f"/vehicles/{story.vehicle_id}/timeline", headers=CLERK)).json()
    VehicleTimeline.model_validate(car)
    assert car["plate"] is None and car["vin"] == VIN


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
            opened, extra = events[4], events[5]
            assert isinstance(opened, RepairOrderOpened) and isinstance(extra, ExtraWorkFound)

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
