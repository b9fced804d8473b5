"""Payments the ERP confirmed, against settled repair orders: matched by invoice number or
order id, once per ERP payment id, unmatched ones kept for the cashier; and the events
records consumes: a clock segment per clock-off, a QC result per inspection, the last
promise on delivery."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import nats
import nats.js.errors
import pytest
import pytest_asyncio

from services.workorders import payments
from services.workorders.config import Settings
from services.workorders.main import create_app
from shared.contracts import PaymentConfirmed
from shared.events import encode
from tests.harness import NatsServer, auth, eventually, second_starts_before_first_commits
from tests.test_bad_input import assert_problem
from tests.test_workorders_api import (
    ADVISOR,
    CASHIER,
    PROMISED,
    QC,
    TECH_LI,
    Workorders,
    approved,
    labour,
    part,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

PAID_AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
FIELDS = {"erp_payment_id", "invoice_number", "amount", "currency", "method", "paid_at"}


@pytest_asyncio.fixture
async def wo(database_url: str, nats_server: NatsServer) -> AsyncIterator[Workorders]:
    app = create_app(Settings(database_url=database_url, nats_url=nats_server.url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield Workorders(client, app.state.runtime.db, nats_server.url)


async def work_to_ready(wo: Workorders, lines: list[Any] | None = None) -> dict[str, Any]:
    order = await wo.consent(approved(lines=lines or [labour("BRK-010", "1.5", "450")]))
    for job in order["jobs"]:
        await wo.assign(job["id"])
        assert (await wo.client.post(f"/jobs/{job['id']}/clock-on", headers=TECH_LI)).is_success
        r = await wo.client.post(f"/jobs/{job['id']}/clock-off", headers=TECH_LI, json={})
        assert r.status_code == 200, r.text
    assert (await wo.move(order["id"], "qc")).status_code == 200
    for job in order["jobs"]:
        r = await wo.client.post(f"/jobs/{job['id']}/qc", headers=QC, json={"passed": True})
        assert r.status_code == 201, r.text
    assert (await wo.move(order["id"], "ready")).status_code == 200
    return await wo.order(order["id"])


async def settle(wo: Workorders, order: dict[str, Any], amount: str) -> dict[str, Any]:
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/settlement",
        headers={**CASHIER, "If-Match": order["etag"]},
        json={"payments": [{"method": "wechat", "amount": amount}]},
    )
    assert r.status_code == 200, r.text
    return await wo.order(order["id"])


def confirmed(invoice: str, amount: str, **extra: Any) -> PaymentConfirmed:
    fields: dict[str, Any] = {
        "erp_payment_id": f"ERP-{uuid.uuid4().hex[:10]}",
        "branch": "BR01",
        "invoice_number": invoice,
        "amount": Decimal(amount),
        "method": "transfer",
        "paid_at": PAID_AT,
        "received_at": PAID_AT + timedelta(minutes=1),
    }
    fields.update(extra)
    return PaymentConfirmed(**fields)


async def record(wo: Workorders, event: PaymentConfirmed) -> None:
    async with wo.db.transaction() as session:
        await payments.record_erp_payment(session, event)


async def listed(wo: Workorders, order_id: str, headers: dict[str, str] = CASHIER) -> list:
    r = await wo.client.get(f"/repair-orders/{order_id}/erp-payments", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return list(r.json()["items"])


async def test_confirmed_payments_mark_the_order_paid_once_they_cover_the_customer_due(
    wo: Workorders,
):
    order = await settle(wo, await work_to_ready(wo), "508.50")  # 450 + 13 % tax
    invoice = order["invoice"]["invoice_number"]
    assert order["invoice_number"] == invoice and order["paid"] is False

    first = confirmed(invoice, "300.00")
    await record(wo, first)
    await record(wo, first)  # the same ERP payment again: kept once
    [entry] = await listed(wo, order["id"])
    assert set(entry) == FIELDS | {"received_at"}
    assert (entry["erp_payment_id"], entry["invoice_number"]) == (first.erp_payment_id, invoice)
    assert Decimal(entry["amount"]) == Decimal("300.00") and entry["currency"] == "CNY"
    assert entry["method"] == "transfer" and entry["paid_at"].startswith("2026-11-30T08:00")
    detail = await wo.order(order["id"])
    assert (detail["paid"], Decimal(detail["erp_paid"])) == (False, Decimal("300.00"))

    # Another currency is listed but does not count; the rest in CNY covers the due.
    await record(wo, confirmed(invoice, "100", currency="USD"))
    assert (await wo.order(order["id"]))["paid"] is False
    await record(wo, confirmed(invoice, "208.50", paid_at=PAID_AT + timedelta(hours=1)))
    detail = await wo.order(order["id"])
    assert detail["paid"] is True and detail["paid_at"].startswith("2026-11-30T09:00")
    assert len(await listed(wo, order["id"])) == 3


async def test_unknown_invoices_are_kept_for_the_cashier_and_an_order_id_wins(wo: Workorders):
    order = await settle(wo, await work_to_ready(wo), "508.50")
    stray = confirmed("INV-2026-999999", "50")
    await record(wo, stray)
    r = await wo.client.get("/erp-payments/unmatched", headers=CASHIER)
    assert r.status_code == 200, r.text
    assert [p["erp_payment_id"] for p in r.json()["items"]] == [stray.erp_payment_id]
    assert_problem(await wo.client.get("/erp-payments/unmatched", headers=ADVISOR), 403)
    other_branch = await wo.client.get(
        "/erp-payments/unmatched", headers=auth("cashier", branch="BR02")
    )
    assert other_branch.json() == {"items": [], "next_cursor": None}
    # The cashier's list is paged, newest first, each payment once.
    later = confirmed("INV-2026-999998", "60", paid_at=PAID_AT + timedelta(hours=1))
    await record(wo, later)
    url = "/erp-payments/unmatched"
    first = (await wo.client.get(url, params={"limit": 1}, headers=CASHIER)).json()
    assert [p["erp_payment_id"] for p in first["items"]] == [later.erp_payment_id]
    rest = await wo.client.get(url, params={"cursor": first["next_cursor"]}, headers=CASHIER)
    assert [p["erp_payment_id"] for p in rest.json()["items"]] == [stray.erp_payment_id]
    assert rest.json()["next_cursor"] is None

    # The ERP named the order: it matches even with an invoice number we do not know.
    by_id = confirmed("ERP-REF-77", "508.50", repair_order_id=uuid.UUID(order["id"]))
    await record(wo, by_id)
    assert [p["erp_payment_id"] for p in await listed(wo, order["id"])] == [by_id.erp_payment_id]
    assert (await wo.order(order["id"]))["paid"] is True
    # ... but not an order of another branch.
    foreign = confirmed("X", "1", repair_order_id=uuid.UUID(order["id"]), branch="BR02")
    await record(wo, foreign)
    assert len(await listed(wo, order["id"])) == 1


async def test_a_payment_ahead_of_the_settlement_is_matched_when_the_invoice_is_made(
    wo: Workorders,
):
    order = await work_to_ready(wo)
    invoice = "INV-" + order["number"].removeprefix("RO-")
    early = confirmed(invoice, "508.50")
    await record(wo, early)
    assert (await wo.client.get("/erp-payments/unmatched", headers=CASHIER)).json()["items"] != []
    order = await settle(wo, order, "508.50")
    assert order["paid"] is True
    assert [p["erp_payment_id"] for p in await listed(wo, order["id"])] == [early.erp_payment_id]
    assert (await wo.client.get("/erp-payments/unmatched", headers=CASHIER)).json()["items"] == []


async def test_who_may_see_the_payments(wo: Workorders):
    order = await settle(wo, await work_to_ready(wo), "508.50")
    path = f"/repair-orders/{order['id']}/erp-payments"
    assert (await wo.client.get(path, headers=auth("manager"))).status_code == 200
    assert (await wo.client.get(path, headers=ADVISOR)).status_code == 200
    assert_problem(await wo.client.get(path, headers=auth("screen")), 403)
    assert_problem(await wo.client.get(path, headers=TECH_LI), 403)
    assert_problem(await wo.client.get(path, headers=auth("cashier", branch="BR02")), 404)
    assert_problem(await wo.client.get(f"/repair-orders/{uuid.uuid4()}/erp-payments"), 401)


async def test_a_payment_arrives_through_jetstream_with_its_durable_consumer(wo: Workorders):
    order = await settle(wo, await work_to_ready(wo), "508.50")
    event = confirmed(order["invoice_number"], "508.50")
    envelope = event.to_envelope(subject=event.invoice_number)
    nc = await nats.connect(wo.nats_url)
    try:
        js = nc.jetstream()

        async def stream_ready() -> bool:
            try:
                await js.stream_info("RECORDS")
            except nats.js.errors.NotFoundError:
                return False
            return True

        await eventually(stream_ready, what="records stream created by the consumer")
        for _ in range(2):  # delivered twice (a webhook retry): recorded once
            await js.publish(envelope.type, encode(envelope), headers={"Nats-Msg-Id": envelope.id})
    finally:
        await nc.close()

    async def paid() -> bool:
        return bool((await wo.order(order["id"]))["paid"])

    await eventually(paid, what="ERP payment recorded")
    assert len(await listed(wo, order["id"])) == 1


# --- events for records and reports -----------------------------------------------------


async def test_each_clock_off_publishes_a_segment_and_each_qc_a_result(wo: Workorders):
    order = await wo.consent(approved(lines=[labour("BRK-010", "1.5", "450"), part("P", "10")]))
    job = order["jobs"][0]
    await wo.assign(job["id"])
    c = wo.client
    assert (await c.post(f"/jobs/{job['id']}/clock-on", headers=TECH_LI)).status_code == 201
    r = await c.post(f"/jobs/{job['id']}/clock-off", headers=TECH_LI, json={"reason": "break"})
    assert r.status_code == 200, r.text
    pause_entry = r.json()
    assert (await c.post(f"/jobs/{job['id']}/clock-on", headers=TECH_LI)).status_code == 201
    r = await c.post(f"/jobs/{job['id']}/clock-off", headers=TECH_LI, json={})
    assert r.status_code == 200, r.text
    segments = await wo.events("workorders.job.clocked.v1")
    assert [s["reason"] for s in segments] == ["break", "done"]
    first = segments[0]
    assert first["clock_id"] == pause_entry["id"]
    assert (first["job_id"], first["op_code"], first["technician_id"]) == (
        job["id"],
        "BRK-010",
        "tech-li",
    )
    assert first["number"] == order["number"] and first["flat_rate_hours"] == "1.5"
    started = datetime.fromisoformat(first["started_at"])
    ended = datetime.fromisoformat(first["ended_at"])
    assert ended >= started and Decimal(first["hours"]) >= 0

    assert (await wo.move(order["id"], "qc")).status_code == 200
    r = await c.post(f"/jobs/{job['id']}/qc", headers=QC, json={"passed": False, "reason": "noise"})
    assert r.status_code == 201, r.text
    [result] = await wo.events("workorders.job.qc_recorded.v1")
    assert result["qc_id"] == r.json()["id"]
    assert (result["passed"], result["reason"], result["technician_id"]) == (
        False,
        "noise",
        "tech-li",
    )
    assert result["inspected_by"] == r.json()["inspector"]


async def test_delivery_reports_the_promise_the_customer_agreed_to_last(wo: Workorders):
    order = await work_to_ready(wo)
    later = PROMISED + timedelta(hours=3)
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/promise",
        headers={**ADVISOR, "If-Match": order["etag"]},
        json={"promised_at": later.isoformat(), "told_at": "2026-11-30T06:00:00Z"},
    )
    assert r.status_code == 200, r.text
    order = await settle(wo, await wo.order(order["id"]), "508.50")
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/delivery",
        headers={**ADVISOR, "If-Match": order["etag"]},
        json={
            "charges_explained": True,
            "old_parts_offered": True,
            "keys_returned": True,
            "declined_work_told": True,
        },
    )
    assert r.status_code == 200, r.text
    [delivered] = await wo.events("workorders.repair_order.delivered.v1")
    assert datetime.fromisoformat(delivered["promised_at"]) == later


# --- payments and settlements at the same moment (PostgreSQL) ---------------------------


@pytest_asyncio.fixture
async def wo_pg(pg_url: str, nats_server: NatsServer) -> AsyncIterator[Workorders]:
    app = create_app(Settings(database_url=pg_url, nats_url=nats_server.url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield Workorders(client, app.state.runtime.db, nats_server.url)


@pytest.mark.postgres
async def test_two_halves_of_a_payment_at_once_mark_the_order_paid(wo_pg: Workorders):
    """The customer paid in two parts and the ERP confirms both at the same moment, each
    handled by its own replica: together they cover the due, so the order is paid."""
    orders = [await settle(wo_pg, await work_to_ready(wo_pg), "508.50") for _ in range(6)]
    for order in orders:
        halves = [confirmed(order["invoice_number"], "254.25") for _ in range(2)]
        await asyncio.gather(*(record(wo_pg, half) for half in halves))
    unpaid = [o["number"] for o in orders if not (await wo_pg.order(o["id"]))["paid"]]
    assert unpaid == [], f"{len(unpaid)} of {len(orders)} orders left unpaid"


@pytest.mark.postgres
async def test_a_payment_confirmed_while_the_order_is_settled_is_matched(
    wo_pg: Workorders, pg_url: str
):
    """The ERP confirms the payment while the cashier settles the order: the payment has
    looked for the invoice before the settlement commits, and the settlement for payments
    before the payment commits. The payment still ends on the order, and the order paid."""
    order = await work_to_ready(wo_pg)
    early = confirmed("INV-" + order["number"].removeprefix("RO-"), "508.50")

    async def settle_it() -> None:
        await settle(wo_pg, order, "508.50")

    await second_starts_before_first_commits(
        pg_url,
        lambda: record(wo_pg, early),
        settle_it,
        # The payment's own row, being written by another transaction: the payment waits
        # on it after it has looked for its order.
        hold="INSERT INTO erp_payment (erp_payment_id, branch, invoice_number, amount,"
        " currency, method, paid_at, received_at, recorded_at)"
        " VALUES ($1, 'BR01', 'X', '0', 'CNY', 'x', now(), now(), now())",
        args=(early.erp_payment_id,),
    )
    detail = await wo_pg.order(order["id"])
    assert [p["erp_payment_id"] for p in await listed(wo_pg, order["id"])] == [early.erp_payment_id]
    assert detail["paid"] is True
    unmatched = await wo_pg.client.get("/erp-payments/unmatched", headers=CASHIER)
    assert unmatched.json()["items"] == []
