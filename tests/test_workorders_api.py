"""Workorders' API in process on a real database and nats-server: repair orders from the
customer's consent, dispatch, clocking, extra work, QC, settlement and delivery, with
ETags, idempotency, roles, branches and bad input."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import nats
import nats.js.errors
import pytest
import pytest_asyncio
from sqlmodel import select

from services.workorders import service
from services.workorders.config import Settings
from services.workorders.main import create_app
from services.workorders.models import OutboxEvent, RepairOrder
from shared.contracts import (
    ConsentRef,
    CustomerSnapshot,
    EstimateApproved,
    EstimateLine,
    IntakeOpened,
    VehicleSnapshot,
)
from shared.db import Database
from shared.events import decode, encode
from tests.harness import NatsServer, auth, eventually, token
from tests.test_bad_input import assert_problem

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

FOREMAN = auth("foreman")
ADVISOR = auth("advisor")
QC = auth("qc")
CASHIER = auth("cashier")
MANAGER = auth("manager")  # sees every field of an order and a job
SCREEN = auth("screen")
TECH_LI = {"Authorization": f"Bearer {token('technician', sub='tech-li')}"}
TECH_WANG = {"Authorization": f"Bearer {token('technician', sub='tech-wang')}"}
# In-process tests run the promise and dispatch rules with these fixed times and a clock
# they pass in; tests against real processes, whose clock is the wall clock, use
# `approved_now`.
PROMISED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
APPROVED = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def labour(op_code: str, hours: str, net: str, **extra: Any) -> EstimateLine:
    return EstimateLine(
        line_id=uuid.uuid4(),
        kind="labour",
        description=f"op {op_code}",
        op_code=op_code,
        op_group=op_code.split("-")[0].lower(),
        flat_rate_hours=Decimal(hours),
        labour_rate=Decimal("300"),
        net=Decimal(net),
        **extra,
    )


def part(number: str, net: str, op_code: str | None = None, **extra: Any) -> EstimateLine:
    return EstimateLine(
        line_id=uuid.uuid4(),
        kind="part",
        description=f"part {number}",
        op_code=op_code,
        part_number=number,
        unit_price=Decimal(net),
        net=Decimal(net),
        **extra,
    )


def approved(
    intake_id: uuid.UUID | None = None,
    lines: list[EstimateLine] | None = None,
    declined: list[EstimateLine] | None = None,
    **extra: Any,
) -> EstimateApproved:
    lines = lines if lines is not None else [labour("BRK-010", "1.5", "450")]
    declined = declined or []
    fields: dict[str, Any] = {
        "estimate_id": uuid.uuid4(),
        "revision": 1,
        "intake_id": intake_id or uuid.uuid4(),
        "branch": "BR01",
        "customer_id": uuid.uuid4(),
        "customer_name": "王芳",
        "vehicle_id": uuid.uuid4(),
        "vin": "LSVAU218XN2183294",
        "plate": "沪A12345",
        "advisor": "advisor-zhao",
        "odometer_km": 42000,
        "promised_at": PROMISED,
        "approved_lines": lines,
        "declined_lines": declined,
        "consents": [
            ConsentRef(
                line_id=line.line_id,
                decision="approved" if line in lines else "declined",
                by="王芳",
                channel="in_person",
                at=extra.get("approved_at", APPROVED),
            )
            for line in [*lines, *declined]
        ],
        "approved_at": APPROVED,
    }
    fields.update(extra)
    return EstimateApproved(**fields)


def approved_now(lines: list[EstimateLine] | None = None, **extra: Any) -> EstimateApproved:
    """Consent given a minute ago for a car promised in six hours, by the wall clock: what
    a real process's promise checks, delivery and reports compare with."""
    now = datetime.now(UTC).replace(microsecond=0)
    times = {"approved_at": now - timedelta(minutes=1), "promised_at": now + timedelta(hours=6)}
    return approved(lines=lines, **{**times, **extra})


class Workorders:
    def __init__(self, client: httpx.AsyncClient, db: Database, nats_url: str):
        self.client, self.db, self.nats_url = client, db, nats_url

    async def consent(self, event: EstimateApproved) -> dict[str, Any]:
        async with self.db.transaction() as session:
            order = await service.apply_consent(session, event)
        assert order is not None
        return await self.order(order.id)

    async def order(self, order_id: Any) -> dict[str, Any]:
        r = await self.client.get(f"/repair-orders/{order_id}", headers=MANAGER)
        assert r.status_code == 200, r.text
        return {**r.json(), "etag": r.headers["ETag"]}

    async def job(self, job_id: Any) -> dict[str, Any]:
        r = await self.client.get(f"/jobs/{job_id}", headers=MANAGER)
        assert r.status_code == 200, r.text
        return {**r.json(), "etag": r.headers["ETag"]}

    async def assign(self, job_id: Any, technician: str = "tech-li", bay: str = "B1") -> dict:
        job = await self.job(job_id)
        r = await self.client.put(
            f"/jobs/{job_id}/assignment",
            headers={**FOREMAN, "If-Match": job["etag"]},
            json={
                "technician_id": technician,
                "bay": bay,
                "planned_start_at": APPROVED.isoformat(),
            },
        )
        assert r.status_code == 200, r.text
        return r.json()

    async def move(self, order_id: Any, to: str) -> httpx.Response:
        order = await self.order(order_id)
        return await self.client.post(
            f"/repair-orders/{order_id}/transitions",
            headers={**FOREMAN, "If-Match": order["etag"]},
            json={"to": to},
        )

    async def events(self, type_: str) -> list[dict[str, Any]]:
        async with self.db.reader() as session:
            rows = (await session.exec(select(OutboxEvent).order_by(OutboxEvent.seq))).all()
            envelopes = [decode(r.payload) for r in rows]
        return [e.data for e in envelopes if e.type == type_]


@pytest_asyncio.fixture
async def wo(database_url: str, nats_server: NatsServer) -> AsyncIterator[Workorders]:
    app = create_app(Settings(database_url=database_url, nats_url=nats_server.url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield Workorders(client, app.state.runtime.db, nats_server.url)


# --- consent ---------------------------------------------------------------------------


async def test_consent_opens_the_order_with_jobs_parts_and_declined_lines(wo: Workorders):
    brakes = labour("BRK-010", "1.5", "450")
    pads = part("BP-4411", "380", op_code="BRK-010")
    oil = part("OIL-5W30", "200")
    wipers = part("WB-22", "90")
    order = await wo.consent(approved(lines=[brakes, pads, oil], declined=[wipers]))
    assert order["status"] == "open"
    assert order["number"].startswith("RO-2026-")
    assert order["promised_at"].startswith("2026-11-30T09:00")
    [job] = order["jobs"]
    assert (job["op_code"], job["op_group"], job["flat_rate_hours"]) == ("BRK-010", "brk", "1.5")
    assert [p["part_number"] for p in job["parts"]] == ["BP-4411"]
    assert [line["part_number"] for line in order["other_lines"]] == ["OIL-5W30"]
    assert [line["part_number"] for line in order["declined_lines"]] == ["WB-22"]
    assert job["status"] == "pending"


async def test_consent_before_the_intake_opens_one_order_and_the_intake_leaves_it(
    wo: Workorders,
):
    event = approved()
    order = await wo.consent(event)
    intake = IntakeOpened(
        intake_id=event.intake_id,
        branch="BR01",
        opened_at=APPROVED - timedelta(hours=1),
        advisor="advisor-zhao",
        customer=CustomerSnapshot(id=event.customer_id, name="王芳"),
        vehicle=VehicleSnapshot(id=event.vehicle_id, vin=event.vin),
        odometer_km=42000,
    )
    async with wo.db.transaction() as session:
        again = await service.open_draft_from_intake(session, intake)
    assert str(again.id) == order["id"]
    assert again.status == "open"
    assert len(await wo.events("workorders.repair_order.opened.v1")) == 1


async def test_a_repeated_or_later_revision_keeps_jobs_once_and_the_last_promise(
    wo: Workorders,
):
    first = approved()
    await wo.consent(first)
    await wo.consent(first)  # redelivered
    later = first.model_copy(
        update={
            "revision": 2,
            "promised_at": PROMISED + timedelta(hours=3),
            "approved_at": APPROVED + timedelta(hours=1),
        }
    )
    order = await wo.consent(later)
    assert len(order["jobs"]) == 1
    assert order["promised_at"].startswith("2026-11-30T12:00")
    assert [p["source"] for p in order["promises"]] == ["estimate", "estimate"]
    # An older answer arriving late does not override the last promise agreed.
    order = await wo.consent(
        first.model_copy(update={"promised_at": PROMISED - timedelta(hours=5)})
    )
    assert order["promised_at"].startswith("2026-11-30T12:00")


async def test_consent_through_jetstream_with_its_durable_consumer(wo: Workorders):
    event = approved()
    envelope = event.to_envelope(subject=str(event.estimate_id))
    nc = await nats.connect(wo.nats_url)
    try:
        js = nc.jetstream()

        async def published() -> bool:
            # The service creates reception's stream when its consumer starts; until then
            # nothing answers. Repeats are dropped by the stream (same Nats-Msg-Id).
            try:
                await js.publish(
                    envelope.type, encode(envelope), headers={"Nats-Msg-Id": envelope.id}
                )
            except nats.js.errors.NoStreamResponseError:
                return False
            return True

        await eventually(published, what="reception's stream", timeout=15)
    finally:
        await nc.close()

    async def opened() -> list[dict]:
        r = await wo.client.get(
            "/repair-orders", params={"intake_id": str(event.intake_id)}, headers=FOREMAN
        )
        items = r.json()["items"]
        return items if items and items[0]["status"] == "open" else []

    await eventually(opened, what="repair order opened from consent", timeout=15)


# --- ETag, dispatch, clocking ------------------------------------------------------------


async def test_transitions_need_a_fresh_etag(wo: Workorders):
    order = await wo.consent(approved())
    path = f"/repair-orders/{order['id']}/transitions"
    assert_problem(await wo.client.post(path, headers=FOREMAN, json={"to": "in_progress"}), 428)
    r = await wo.client.post(
        path, headers={**FOREMAN, "If-Match": '"999"'}, json={"to": "in_progress"}
    )
    assert_problem(r, 412)
    r = await wo.client.post(
        path, headers={**FOREMAN, "If-Match": order["etag"]}, json={"to": "settled"}
    )
    assert_problem(r, 409)
    r = await wo.client.post(
        path, headers={**FOREMAN, "If-Match": order["etag"]}, json={"to": "delivered"}
    )
    assert_problem(r, 409)
    r = await wo.client.post(
        path, headers={**FOREMAN, "If-Match": order["etag"]}, json={"to": "in_progress"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] != order["etag"]
    # The first tablet's ETag is stale now.
    r = await wo.client.post(
        path, headers={**FOREMAN, "If-Match": order["etag"]}, json={"to": "qc"}
    )
    assert_problem(r, 412)


async def test_cancel_only_before_work_starts(wo: Workorders):
    order = await wo.consent(approved())
    r = await wo.move(order["id"], "cancelled")
    assert r.status_code == 200, r.text
    assert r.json()["jobs"][0]["status"] == "cancelled"
    order = await wo.consent(approved())
    job_id = order["jobs"][0]["id"]
    await wo.assign(job_id)
    assert (await wo.client.post(f"/jobs/{job_id}/clock-on", headers=TECH_LI)).status_code == 201
    assert_problem(await wo.move(order["id"], "cancelled"), 409)


async def test_dispatch_and_the_foremans_day(wo: Workorders):
    order = await wo.consent(
        approved(lines=[labour("BRK-010", "1", "300"), labour("ENG-1", "2", "600")])
    )
    brakes, engine = (j["id"] for j in order["jobs"])
    job = await wo.job(brakes)
    r = await wo.client.put(
        f"/jobs/{brakes}/assignment", headers=FOREMAN, json={"technician_id": "t", "bay": "B"}
    )
    assert_problem(r, 428)
    r = await wo.client.put(
        f"/jobs/{brakes}/assignment",
        headers={**TECH_LI, "If-Match": job["etag"]},
        json={"technician_id": "tech-li", "bay": "B1"},
    )
    assert_problem(r, 403)
    assigned = await wo.assign(brakes, "tech-li", "B1")
    assert (assigned["status"], assigned["technician_id"], assigned["bay"]) == (
        "assigned",
        "tech-li",
        "B1",
    )
    reassigned = await wo.assign(brakes, "tech-wang", "B2")
    assert (reassigned["status"], reassigned["technician_id"]) == ("assigned", "tech-wang")
    r = await wo.client.get("/dispatch/day", params={"on": "2026-11-30"}, headers=FOREMAN)
    assert r.status_code == 200, r.text
    day = r.json()
    assert [lane["key"] for lane in day["technicians"]] == ["tech-wang"]
    assert [lane["key"] for lane in day["bays"]] == ["B2"]
    assert [j["id"] for j in day["unassigned"]] == [engine]
    r = await wo.client.put(
        f"/jobs/{brakes}/assignment",
        headers={**FOREMAN, "If-Match": job["etag"]},
        json={"technician_id": "tech-li", "bay": "B1"},
    )
    assert_problem(r, 412)


async def test_clocking_edge_cases(wo: Workorders):
    order = await wo.consent(
        approved(lines=[labour("BRK-010", "1", "300"), labour("ENG-1", "2", "600")])
    )
    brakes, engine = (j["id"] for j in order["jobs"])
    c = wo.client
    assert_problem(await c.post(f"/jobs/{brakes}/clock-on", headers=TECH_LI), 403)  # not theirs
    await wo.assign(brakes, "tech-li")
    await wo.assign(engine, "tech-li", "B2")

    async def mine(headers: dict[str, str]) -> list[tuple[str, str]]:
        r = await c.get("/jobs/mine", headers=headers)
        assert r.status_code == 200, r.text
        return [(j["id"], j["status"]) for j in r.json()["items"]]

    # The technician's own list, with the car: tech-wang has none, a foreman asks no list.
    listed = (await c.get("/jobs/mine", headers=TECH_LI)).json()["items"]
    assert {j["id"] for j in listed} == {brakes, engine}
    assert {j["plate"] for j in listed} == {order["plate"]}
    assert {j["repair_order_number"] for j in listed} == {order["number"]}
    assert await mine(TECH_WANG) == []
    assert_problem(await c.get("/jobs/mine", headers=FOREMAN), 403)
    assert_problem(await c.post(f"/jobs/{brakes}/clock-on", headers=TECH_WANG), 403)
    assert_problem(await c.post(f"/jobs/{brakes}/clock-on", headers=FOREMAN), 403)
    off = {"reason": "finished"}
    assert_problem(await c.post(f"/jobs/{brakes}/clock-off", headers=TECH_LI, json=off), 409)
    r = await c.post(f"/jobs/{brakes}/clock-on", headers=TECH_LI)
    assert r.status_code == 201, r.text
    assert (await wo.order(order["id"]))["status"] == "in_progress"
    body = assert_problem(await c.post(f"/jobs/{brakes}/clock-on", headers=TECH_LI), 409)
    assert "already" in body["detail"]
    body = assert_problem(await c.post(f"/jobs/{engine}/clock-on", headers=TECH_LI), 409)
    assert body["job_id"] == brakes  # one job at a time
    assert_problem(await c.post(f"/jobs/{engine}/clock-off", headers=TECH_LI, json=off), 409)
    r = await c.post(f"/jobs/{brakes}/clock-off", headers=TECH_LI, json={"reason": "waiting_parts"})
    assert r.status_code == 200, r.text
    job = await wo.job(brakes)
    assert (job["status"], job["pause_reason"]) == ("paused", "waiting_parts")
    assert (await wo.order(order["id"]))["status"] == "waiting_parts"
    assert (await c.post(f"/jobs/{engine}/clock-on", headers=TECH_LI)).status_code == 201
    assert (await wo.order(order["id"]))["status"] == "in_progress"
    r = await c.post(f"/jobs/{engine}/clock-off", headers=TECH_LI, json=off)
    assert r.status_code == 200
    assert (await wo.job(engine))["status"] == "done"
    assert await mine(TECH_LI) == [(brakes, "paused")]  # a finished job leaves the list
    # ... for the list of the day's finished ones (the branch's clock), not another day's.
    done_at = datetime.fromisoformat((await wo.job(engine))["done_at"])
    today = done_at.astimezone(ZoneInfo("Asia/Shanghai")).date()
    r = await c.get("/jobs/mine", headers=TECH_LI, params={"finished_on": today.isoformat()})
    assert [(j["id"], j["status"]) for j in r.json()["items"]] == [(engine, "done")]
    yesterday = (today - timedelta(days=1)).isoformat()
    r = await c.get("/jobs/mine", headers=TECH_LI, params={"finished_on": yesterday})
    assert r.json()["items"] == []
    r = await c.get("/jobs/mine", headers=TECH_WANG, params={"finished_on": today.isoformat()})
    assert r.json()["items"] == []
    r = await c.get("/jobs/mine", headers=TECH_LI, params={"finished_on": "yesterday"})
    assert_problem(r, 422, "finished_on")
    r = await c.post(f"/jobs/{brakes}/clock-off", headers=TECH_LI, json={"reason": "nap"})
    assert_problem(r, 422, "reason")
    # A job in progress is not reassigned under the technician's hands.
    assert (await c.post(f"/jobs/{brakes}/clock-on", headers=TECH_LI)).status_code == 201
    job = await wo.job(brakes)
    r = await c.put(
        f"/jobs/{brakes}/assignment",
        headers={**FOREMAN, "If-Match": job["etag"]},
        json={"technician_id": "tech-wang", "bay": "B1"},
    )
    assert_problem(r, 409)


async def test_clock_on_is_idempotent_per_key(wo: Workorders):
    order = await wo.consent(approved())
    job_id = order["jobs"][0]["id"]
    await wo.assign(job_id)
    headers = {**TECH_LI, "Idempotency-Key": "tablet-7-001"}
    first = await wo.client.post(f"/jobs/{job_id}/clock-on", headers=headers)
    again = await wo.client.post(f"/jobs/{job_id}/clock-on", headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json() == again.json()


# --- extra work, QC, settlement, delivery ------------------------------------------------


async def test_from_consent_to_delivery_with_extra_work_and_a_failed_qc(wo: Workorders):
    c = wo.client
    brakes_line = labour("BRK-010", "1.5", "450")
    pads = part("BP-4411", "380", op_code="BRK-010")
    warranty = labour("REC-77", "0.5", "150", pay_type="warranty", job_kind="recall")
    wipers = part("WB-22", "90")
    order = await wo.consent(approved(lines=[brakes_line, pads, warranty], declined=[wipers]))
    order_id = order["id"]
    for job in order["jobs"]:
        await wo.assign(job["id"])

    # Extra work found: published, nothing starts before consent.
    finding = {
        "job_id": order["jobs"][0]["id"],
        "findings": "前刹车盘有沟槽 / front discs scored",
        "photo_file_ids": [str(uuid.uuid4())],
        "proposed_lines": [
            {"kind": "labour", "op_code": "BRK-020", "op_group": "brk", "flat_rate_hours": "1.0"},
            {"kind": "part", "part_number": "BD-1", "op_code": "BRK-020"},
        ],
    }
    r = await c.post(f"/repair-orders/{order_id}/extra-work", headers=TECH_LI, json=finding)
    assert r.status_code == 201, r.text
    extra = r.json()
    assert extra["status"] == "proposed"
    [found] = await wo.events("workorders.extra_work.found.v1")
    assert found["extra_work_id"] == extra["id"]
    assert len(found["proposed_lines"]) == 2
    assert len((await wo.order(order_id))["jobs"]) == 2

    disc = EstimateLine.model_validate(
        {**found["proposed_lines"][0], "net": "300", "labour_rate": "300"}
    )
    disc_part = EstimateLine.model_validate({**found["proposed_lines"][1], "net": "600"})
    await wo.consent(
        approved(
            intake_id=uuid.UUID(order["intake_id"]),
            lines=[disc, disc_part],
            repair_order_id=uuid.UUID(order_id),
            extra_work_id=uuid.UUID(extra["id"]),
            revision=2,
            promised_at=PROMISED + timedelta(hours=2),
            approved_at=APPROVED + timedelta(hours=1),
        )
    )
    order = await wo.order(order_id)
    assert len(order["jobs"]) == 3
    assert order["extra_work"][0]["status"] == "approved"
    new_job = next(j for j in order["jobs"] if j["op_code"] == "BRK-020")
    assert new_job["extra_work_id"] == extra["id"]
    assert [p["part_number"] for p in new_job["parts"]] == ["BD-1"]
    assert [p["source"] for p in order["promises"]] == ["estimate", "extra_work"]
    await wo.assign(new_job["id"])

    # Work every job; the first fails QC once.
    for job in order["jobs"]:
        assert (await c.post(f"/jobs/{job['id']}/clock-on", headers=TECH_LI)).status_code == 201
        r = await c.post(f"/jobs/{job['id']}/clock-off", headers=TECH_LI, json={})
        assert r.status_code == 200, r.text
    assert (await wo.move(order_id, "qc")).status_code == 200
    first = order["jobs"][0]["id"]
    # The inspector's queue: every finished job, with its car; nobody else's list.
    queue = await c.get("/jobs/awaiting-qc", headers=QC)
    assert queue.status_code == 200, queue.text
    assert {j["id"] for j in queue.json()["items"]} == {j["id"] for j in order["jobs"]}
    assert {j["repair_order_number"] for j in queue.json()["items"]} == {order["number"]}
    assert_problem(await c.get("/jobs/awaiting-qc", headers=TECH_LI), 403)
    r = await c.post(f"/jobs/{first}/qc", headers=QC, json={"passed": False})
    assert_problem(r, 422, "reason")
    r = await c.post(f"/jobs/{first}/qc", headers=FOREMAN, json={"passed": True})
    assert_problem(r, 403)
    r = await c.post(
        f"/jobs/{first}/qc",
        headers=QC,
        json={"passed": False, "reason": "squeal", "checklist": [{"item": "noise", "ok": False}]},
    )
    assert r.status_code == 201, r.text
    job = await wo.job(first)
    assert (job["status"], job["rework_count"]) == ("rework", 1)
    queue = (await c.get("/jobs/awaiting-qc", headers=QC)).json()["items"]
    assert first not in {j["id"] for j in queue}  # back to the technician
    assert (await wo.order(order_id))["status"] == "in_progress"
    assert_problem(await wo.move(order_id, "qc"), 409)  # the rework is not done
    assert (await c.post(f"/jobs/{first}/clock-on", headers=TECH_LI)).status_code == 201
    assert (await c.post(f"/jobs/{first}/clock-off", headers=TECH_LI, json={})).status_code == 200
    assert (await wo.move(order_id, "qc")).status_code == 200
    assert_problem(await wo.move(order_id, "ready"), 409)  # not all passed yet
    for job in order["jobs"]:
        r = await c.post(
            f"/jobs/{job['id']}/qc", headers=QC, json={"passed": True, "road_test": True}
        )
        assert r.status_code == 201, r.text
    assert (await wo.move(order_id, "washing")).status_code == 200
    assert (await wo.move(order_id, "ready")).status_code == 200
    # Ready is announced once, with what the customer pays (followup tells them).
    [ready] = await wo.events("workorders.repair_order.ready.v1")
    assert ready["repair_order_id"] == order_id and ready["amount_due"] == "1954.90"

    # Settlement: customer lines 450+380+300+600 = 1730, tax 13% = 224.90; warranty apart.
    current = await wo.order(order_id)
    settle = f"/repair-orders/{order_id}/settlement"
    headers = {**CASHIER, "If-Match": current["etag"]}
    r = await c.post(
        settle, headers=headers, json={"payments": [{"method": "wechat", "amount": "100"}]}
    )
    assert_problem(r, 422, "payments")
    r = await c.post(settle, headers={**ADVISOR, "If-Match": current["etag"]}, json={})
    assert_problem(r, 403)
    r = await c.post(
        settle, headers=headers, json={"payments": [{"method": "wechat", "amount": "1954.90"}]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "settled"
    [settled] = await wo.events("workorders.repair_order.settled.v1")
    totals = {t["pay_type"]: t for t in settled["totals"]}
    assert totals["customer"]["gross"] == "1954.90"
    assert totals["warranty"]["net"] == "150.00"
    assert settled["invoice_number"] == "INV-" + order["number"].removeprefix("RO-")

    # Delivery: the advisor hands the car over, followup gets its jobs.
    current = await wo.order(order_id)
    deliver = f"/repair-orders/{order_id}/delivery"
    handover = {
        "charges_explained": True,
        "old_parts_offered": True,
        "keys_returned": True,
        "declined_work_told": False,
    }
    r = await c.post(deliver, headers={**ADVISOR, "If-Match": current["etag"]}, json=handover)
    assert_problem(r, 422, "declined_work_told")
    # The next service is a day to come: today (or earlier) is named and nothing is done.
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    checklist = {
        **handover,
        "declined_work_told": True,
        "work_explained": True,
        "car_cleaned": True,
        "valuables_returned": True,
        "next_service_km": 20000,
    }
    r = await c.post(
        deliver,
        headers={**ADVISOR, "If-Match": current["etag"]},
        json={**checklist, "next_service_on": today.isoformat()},
    )
    assert_problem(r, 422, "next_service_on")
    assert (await wo.order(order_id))["status"] == "settled"
    next_service = today + timedelta(days=180)
    r = await c.post(
        deliver,
        headers={**ADVISOR, "If-Match": current["etag"]},
        json={**checklist, "next_service_on": next_service.isoformat()},
    )
    assert r.status_code == 200, r.text
    told = r.json()["handover"]
    assert told.pop("by").startswith("dev-advisor")
    assert told == {**checklist, "next_service_on": next_service.isoformat(), "note": None}
    [delivered] = await wo.events("workorders.repair_order.delivered.v1")
    assert (delivered["next_service_on"], delivered["next_service_km"]) == (
        next_service.isoformat(),
        20000,
    )
    assert delivered["promised_at"].startswith("2026-11-30T11:00")
    assert delivered["declined_work"] == ["part WB-22"]
    assert {(j["op_code"], j["kind"], j["technician_id"]) for j in delivered["jobs"]} == {
        ("BRK-010", "repair", "tech-li"),
        ("REC-77", "recall", "tech-li"),
        ("BRK-020", "repair", "tech-li"),
    }
    assert_problem(await wo.move(order_id, "in_progress"), 409)


async def test_declined_extra_work_is_recorded_and_adds_no_job(wo: Workorders):
    order = await wo.consent(approved())
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/extra-work",
        headers=TECH_LI,
        json={
            "findings": "wiper blades torn",
            "proposed_lines": [{"kind": "part", "part_number": "WB-22"}],
        },
    )
    extra = r.json()
    [found] = await wo.events("workorders.extra_work.found.v1")
    line = EstimateLine.model_validate(found["proposed_lines"][0])
    order = await wo.consent(
        approved(
            intake_id=uuid.UUID(order["intake_id"]),
            lines=[],
            declined=[line],
            repair_order_id=uuid.UUID(order["id"]),
            extra_work_id=uuid.UUID(extra["id"]),
        )
    )
    assert order["extra_work"][0]["status"] == "declined"
    assert len(order["jobs"]) == 1
    assert [d["part_number"] for d in order["declined_lines"]] == ["WB-22"]


async def find(wo: Workorders, order: dict[str, Any], finding: str, *lines: dict) -> EstimateLine:
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/extra-work",
        headers=TECH_LI,
        json={"findings": finding, "proposed_lines": list(lines)},
    )
    assert r.status_code == 201, r.text
    proposed = r.json()["proposed_lines"]
    assert {line["extra_work_id"] for line in proposed} == {r.json()["id"]}
    return EstimateLine.model_validate({**proposed[0], "labour_rate": "300", "net": "300"})


async def test_each_line_answers_its_own_extra_work_through_later_revisions(wo: Workorders):
    order = await wo.consent(approved())
    # Two findings answered together, with a line the advisor added meanwhile.
    discs = await find(wo, order, "discs scored", {"kind": "labour", "op_code": "BRK-020",
                                                   "flat_rate_hours": "1"})  # fmt: skip
    hoses = await find(wo, order, "hoses cracked", {"kind": "labour", "op_code": "BRK-030",
                                                    "flat_rate_hours": "1"})  # fmt: skip
    answer = approved(
        intake_id=uuid.UUID(order["intake_id"]),
        lines=[discs, labour("WASH-1", "1", "300", extra_work_id=None)],
        declined=[hoses],
        repair_order_id=uuid.UUID(order["id"]),
        extra_work_id=hoses.extra_work_id,
        revision=3,
        approved_at=APPROVED + timedelta(hours=1),
    )
    order = await wo.consent(answer)
    extra_of = {j["op_code"]: j["extra_work_id"] for j in order["jobs"]}
    assert extra_of == {"BRK-010": None, "BRK-020": str(discs.extra_work_id), "WASH-1": None}
    answered = {e["id"]: (e["status"], e["answered_at"]) for e in order["extra_work"]}
    assert {k: status for k, (status, _) in answered.items()} == {
        str(discs.extra_work_id): "approved",
        str(hoses.extra_work_id): "declined",
    }
    assert all(at is not None for _, at in answered.values())

    # A later revision carries the same answers again: nothing moves.
    later = answer.model_copy(update={"revision": 4, "approved_at": APPROVED + timedelta(hours=2)})
    order = await wo.consent(later)
    assert {e["id"]: (e["status"], e["answered_at"]) for e in order["extra_work"]} == answered
    assert len(order["jobs"]) == 3

    # An event from before lines named their extra work carried only that work's lines.
    pipes = await find(wo, order, "pipe leaks", {"kind": "labour", "op_code": "BRK-040",
                                                 "flat_rate_hours": "1"})  # fmt: skip
    order = await wo.consent(
        approved(
            intake_id=uuid.UUID(order["intake_id"]),
            lines=[EstimateLine.model_validate(pipes.model_dump(exclude={"extra_work_id"}))],
            repair_order_id=uuid.UUID(order["id"]),
            extra_work_id=pipes.extra_work_id,
            approved_at=APPROVED + timedelta(hours=3),
        )
    )
    job = next(j for j in order["jobs"] if j["op_code"] == "BRK-040")
    assert job["extra_work_id"] == str(pipes.extra_work_id)
    assert order["extra_work"][2]["status"] == "approved"


# --- roles, branches, bad input ---------------------------------------------------------


async def test_roles_branches_and_bad_input(wo: Workorders):
    order = await wo.consent(approved())
    c = wo.client
    order_id, job_id = order["id"], order["jobs"][0]["id"]
    # A screen's token sits in a TV's URL: it opens the board, never an order.
    assert_problem(await c.get(f"/repair-orders/{order_id}", headers=SCREEN), 403)
    assert_problem(await c.get(f"/repair-orders/{order_id}", headers=auth("followup_agent")), 403)
    assert_problem(await c.get(f"/repair-orders/{order_id}", headers=auth("foreman", "BR02")), 404)
    assert_problem(await c.get(f"/jobs/{job_id}", headers=auth("foreman", "BR02")), 404)
    assert_problem(await c.get(f"/repair-orders/{order_id}"), 401)
    assert_problem(await c.get("/repair-orders/not-a-uuid", headers=FOREMAN), 422)
    r = await c.post(
        f"/repair-orders/{order_id}/transitions",
        headers={**SCREEN, "If-Match": order["etag"]},
        json={"to": "in_progress"},
    )
    assert_problem(r, 403)
    r = await c.post(
        f"/repair-orders/{order_id}/transitions",
        headers={**FOREMAN, "If-Match": order["etag"]},
        json={"to": "flying"},
    )
    assert_problem(r, 422, "to")
    job = await wo.job(job_id)
    r = await c.put(
        f"/jobs/{job_id}/assignment",
        headers={**FOREMAN, "If-Match": job["etag"]},
        json={"technician_id": "", "bay": "B1", "planned_start_at": "soon"},
    )
    body = assert_problem(r, 422)
    assert {e["field"] for e in body["errors"]} >= {"technician_id", "planned_start_at"}
    r = await c.post(
        f"/repair-orders/{order_id}/extra-work",
        headers=TECH_LI,
        json={"findings": "x", "proposed_lines": [{"kind": "magic"}]},
    )
    assert_problem(r, 422)
    r = await c.post(
        f"/repair-orders/{order_id}/extra-work",
        headers={**TECH_LI, "content-type": "application/json"},
        content=b'{"findings": ',
    )
    assert_problem(r, 400)
    # What reception could not put to the customer is refused here, naming what is missing.
    for line, missing in [
        ({"kind": "labour", "flat_rate_hours": "1"}, "op_code"),
        ({"kind": "labour", "op_code": "BRK-020"}, "flat_rate_hours"),
        ({"kind": "part"}, "part_number"),
        ({"kind": "fee"}, "description"),
    ]:
        r = await c.post(
            f"/repair-orders/{order_id}/extra-work",
            headers=TECH_LI,
            json={"findings": "x", "proposed_lines": [{"kind": "part", "part_number": "P"}, line]},
        )
        assert missing in assert_problem(r, 422, "proposed_lines.1")["detail"]
    r = await c.post(
        f"/repair-orders/{order_id}/extra-work",
        headers=TECH_LI,
        json={
            "findings": "x",
            "proposed_lines": [{"kind": "part", "part_number": "P"}],
            "job_id": str(uuid.uuid4()),
        },
    )
    assert_problem(r, 422, "job_id")
    assert await wo.events("workorders.extra_work.found.v1") == []
    r = await c.get("/dispatch/day", params={"on": "yesterday"}, headers=FOREMAN)
    assert_problem(r, 422, "on")
    assert_problem(await c.get("/technicians/productivity", headers=SCREEN), 403)
    async with wo.db.reader() as session:
        stored = await session.get(RepairOrder, uuid.UUID(order_id))
        assert stored is not None and stored.status == "open"


async def test_parts_lines_from_consent_and_from_the_technician(wo: Workorders):
    pads = part("BP-4411", "380", op_code="BRK-010")
    oil = part("OIL-5W30", "200")
    order = await wo.consent(approved(lines=[labour("BRK-010", "1", "300"), pads, oil]))
    job_id = order["jobs"][0]["id"]
    lines = {p["part_number"]: p for p in order["part_lines"]}
    assert lines["BP-4411"]["job_id"] == job_id
    assert lines["OIL-5W30"]["job_id"] is None
    assert {p["status"] for p in lines.values()} == {"requested"}
    await wo.assign(job_id)
    r = await wo.client.post(
        f"/jobs/{job_id}/parts", headers=TECH_LI, json={"part_number": "CL-0091", "quantity": "2"}
    )
    assert r.status_code == 201, r.text
    clips = r.json()
    assert (clips["status"], clips["requested_by"]) == ("requested", "tech-li")
    move = f"/parts/{lines['BP-4411']['id']}/transitions"
    assert_problem(await wo.client.post(move, headers=FOREMAN, json={"to": "ordered"}), 422)
    assert_problem(await wo.client.post(move, headers=TECH_LI, json={"to": "issued"}), 403)
    eta = "2026-12-01T06:00:00+00:00"
    r = await wo.client.post(move, headers=FOREMAN, json={"to": "ordered", "eta_at": eta})
    assert r.status_code == 200, r.text
    job = await wo.job(job_id)
    assert job["parts_eta_at"].startswith("2026-12-01T06:00")
    r = await wo.client.post(move, headers={**FOREMAN, "If-Match": '"1"'}, json={"to": "issued"})
    assert_problem(r, 412)
    assert (await wo.client.post(move, headers=FOREMAN, json={"to": "issued"})).status_code == 200
    assert (await wo.job(job_id))["parts_eta_at"] is None
    assert_problem(await wo.client.post(move, headers=FOREMAN, json={"to": "ordered"}), 409)
    r = await wo.client.post(move, headers=FOREMAN, json={"to": "returned"})
    assert r.json()["status"] == "returned"
    other = await wo.client.post(move, headers=auth("foreman", "BR02"), json={"to": "returned"})
    assert_problem(other, 404)


async def test_every_request_body_has_an_example_in_the_openapi_document():
    document = create_app(Settings()).openapi()
    schemas = document["components"]["schemas"]
    bodies = [
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
        for path in document["paths"].values()
        for operation in path.values()
        if "requestBody" in operation
    ]
    assert len(bodies) >= 10
    assert [b for b in bodies if not schemas[b].get("examples")] == []
