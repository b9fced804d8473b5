"""ERP webhooks end to end with real processes: reception's registrations reach a receiver
on loopback that verifies every delivery with `standardwebhooks` and refuses the first two
attempts of each, and each event still ends there exactly once; a payment confirmation
signed by the ERP reaches workorders."""

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from services.records.webhook_service import new_secret
from shared.events import encode
from tests.flow import open_intake, register, repair_orders_for
from tests.harness import Stack, auth, backend, eventually, require_postgres, token
from tests.test_records_webhooks import Receiver, payment, signed
from tests.test_workorders_api import approved_now, labour, part

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

MANAGER = auth("manager")


@pytest.fixture(scope="module")
def webhook_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if backend() == "postgres":
        require_postgres()
    running = Stack(
        Path(tmp_path_factory.mktemp("webhooks")),
        services=("reception", "workorders", "records"),
        extra_env={
            # The receiver listens on loopback; retries come within seconds, not days.
            "RECORDS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "RECORDS_WEBHOOK_ALLOW_HTTP": "true",
            "RECORDS_WEBHOOK_RETRY_SCHEDULE": "[0.2, 0.4, 0.8, 1.6, 3.2]",
            "RECORDS_WEBHOOK_POLL_INTERVAL": "0.1",
            # A sender killed mid-send leaves its claims; they are taken again after 3 s.
            "RECORDS_WEBHOOK_TIMEOUT_SECONDS": "1",
            "RECORDS_WEBHOOK_CLAIM_LEASE_SECONDS": "3",
        },
    ).start()
    yield running
    running.stop()


@pytest.fixture
def strict_receiver() -> Iterator[Receiver]:
    """Answers 401 to anything `standardwebhooks` does not verify, 500 to the first two
    attempts of each message, then 200."""
    running = Receiver()

    def answer(request: dict[str, Any]) -> tuple[int, dict[str, str]]:
        if not request["verified_by"]:
            return 401, {}
        return (500, {}) if request["nth"] <= 2 else (200, {})

    running.answer = answer
    yield running.start()
    running.stop()


async def test_each_event_reaches_the_erp_exactly_once(
    webhook_stack: Stack, strict_receiver: Receiver
) -> None:
    records, reception = webhook_stack.url("records"), webhook_stack.url("reception")
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(
            f"{records}/webhooks/endpoints",
            headers=MANAGER,
            json={
                "url": strict_receiver.url(),
                "event_types": ["customer.registered", "vehicle.registered"],
            },
        )
        assert r.status_code == 201, r.text
        endpoint = r.json()
        strict_receiver.secrets = [endpoint["secret"]]

        registered = [await register(client, reception, name=f"客户{i}") for i in range(3)]
        customers = {c["id"] for c, _ in registered}
        vehicles = {v["id"] for _, v in registered}

        async def all_succeeded() -> list[dict[str, Any]] | None:
            r = await client.get(
                f"{records}/webhooks/endpoints/{endpoint['id']}/deliveries",
                headers=MANAGER,
                params={"limit": 200},
            )
            assert r.status_code == 200, r.text
            items = r.json()["items"]
            assert all(d["status"] != "failed" for d in items), items
            done = [d for d in items if d["status"] == "succeeded"]
            return items if len(done) == 6 and len(items) == 6 else None

        logged = await eventually(all_succeeded, timeout=60, what="six delivered messages")

    assert all(r["verified_by"] == [endpoint["secret"]] for r in strict_receiver.requests)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for request in strict_receiver.requests:
        by_id.setdefault(request["headers"]["webhook-id"], []).append(request)
    assert sorted(by_id) == sorted(d["message_id"] for d in logged)
    for attempts in by_id.values():
        # Two refused, one accepted, and nothing after it: exactly once.
        assert [a["nth"] for a in attempts] == [1, 2, 3]
        assert all(a["body"] == attempts[0]["body"] for a in attempts)
    assert all(d["attempts"] == 3 for d in logged)
    bodies = [attempts[-1]["body"] for attempts in by_id.values()]
    assert {b["data"]["customer_id"] for b in bodies if b["type"] == "customer.registered"} == (
        customers
    )
    assert {b["data"]["vehicle_id"] for b in bodies if b["type"] == "vehicle.registered"} == (
        vehicles
    )


async def test_a_signed_payment_confirmation_reaches_workorders(webhook_stack: Stack) -> None:
    records, reception = webhook_stack.url("records"), webhook_stack.url("reception")
    workorders = webhook_stack.url("workorders")
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(
            f"{records}/webhooks/erp-sources", headers=MANAGER, json={"name": "Dealer ERP"}
        )
        assert r.status_code == 201, r.text
        source = r.json()
        _, vehicle = await register(client, reception, name="付款客户")
        intake = await open_intake(client, reception, vehicle["id"])

        async def repair_order() -> dict[str, Any] | None:
            found = await repair_orders_for(client, workorders, {intake["id"]})
            return found[0] if found else None

        order = await eventually(repair_order, what="the intake's repair order")
        path = f"{records}/erp/{source['id']}/payments"
        body = payment(erp_payment_id="PAY-E2E-1", repair_order_id=order["id"])

        raw, headers = signed(new_secret(), body)
        assert (await client.post(path, content=raw, headers=headers)).status_code == 401
        raw, headers = signed(source["secret"], body)
        r = await client.post(path, content=raw, headers=headers)
        assert r.status_code == 201, r.text
        raw, headers = signed(source["secret"], body)  # the ERP sends it again
        r = await client.post(path, content=raw, headers=headers)
        assert r.status_code == 200 and r.json()["status"] == "duplicate"

        async def erp_payments() -> list[dict[str, Any]] | None:
            r = await client.get(
                f"{workorders}/repair-orders/{order['id']}/erp-payments", headers=auth("cashier")
            )
            assert r.status_code == 200, r.text
            items: list[dict[str, Any]] = r.json()["items"]
            return items or None

        [paid] = await eventually(erp_payments, what="the payment on the repair order")
    assert paid["erp_payment_id"] == "PAY-E2E-1"
    assert paid["invoice_number"] == body["invoice_number"]
    assert paid["amount"] == "813.60" and paid["method"] == "transfer"
    assert paid["currency"] == "CNY" and paid["paid_at"] and paid["received_at"]


async def test_a_settled_repair_order_reaches_the_erp_as_invoice_and_parts(
    webhook_stack: Stack,
) -> None:
    """The real settlement event from workorders becomes `invoice.settled` and
    `parts.used`, verified at the receiver."""
    branch = "BR04"
    receiver = Receiver().start()
    records, workorders = webhook_stack.url("records"), webhook_stack.url("workorders")
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(
                f"{records}/webhooks/endpoints",
                headers=auth("manager", branch),
                json={"url": receiver.url(), "event_types": ["invoice.settled", "parts.used"]},
            )
            assert r.status_code == 201, r.text
            receiver.secrets = [r.json()["secret"]]

            event = approved_now(
                lines=[labour("BRK-010", "1.5", "450"), part("BP-1", "380", "BRK-010")],
                branch=branch,
            )
            envelope = event.to_envelope(subject=str(event.estimate_id))
            nc = await nats.connect(webhook_stack.nats.url)
            try:
                await nc.jetstream().publish(
                    envelope.type, encode(envelope), headers={"Nats-Msg-Id": envelope.id}
                )
            finally:
                await nc.close()

            foreman = auth("foreman", branch)

            async def opened() -> dict[str, Any] | None:
                r = await client.get(
                    f"{workorders}/repair-orders",
                    params={"intake_id": str(event.intake_id)},
                    headers=foreman,
                )
                items = r.json()["items"]
                return items[0] if items and items[0]["status"] == "open" else None

            order = await eventually(opened, what="repair order opened from consent")
            path = f"{workorders}/repair-orders/{order['id']}"

            async def etag_of(url: str) -> str:
                r = await client.get(url, headers=foreman)
                assert r.status_code == 200, r.text
                return str(r.headers["ETag"])

            job_id = (await client.get(path, headers=foreman)).json()["jobs"][0]["id"]
            tech = {"Authorization": f"Bearer {token('technician', branch, sub='tech-wh')}"}
            r = await client.put(
                f"{workorders}/jobs/{job_id}/assignment",
                headers={**foreman, "If-Match": await etag_of(f"{workorders}/jobs/{job_id}")},
                json={"technician_id": "tech-wh", "bay": "B1"},
            )
            assert r.status_code == 200, r.text
            r = await client.post(f"{workorders}/jobs/{job_id}/clock-on", headers=tech)
            assert r.status_code == 201, r.text
            r = await client.post(f"{workorders}/jobs/{job_id}/clock-off", headers=tech, json={})
            assert r.status_code == 200, r.text
            for to in ("qc", "ready"):
                if to == "ready":
                    r = await client.post(
                        f"{workorders}/jobs/{job_id}/qc",
                        headers=auth("qc", branch),
                        json={"passed": True},
                    )
                    assert r.status_code == 201, r.text
                r = await client.post(
                    f"{path}/transitions",
                    headers={**foreman, "If-Match": await etag_of(path)},
                    json={"to": to},
                )
                assert r.status_code == 200, r.text
            r = await client.post(
                f"{path}/settlement",
                headers={**auth("cashier", branch), "If-Match": await etag_of(path)},
                json={"payments": [{"method": "card", "amount": "937.90"}]},
            )
            assert r.status_code == 200, r.text

            async def both() -> dict[str, dict[str, Any]] | None:
                accepted = {q["body"]["type"]: q for q in receiver.requests}
                return accepted if len(accepted) == 2 else None

            got = await eventually(both, what="invoice.settled and parts.used")
    finally:
        receiver.stop()
    assert len(receiver.requests) == 2
    assert all(q["verified_by"] for q in receiver.requests)
    invoice = got["invoice.settled"]["body"]["data"]
    assert invoice["repair_order_id"] == order["id"] and invoice["branch"] == branch
    assert invoice["invoice_number"] and invoice["number"] == order["number"]
    assert {line["kind"] for line in invoice["lines"]} == {"labour", "part"}
    assert Decimal(invoice["net_total"]) == Decimal("830")
    assert Decimal(invoice["gross_total"]) == Decimal("937.90")
    assert Decimal(invoice["tax_total"]) == Decimal("107.90")
    parts = got["parts.used"]["body"]["data"]
    assert parts["invoice_number"] == invoice["invoice_number"]
    assert [(p["part_number"], Decimal(p["net"])) for p in parts["parts"]] == [
        ("BP-1", Decimal("380"))
    ]


async def test_records_killed_while_sending_loses_and_doubles_nothing(
    webhook_stack: Stack,
) -> None:
    receiver = Receiver()
    receiver.delay = 0.1
    receiver.start()
    records, reception = webhook_stack.url("records"), webhook_stack.url("reception")
    advisor = auth("advisor", "BR03")
    manager = auth("manager", "BR03")
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(
                f"{records}/webhooks/endpoints",
                headers=manager,
                json={"url": receiver.url(), "event_types": ["customer.registered"]},
            )
            assert r.status_code == 201, r.text
            endpoint = r.json()
            receiver.secrets = [endpoint["secret"]]

            async def customer(i: int) -> str:
                r = await client.post(
                    f"{reception}/customers", headers=advisor, json={"name": f"重启客户{i}"}
                )
                assert r.status_code == 201, r.text
                return str(r.json()["id"])

            customers = {await customer(i) for i in range(8)}
            await eventually(lambda: _true(receiver.requests), what="the first delivery")
            webhook_stack.services["records"].kill()
            customers |= {await customer(i) for i in range(8, 12)}
            webhook_stack.services["records"].start()

            async def all_accepted() -> list[dict[str, Any]] | None:
                r = await client.get(
                    f"{records}/webhooks/endpoints/{endpoint['id']}/deliveries",
                    headers=manager,
                    params={"limit": 200},
                )
                assert r.status_code == 200, r.text
                items = r.json()["items"]
                done = [d for d in items if d["status"] == "succeeded"]
                return items if len(done) == len(items) == 12 else None

            logged = await eventually(all_accepted, timeout=60, what="12 delivered messages")
    finally:
        receiver.stop()
    assert all(r["verified_by"] for r in receiver.requests)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for request in receiver.requests:
        by_id.setdefault(request["headers"]["webhook-id"], []).append(request)
    # One message per event; a message the killed process had sent but not recorded comes
    # again with the same id and body, which the receiver drops.
    assert sorted(by_id) == sorted(d["message_id"] for d in logged)
    assert all(
        all(a["body"] == attempts[0]["body"] for a in attempts) for attempts in by_id.values()
    )
    assert {a[0]["body"]["data"]["customer_id"] for a in by_id.values()} == customers


async def _true(value: Any) -> bool:
    return bool(value)
