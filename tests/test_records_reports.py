"""Records' management reports in process on a real database and nats-server: a constructed
November of one branch (and a second branch for the group) fed through the report consumers,
KPIs checked against answers worked out by hand, the drill-down, roles and bad input."""

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from services.records import report_handlers
from shared.contracts.followup import (
    ComebackRecorded,
    ComplaintEscalated,
    ComplaintOpened,
    ServqualAnswer,
    SurveyAnswered,
    VisitClosed,
)
from shared.contracts.reception import AppointmentBooked, AppointmentClosed
from shared.contracts.workorders import (
    DeliveredJob,
    InvoiceLine,
    JobClocked,
    RepairOrderDelivered,
    RepairOrderOpened,
    RepairOrderSettled,
)
from shared.events import Contract
from tests.harness import NatsServer, auth
from tests.test_bad_input import assert_problem
from tests.test_records_files import RecordsClient, runtime_of

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

MANAGER = auth("manager")
CLERK = auth("records_clerk")
HQ = auth("manager", "HQ")
NOVEMBER = {"period": "month", "on": "2026-11-15", "lang": "en"}
VIN = "LSVAU2180N2183294"
SERVQUAL = ("reliability", "responsiveness", "assurance", "empathy", "tangibles")


def local(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    """A time in Shanghai (UTC+8) on a day of November 2026, as UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@dataclass
class Order:
    branch: str = "BR01"
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    number: str = ""
    jobs: list[DeliveredJob] = field(default_factory=list)


class Month:
    """The events of a constructed month, and what every KPI must come to."""

    def __init__(self) -> None:
        self.events: list[Contract] = []
        self.orders: dict[str, Order] = {}
        self.customer, self.vehicle = uuid.uuid4(), uuid.uuid4()

    def order(self, name: str, branch: str = "BR01") -> Order:
        order = Order(branch=branch, number=f"RO-2026-{len(self.orders) + 1:06d}")
        self.orders[name] = order
        return order

    def opened(self, o: Order, at: datetime) -> None:
        self.events.append(
            RepairOrderOpened(repair_order_id=o.id, number=o.number, branch=o.branch,
                              intake_id=uuid.uuid4(), customer_id=self.customer,
                              vehicle_id=self.vehicle, vin=VIN, status="draft", opened_at=at)
        )  # fmt: skip

    def job(self, o: Order, group: str, kind: str, tech: str, flat: str) -> DeliveredJob:
        job = DeliveredJob(job_id=uuid.uuid4(), op_code=f"{group}-01", op_group=group, kind=kind,
                           technician_id=tech, flat_rate_hours=Decimal(flat))  # fmt: skip
        o.jobs.append(job)
        return job

    def delivered(self, o: Order, at: datetime, promised: datetime | None) -> None:
        self.events.append(
            RepairOrderDelivered(repair_order_id=o.id, number=o.number, branch=o.branch,
                                 customer_id=self.customer, vehicle_id=self.vehicle, vin=VIN,
                                 advisor="adv-1", odometer_km=42000, delivered_at=at,
                                 promised_at=promised, jobs=list(o.jobs))
        )  # fmt: skip

    def settled(self, o: Order, at: datetime, *lines: tuple[str, str, str, str]) -> None:
        """lines: (kind, pay type, quantity, net)"""
        self.events.append(
            RepairOrderSettled(
                repair_order_id=o.id, number=o.number, invoice_number=f"INV-{o.number}",
                branch=o.branch, customer_id=self.customer, vehicle_id=self.vehicle, vin=VIN,
                lines=[InvoiceLine(line_id=uuid.uuid4(), kind=k, pay_type=p,
                                   quantity=Decimal(q), net=Decimal(n)) for k, p, q, n in lines],
                settled_by="cashier-1", settled_at=at,
            )
        )  # fmt: skip

    def clocked(self, o: Order, job: DeliveredJob, start: datetime, hours: str) -> None:
        assert job.technician_id is not None
        end = start + timedelta(hours=float(hours))
        self.events.append(
            JobClocked(clock_id=uuid.uuid4(), repair_order_id=o.id, number=o.number,
                       branch=o.branch, job_id=job.job_id, op_code=job.op_code,
                       technician_id=job.technician_id, started_at=start, ended_at=end,
                       hours=Decimal(hours))
        )  # fmt: skip

    def visit(self, o: Order, at: datetime, outcome: str, reached: bool) -> uuid.UUID:
        visit_id = uuid.uuid4()
        self.events.append(
            VisitClosed(visit_id=visit_id, branch=o.branch, repair_order_id=o.id,
                        customer_id=self.customer, outcome=outcome, reached=reached, attempts=1,
                        closed_at=at)
        )  # fmt: skip
        return visit_id

    def survey(self, o: Order, at: datetime, overall: int, nps: int,
               servqual: dict[str, tuple[int, int]] | None = None) -> None:  # fmt: skip
        visit_id = self.visit(o, at, "surveyed", True)
        answers = [ServqualAnswer(dimension=d, expectation=e, perception=p)
                   for d, (e, p) in (servqual or {}).items()]  # fmt: skip
        self.events.append(
            SurveyAnswered(survey_id=uuid.uuid4(), visit_id=visit_id, branch=o.branch,
                           repair_order_id=o.id, customer_id=self.customer, overall=overall,
                           nps=nps, servqual=answers, answered_at=at)
        )  # fmt: skip

    def complaint(self, o: Order, at: datetime, severity: str) -> uuid.UUID:
        complaint_id = uuid.uuid4()
        self.events.append(
            ComplaintOpened(complaint_id=complaint_id, branch=o.branch, origin="call",
                            severity=severity, category="repair_quality", repair_order_id=o.id,
                            owner="agent-1", due_at=at + timedelta(days=1), opened_at=at)
        )  # fmt: skip
        return complaint_id

    def appointment(self, scheduled: datetime, outcome: str | None, branch: str = "BR01") -> None:
        appointment_id = uuid.uuid4()
        booked = scheduled - timedelta(days=2)
        self.events.append(
            AppointmentBooked(appointment_id=appointment_id, branch=branch,
                              customer_id=self.customer, scheduled_for=scheduled,
                              booked_by="adv-1", booked_at=booked)
        )  # fmt: skip
        if outcome is not None:
            self.events.append(
                AppointmentClosed(appointment_id=appointment_id, branch=branch,
                                  customer_id=self.customer, scheduled_for=scheduled,
                                  outcome=outcome, closed_by="adv-1", closed_at=scheduled)
            )  # fmt: skip


def november() -> Month:
    m = Month()
    ro1, ro2, ro3, ro4 = m.order("ro1"), m.order("ro2"), m.order("ro3"), m.order("ro4")
    ro5, ro6, ro7 = m.order("ro5"), m.order("ro6"), m.order("ro7", branch="BR02")

    # RO1: brakes by tech-A, on time, customer pay, surveyed well.
    m.opened(ro1, local(2, 9))
    j1 = m.job(ro1, "BRAKES", "repair", "tech-A", "2.0")
    m.clocked(ro1, j1, local(3, 8), "1.5")
    m.delivered(ro1, local(3, 9), promised=local(3, 10))
    m.settled(ro1, local(3, 9), ("labour", "customer", "2.0", "600"),
              ("part", "customer", "1", "400"), ("fee", "customer", "1", "50"))  # fmt: skip
    good = {d: (6, 7) for d in SERVQUAL} | {"reliability": (7, 5)}
    m.survey(ro1, local(6, 10), 9, 10, good)

    # RO2: engine by tech-B in two segments, late, warranty; a wrong number; a major complaint.
    m.opened(ro2, local(4, 9))
    j2 = m.job(ro2, "ENGINE", "repair", "tech-B", "1.0")
    m.clocked(ro2, j2, local(5, 8), "1.2")
    m.clocked(ro2, j2, local(5, 13), "1.0")
    m.delivered(ro2, local(5, 18), promised=local(5, 17))
    m.settled(ro2, local(5, 18), ("labour", "warranty", "1.0", "300"),
              ("part", "warranty", "1", "200"))  # fmt: skip
    m.visit(ro2, local(8, 10), "wrong_number", False)
    m.complaint(ro2, local(10, 11), "major")

    # RO3: opened at 00:30 local on 1 November (still 31 October in UTC), maintenance only,
    # no promise, internal pay; a detractor without SERVQUAL.
    m.opened(ro3, local(1, 0, 30))
    j3 = m.job(ro3, "OIL", "maintenance", "tech-A", "0.5")
    m.clocked(ro3, j3, local(1, 9), "0.5")
    m.delivered(ro3, local(1, 11), promised=None)
    m.settled(ro3, local(1, 11), ("labour", "internal", "0.5", "100"))
    m.survey(ro3, local(4, 10), 6, 5)

    # RO4: the brakes came back (a comeback of RO1), on time, a minor complaint.
    m.opened(ro4, local(20, 9))
    j4 = m.job(ro4, "BRAKES", "repair", "tech-A", "1.0")
    m.clocked(ro4, j4, local(21, 9), "1.0")
    m.delivered(ro4, local(21, 17), promised=local(21, 18))
    m.settled(ro4, local(21, 17), ("labour", "customer", "1.0", "250"))
    m.events.append(
        ComebackRecorded(comeback_id=uuid.uuid4(), branch="BR01", vehicle_id=m.vehicle,
                         op_group="BRAKES", repair_order_id=ro4.id, earlier_repair_order_id=ro1.id,
                         technician_id="tech-A", delivered_at=local(21, 17),
                         earlier_delivered_at=local(3, 9))
    )  # fmt: skip
    m.survey(ro4, local(24, 10), 7, 9, {d: (5, 5) for d in SERVQUAL})
    m.complaint(ro4, local(22, 10), "minor")

    # RO5: opened on 30 November, delivered and settled at 00:30 on 1 December local time
    # (still 30 November in UTC): in November's opened count only. Its clock ends in December.
    m.opened(ro5, local(30, 9))
    j5 = m.job(ro5, "BRAKES", "repair", "tech-B", "1.0")
    m.clocked(ro5, j5, local(30, 23, 30), "1.0")
    m.delivered(ro5, local(1, 0, 30, month=12), promised=None)
    m.settled(ro5, local(1, 0, 30, month=12), ("labour", "customer", "1.0", "999"))

    # RO6: opened, still in the workshop; a complaint opened minor, escalated as major (the
    # escalation is the newer word on its severity).
    m.opened(ro6, local(25, 9))
    case6 = m.complaint(ro6, local(25, 10), "minor")
    m.events.append(
        ComplaintEscalated(complaint_id=case6, branch="BR01", severity="major",
                           category="repair_quality", status="open", repair_order_id=ro6.id,
                           previous_owner="agent-1", escalated_to="manager-1",
                           due_at=local(28, 10), escalated_at=local(27, 10))
    )  # fmt: skip

    # RO7: the other branch.
    m.opened(ro7, local(9, 9))
    j7 = m.job(ro7, "AC", "repair", "tech-Z", "2.0")
    m.clocked(ro7, j7, local(10, 8), "2.5")
    m.delivered(ro7, local(10, 12), promised=local(10, 12))
    m.settled(ro7, local(10, 12), ("labour", "customer", "2.0", "1000"))

    # Appointments: two arrived, one no-show, one cancelled, one still open, one in December.
    m.appointment(local(3, 9), "arrived")
    m.appointment(local(4, 9), "no_show")
    m.appointment(local(5, 9), "cancelled")
    m.appointment(local(6, 9), "arrived")
    m.appointment(local(7, 9), None)
    m.appointment(local(2, 9, month=12), "arrived")
    return m


HANDLERS = {
    h.contract: h.func
    for h in __import__("services.records.handlers", fromlist=["subscriber"]).subscriber.handlers
    if h.durable.startswith("records__report_")
}


async def feed(client: httpx.AsyncClient, events: list[Contract], batch: bool = False) -> None:
    """Through the report consumers, one transaction per event (or all in one, like a
    fetched batch)."""
    db = runtime_of(client).db
    if batch:
        async with db.transaction() as session:
            for event in events:
                await HANDLERS[type(event)](event, session)
        return
    for event in events:
        async with db.transaction() as session:
            await HANDLERS[type(event)](event, session)


@pytest_asyncio.fixture
async def records(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with RecordsClient(database_url, nats_server, tmp_path / "files") as client:
        yield client


@pytest_asyncio.fixture
async def month(records: httpx.AsyncClient) -> Month:
    m = november()
    await feed(records, m.events)
    return m


async def kpis(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = await client.get("/reports/kpis", params={**NOVEMBER, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k["id"]: k for k in report["kpis"]}


async def test_every_kpi_handler_is_registered() -> None:
    contracts = {h.__name__ for h in HANDLERS}
    assert contracts == {
        "RepairOrderOpened", "RepairOrderDelivered", "RepairOrderSettled", "JobClocked",
        "QcRecorded", "AppointmentBooked", "AppointmentClosed", "VisitClosed", "SurveyAnswered",
        "ComebackRecorded", "ComplaintOpened", "ComplaintEscalated",
    }  # fmt: skip
    assert report_handlers.cents(Decimal("0.125")) == 13  # rounded half up, once


async def test_a_months_kpis_come_to_the_answers_worked_out_by_hand(
    records: httpx.AsyncClient, month: Month
) -> None:
    report = await kpis(records, MANAGER)
    assert (report["branch"], report["from_on"], report["to_on"]) == (
        "BR01",
        "2026-11-01",
        "2026-11-30",
    )
    k = by_id(report)
    value = {i: v["value"] for i, v in k.items()}
    assert value["repair_orders_opened"] == 6  # RO1–RO6 (RO3 at 00:30 local on the 1st)
    assert value["repair_orders_delivered"] == 4  # RO1–RO4; RO5 is December's
    assert value["revenue_total"] == 600 + 400 + 50 + 300 + 200 + 100 + 250
    assert value["revenue_labour"] == 600 + 300 + 100 + 250
    assert value["revenue_parts"] == 400 + 200
    assert value["revenue_fees"] == 50
    assert value["hours_sold"] == 2.0 + 1.0 + 0.5 + 1.0
    assert value["effective_labour_rate"] == round(1250 / 4.5, 2)
    # Efficiency: flat-rate 2.0+1.0+0.5+1.0 over clocked 1.5+2.2+0.5+1.0.
    assert value["technician_efficiency"] == round(4.5 / 5.2, 4)
    # Utilisation: 5.2 h clocked; tech-A on 3 days, tech-B on 1 (RO5's clock ends in
    # December local time), 8 h a day.
    assert value["technician_utilisation"] == round(5.2 / (4 * 8), 4)
    assert (k["on_time_delivery_rate"]["numerator"], k["on_time_delivery_rate"]["denominator"]) == (
        2,
        3,
    )
    assert value["on_time_delivery_rate"] == round(2 / 3, 4)
    assert value["first_time_fix_rate"] == round(1 - 1 / 3, 4)  # fix orders RO1, RO2, RO4
    assert value["follow_up_rate"] == 3 / 4  # RO2's number was wrong
    assert value["csi"] == round((9 + 6 + 7) / 3, 2)
    assert value["nps"] == round(100 * (2 - 1) / 3, 1)
    assert value["servqual_gap"] == round((-1.0 + 0.5 * 4) / 5, 2)
    assert value["complaint_rate"] == 3 / 4
    assert value["major_complaint_rate"] == 2 / 4  # RO2's, and RO6's escalated to major
    assert k["major_complaint_rate"]["target"] == 0.01
    assert k["major_complaint_rate"]["target_met"] is False
    assert value["appointment_show_rate"] == round(2 / 3, 4)

    revenue = {(r["pay_type"], r["kind"]): Decimal(r["net"]) for r in report["revenue"]}
    assert revenue == {
        ("customer", "labour"): Decimal("850.00"),
        ("customer", "part"): Decimal("400.00"),
        ("customer", "fee"): Decimal("50.00"),
        ("warranty", "labour"): Decimal("300.00"),
        ("warranty", "part"): Decimal("200.00"),
        ("internal", "labour"): Decimal("100.00"),
    }
    tech = {t["technician_id"]: t for t in report["technicians"]}
    assert set(tech) == {"tech-A", "tech-B"}
    assert tech["tech-A"]["efficiency"] == round(3.5 / 3.0, 4)
    assert tech["tech-B"]["efficiency"] == round(1.0 / 2.2, 4)
    assert (tech["tech-A"]["days_clocked"], tech["tech-A"]["utilisation"]) == (3, 0.125)
    assert (tech["tech-B"]["days_clocked"], tech["tech-B"]["utilisation"]) == (1, 0.275)
    gaps = {q["dimension"]: q["gap"] for q in report["servqual"]}
    assert gaps == {"reliability": -1.0, **{d: 0.5 for d in SERVQUAL[1:]}}
    daily = {d["day"]: d for d in report["daily"]}
    assert len(daily) == 30
    assert daily["2026-11-01"]["opened"] == 1 and daily["2026-11-01"]["delivered"] == 1
    assert Decimal(daily["2026-11-03"]["revenue"]) == 1050
    assert sum(d["delivered"] for d in daily.values()) == 4


async def test_the_group_adds_the_other_branch_and_a_branch_sees_only_its_own(
    records: httpx.AsyncClient, month: Month
) -> None:
    group = by_id(await kpis(records, HQ))
    assert group["repair_orders_delivered"]["value"] == 5
    assert group["revenue_total"]["value"] == 1900 + 1000
    assert group["on_time_delivery_rate"]["value"] == round(3 / 4, 4)  # RO7 on the dot
    other = by_id(await kpis(records, HQ, branch="BR02"))
    assert other["repair_orders_delivered"]["value"] == 1
    assert other["technician_efficiency"]["value"] == round(2.0 / 2.5, 4)
    assert other["appointment_show_rate"]["value"] is None  # nothing to divide
    mine = await kpis(records, auth("manager", "BR02"))
    assert mine["branch"] == "BR02" and by_id(mine)["revenue_total"]["value"] == 1000
    r = await records.get("/reports/kpis", params={**NOVEMBER, "branch": "BR02"}, headers=MANAGER)
    assert_problem(r, 403)
    r = await records.get("/reports/kpis", params={**NOVEMBER, "branch": "group"}, headers=MANAGER)
    assert_problem(r, 403)


async def test_periods_day_week_and_custom(records: httpx.AsyncClient, month: Month) -> None:
    day = by_id(await kpis(records, MANAGER, period="day", on="2026-11-01"))
    assert day["repair_orders_opened"]["value"] == 1  # RO3 at 00:30 local
    assert day["revenue_total"]["value"] == 100
    week = await kpis(records, MANAGER, period="week", on="2026-11-04")  # a Wednesday
    assert (week["from_on"], week["to_on"]) == ("2026-11-02", "2026-11-08")
    assert by_id(week)["repair_orders_delivered"]["value"] == 2  # RO1, RO2
    custom = await kpis(records, MANAGER, period="custom", from_on="2026-11-20", to_on="2026-12-01")
    assert by_id(custom)["repair_orders_delivered"]["value"] == 2  # RO4, RO5
    assert len(custom["daily"]) == 12


async def test_events_in_any_order_and_repeated_give_the_same_report(
    records: httpx.AsyncClient,
) -> None:
    m = november()
    shuffled = m.events + m.events[: len(m.events) // 2]
    random.Random(7).shuffle(shuffled)
    await feed(records, shuffled[:40])
    await feed(records, shuffled[40:], batch=True)
    once = await kpis(records, MANAGER)
    await feed(records, m.events)  # everything again
    again = await kpis(records, MANAGER)
    for report in (once, again):
        report.pop("generated_at")
    assert once == again
    k = by_id(once)
    assert k["repair_orders_delivered"]["value"] == 4
    assert k["major_complaint_rate"]["value"] == 2 / 4
    assert k["revenue_total"]["value"] == 1900


async def drill_all(
    client: httpx.AsyncClient, kpi: str, limit: int = 2, **params: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**NOVEMBER, **params, "limit": limit}
        if cursor:
            query["cursor"] = cursor
        r = await client.get(f"/reports/kpis/{kpi}/items", params=query, headers=CLERK)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return page, items


async def test_every_number_drills_down_to_what_is_behind_it(
    records: httpx.AsyncClient, month: Month
) -> None:
    o = {name: str(order.id) for name, order in month.orders.items()}

    page, items = await drill_all(records, "on_time_delivery_rate")
    assert (page["total"], page["counted"]) == (3, 2)
    assert {i["repair_order_id"]: i["counted"] for i in items} == {
        o["ro1"]: True, o["ro2"]: False, o["ro4"]: True
    }  # fmt: skip
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)

    page, items = await drill_all(records, "first_time_fix_rate")
    assert {i["repair_order_id"]: i["counted"] for i in items} == {
        o["ro1"]: True, o["ro2"]: True, o["ro4"]: False
    }  # fmt: skip
    page, items = await drill_all(records, "repair_orders_opened", limit=4)
    assert page["total"] == 6 and len(items) == 6
    assert {i["number"] for i in items} == {month.orders[n].number for n in
                                            ("ro1", "ro2", "ro3", "ro4", "ro5", "ro6")}  # fmt: skip
    page, items = await drill_all(records, "revenue_total")
    assert sum(i["detail"]["net_cents"] for i in items) == 1900 * 100
    page, items = await drill_all(records, "revenue_total", pay_type="warranty")
    assert [i["repair_order_id"] for i in items] == [o["ro2"]]
    assert items[0]["detail"]["pay_type_net_cents"] == (300 + 200) * 100
    page, items = await drill_all(records, "revenue_total", pay_type="customer")
    assert sum(i["detail"]["pay_type_net_cents"] for i in items) == (850 + 400 + 50) * 100
    page, items = await drill_all(records, "technician_efficiency", technician="tech-A")
    assert {i["repair_order_id"] for i in items} == {o["ro1"], o["ro3"], o["ro4"]}
    assert sum(i["detail"]["flat_rate_centihours"] for i in items) == 350
    page, items = await drill_all(records, "technician_utilisation", technician="tech-B")
    assert sum(i["detail"]["centihours"] for i in items) == 220  # not RO5's December clock
    page, items = await drill_all(records, "follow_up_rate")
    assert (page["total"], page["counted"]) == (4, 3)
    page, items = await drill_all(records, "nps")
    assert (page["total"], page["counted"]) == (3, 2)  # two promoters
    page, items = await drill_all(records, "major_complaint_rate")
    assert {i["repair_order_id"] for i in items if i["counted"]} == {o["ro2"], o["ro6"]}
    page, items = await drill_all(records, "appointment_show_rate")
    assert (page["total"], page["counted"]) == (3, 2)
    page, items = await drill_all(records, "follow_up_rate", counted="true")
    assert {i["repair_order_id"] for i in items} == {o["ro1"], o["ro3"], o["ro4"]}
    # The rows left out of the numerator: the comeback, the late delivery, the detractor.
    page, items = await drill_all(records, "first_time_fix_rate", counted="false")
    assert [i["repair_order_id"] for i in items] == [o["ro4"]]
    assert (page["total"], page["counted"]) == (3, 2)  # the whole number, not the filter
    page, items = await drill_all(records, "on_time_delivery_rate", counted="false")
    assert [i["repair_order_id"] for i in items] == [o["ro2"]]
    page, items = await drill_all(records, "nps", counted="false")
    assert [i["repair_order_id"] for i in items] == [o["ro3"]]

    r = await records.get("/reports/kpis/happiness/items", params=NOVEMBER, headers=CLERK)
    assert_problem(r, 404)
    r = await records.get(
        "/reports/kpis/csi/items", params={**NOVEMBER, "cursor": "nope"}, headers=CLERK
    )
    assert_problem(r, 422, "cursor")


async def test_definitions_are_served_with_versions(records: httpx.AsyncClient) -> None:
    r = await records.get("/reports/definitions", headers=CLERK)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"]
    ids = {d["id"] for d in body["definitions"]}
    assert {"first_time_fix_rate", "major_complaint_rate", "appointment_show_rate"} <= ids
    for d in body["definitions"]:
        assert d["version"] >= 1 and d["formula"] and d["counts"] and d["excludes"]
        assert d["name_zh"] and d["name_en"] and d["formula_zh"] and d["excludes_zh"]
    major = next(d for d in body["definitions"] if d["id"] == "major_complaint_rate")
    assert (major["target"], major["good_when"]) == (0.01, "below")


async def test_only_managers_and_records_clerks_read_reports(records: httpx.AsyncClient) -> None:
    paths = ["/reports/kpis", "/reports/kpis.csv", "/reports/kpis.pdf", "/reports/definitions",
             "/reports/kpis/csi/items", "/reports/schedules", "/reports/runs"]  # fmt: skip
    for role in ("advisor", "technician", "foreman", "cashier", "followup_agent", "erp", "admin"):
        for path in paths:
            assert_problem(await records.get(path, headers=auth(role)), 403)
    assert_problem(await records.get("/reports/kpis"), 401)
    for headers in (MANAGER, CLERK):
        assert (await records.get("/reports/kpis", headers=headers)).status_code == 200


async def test_bad_periods_are_refused_naming_the_field(records: httpx.AsyncClient) -> None:
    cases = [
        ({"period": "year"}, "period"),
        ({"period": "day", "on": "2026-13-01"}, "on"),
        ({"period": "custom", "to_on": "2026-11-30"}, "from_on"),
        ({"period": "custom", "from_on": "2026-11-01"}, "to_on"),
        ({"period": "custom", "from_on": "2026-11-30", "to_on": "2026-11-01"}, "to_on"),
        ({"period": "custom", "from_on": "2020-01-01", "to_on": "2026-11-01"}, "to_on"),
        ({"lang": "fr"}, "lang"),
    ]
    for params, name in cases:
        r = await records.get("/reports/kpis", params=params, headers=MANAGER)
        assert_problem(r, 422, name)
    r = await records.get("/reports/kpis.doc", headers=MANAGER)
    assert r.status_code in (404, 422)


async def test_an_orders_events_handled_at_the_same_moment_all_land(
    records: httpx.AsyncClient,
) -> None:
    """Replicas handling an order's opened, delivered and settled events at the same moment
    (real concurrency on PostgreSQL) each fill their own columns of the one order row."""
    m = Month()
    for n in range(10):
        o = m.order(f"ro{n}")
        m.opened(o, local(10, 9))
        m.job(o, "BRAKES", "repair", "tech-A", "1.0")
        m.delivered(o, local(11, 9), promised=local(11, 10))
        m.settled(o, local(11, 9), ("labour", "customer", "1.0", "300"))
    db = runtime_of(records).db

    async def handle(event: Contract) -> None:
        async with db.transaction() as session:
            await HANDLERS[type(event)](event, session)

    await asyncio.gather(*(handle(e) for e in m.events))
    k = by_id(await kpis(records, MANAGER))
    assert k["repair_orders_opened"]["value"] == 10
    assert k["repair_orders_delivered"]["value"] == 10
    assert k["revenue_total"]["value"] == 3000
    assert k["on_time_delivery_rate"]["value"] == 1.0


async def test_drill_down_adds_up_to_every_number_for_a_branch_and_the_group(
    records: httpx.AsyncClient, month: Month
) -> None:
    for headers in (MANAGER, HQ):
        report = by_id(await kpis(records, headers))

        async def drill(
            kpi: str, headers: dict[str, str] = headers, **params: Any
        ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
            items: list[dict[str, Any]] = []
            cursor = None
            while True:
                query = {**NOVEMBER, **params, "limit": 200}
                if cursor:
                    query["cursor"] = cursor
                r = await records.get(f"/reports/kpis/{kpi}/items", params=query, headers=headers)
                assert r.status_code == 200, r.text
                page = r.json()
                items += page["items"]
                cursor = page["next_cursor"]
                if cursor is None:
                    assert page["total"] == len(items)
                    return page, items

        for kpi in ("repair_orders_opened", "repair_orders_delivered"):
            page, _ = await drill(kpi)
            assert page["total"] == report[kpi]["value"], kpi
        for kpi in ("on_time_delivery_rate", "first_time_fix_rate", "follow_up_rate",
                    "appointment_show_rate"):  # fmt: skip
            page, _ = await drill(kpi)
            assert (page["counted"], page["total"]) == (
                report[kpi]["numerator"],
                report[kpi]["denominator"],
            ), kpi
        page, _ = await drill("csi")
        assert page["total"] == report["csi"]["denominator"]
        for kpi in ("complaint_rate", "major_complaint_rate"):
            page, _ = await drill(kpi)
            assert page["counted"] == report[kpi]["numerator"], kpi
        _, items = await drill("revenue_total")
        assert (
            sum(i["detail"]["net_cents"] for i in items) == report["revenue_total"]["value"] * 100
        )
        assert sum(i["detail"]["labour_cents"] for i in items) == (
            report["revenue_labour"]["value"] * 100
        )
        assert (
            sum(i["detail"]["sold_centihours"] for i in items)
            == report["hours_sold"]["value"] * 100
        )
        _, items = await drill("technician_efficiency")
        efficiency = report["technician_efficiency"]
        assert sum(i["detail"]["flat_rate_centihours"] for i in items) == round(
            efficiency["numerator"] * 100
        )
        assert sum(i["detail"]["worked_centihours"] for i in items) == round(
            efficiency["denominator"] * 100
        )
        _, items = await drill("technician_utilisation")
        assert sum(i["detail"]["centihours"] for i in items) == round(
            report["technician_utilisation"]["numerator"] * 100
        )
