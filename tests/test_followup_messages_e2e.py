"""Customer messages end to end: followup as a real process with nats-server, sending to
stand-ins of Alibaba Cloud's and Tencent Cloud's SMS APIs on loopback (each checking
every request's signature). A car marked ready sends one SMS within seconds; followup
killed in the middle of a batch of appointment reminders and started again sends each
reminder once; a customer who replied T, or refused contact, gets nothing."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import nats
import pytest
import pytest_asyncio
from sqlmodel import col, func, select

from services.followup.config import Settings
from services.followup.main import SPEC
from services.followup.message_routes import unsubscribe_token
from services.followup.models import Contact, CustomerMessage, InboxEvent
from shared.contracts.common import CustomerSnapshot
from shared.contracts.reception import AppointmentBooked, CustomerRegistered
from shared.contracts.workorders import RepairOrderReady
from shared.db import Database
from shared.events import Contract, encode, utcnow
from tests.flow import publish_event
from tests.harness import Stack, backend, eventually, postgres_available
from tests.sms_standins import Received, StandIn, provider_env

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

TOKEN = "callback-secret-0123"
CONCURRENCY = 5
LINK_SECRET = "link-secret-for-the-tests"


@pytest.fixture(scope="module")
def standins() -> Iterator[tuple[StandIn, StandIn]]:
    aliyun, tencent = StandIn("aliyun").start(), StandIn("tencent").start()
    yield aliyun, tencent
    aliyun.stop()
    tencent.stop()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, standins: tuple[StandIn, StandIn]
) -> Iterator[Stack]:
    if backend() == "postgres" and not postgres_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is unreachable (CI requires it)")
        pytest.skip("PostgreSQL not reachable")
    running = Stack(
        Path(tmp_path_factory.mktemp("messages")),
        services=("followup",),
        extra_env={
            **provider_env(*standins),
            "FOLLOWUP_MESSAGE_INTERVAL": "0.2",
            "FOLLOWUP_MESSAGE_BATCH": "50",
            "FOLLOWUP_MESSAGE_CONCURRENCY": str(CONCURRENCY),
            "FOLLOWUP_MESSAGE_LEASE_SECONDS": "3",
            "FOLLOWUP_MESSAGE_CALLBACK_TOKEN": TOKEN,
            "FOLLOWUP_MESSAGE_LINK_SECRET": LINK_SECRET,
            # No quiet hours here, so that the tests do not depend on the hour they run at
            # (quiet hours themselves: tests/test_followup_message_rules.py).
            "FOLLOWUP_QUIET_HOURS_FROM": "00:00",
            "FOLLOWUP_QUIET_HOURS_UNTIL": "00:00",
        },
    ).start()
    yield running
    running.stop()


@pytest_asyncio.fixture
async def db(stack: Stack) -> AsyncIterator[Database]:
    """Followup's own database, read by the test to see what the process did."""
    database = Database(
        stack.database_urls["followup"],
        info={"outbox_model": SPEC.outbox_model, "idempotency_model": SPEC.idempotency_model},
    )
    yield database
    await database.dispose()


def customer(mobile: str, *, consent: bool = True) -> CustomerRegistered:
    return CustomerRegistered(
        branch="BR01",
        customer=CustomerSnapshot(
            id=uuid.uuid4(),
            name="王先生",
            mobile=mobile,
            preferred_channel="sms",
            language="zh-CN",
            contact_consent=consent,
        ),
        registered_at=utcnow(),
    )


async def publish_many(nats_url: str, events: list[tuple[Contract, str]]) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for event, subject in events:
            envelope = event.to_envelope(subject=subject)
            await js.publish(envelope.type, encode(envelope), headers={"Nats-Msg-Id": envelope.id})
    finally:
        await nc.close()


async def known(db: Database, customer_ids: list[uuid.UUID]) -> None:
    async def all_there() -> bool:
        async with db.reader() as session:
            count = (
                await session.exec(
                    select(func.count())
                    .select_from(Contact)
                    .where(col(Contact.customer_id).in_(customer_ids))
                )
            ).one()
        return count == len(customer_ids)

    await eventually(all_there, timeout=30, what=f"{len(customer_ids)} contacts known")


async def handled(db: Database, event_id: str) -> bool:
    async with db.reader() as session:
        row = (
            await session.exec(select(InboxEvent).where(InboxEvent.event_id == event_id))
        ).first()
    return row is not None


async def messages_of(db: Database, customer_id: uuid.UUID) -> list[CustomerMessage]:
    async with db.reader() as session:
        rows = list(
            (
                await session.exec(
                    select(CustomerMessage).where(CustomerMessage.customer_id == customer_id)
                )
            ).all()
        )
        session.expunge_all()
    return rows


def ready(customer_id: uuid.UUID, number: str) -> RepairOrderReady:
    return RepairOrderReady(
        repair_order_id=uuid.uuid4(),
        number=number,
        branch="BR01",
        customer_id=customer_id,
        vehicle_id=uuid.uuid4(),
        plate="沪A12345",
        advisor="advisor-1",
        amount_due=Decimal("1280.5"),
        ready_at=utcnow(),
    )


async def test_a_car_ready_sends_one_sms_and_keeps_its_delivery_report(
    stack: Stack, standins: tuple[StandIn, StandIn], db: Database
) -> None:
    aliyun, _ = standins
    mobile = "13900000001"
    registered = customer(mobile)
    await publish_event(stack.nats.url, registered, str(registered.customer.id), "RECEPTION")
    await known(db, [registered.customer.id])

    event = ready(registered.customer.id, "RO-2026-000101")
    started = asyncio.get_running_loop().time()
    await publish_event(stack.nats.url, event, str(event.repair_order_id), "WORKORDERS")

    async def sent() -> list[Received] | None:
        got = [r for r in aliyun.received() if r.phone == mobile]
        return got or None

    [got] = await eventually(sent, timeout=10, what="the car-ready SMS at the provider")
    assert asyncio.get_running_loop().time() - started < 5
    assert got.template == "SMS_1001"
    assert got.params == {
        "number": "RO-2026-000101",
        "plate": "沪A12345",
        "amount": "1280.50",
        "currency": "CNY",
    }

    # The same order reported ready again (a retrying producer, another event id): nothing
    # more is queued, and the one message is sent.
    again = ready(registered.customer.id, "RO-2026-000101")
    again.repair_order_id = event.repair_order_id
    await publish_many(stack.nats.url, [(again, str(again.repair_order_id))])

    async def one_sent() -> list[CustomerMessage] | None:
        rows = await messages_of(db, registered.customer.id)
        return rows if rows and rows[0].status == "sent" else None

    [row] = await eventually(one_sent, what="the message marked sent")
    assert (row.provider, row.provider_message_id) == ("aliyun", got.message_id)

    # Alibaba's delivery report for it, posted to the callback as Alibaba does.
    async with httpx.AsyncClient(base_url=stack.url("followup"), timeout=10) as client:
        report = [
            {
                "phone_number": mobile,
                "send_time": "2026-12-08 10:00:00",
                "report_time": "2026-12-08 10:00:03",
                "success": True,
                "err_code": "DELIVERED",
                "err_msg": "用户接收成功",
                "sms_size": "1",
                "biz_id": row.provider_message_id,
                "out_id": str(row.id),
            }
        ]
        r = await client.post(f"/messages/callbacks/aliyun/{TOKEN}/report", json=report)
        assert (r.status_code, r.json()) == (200, {"code": 0, "msg": "接收成功"})
        r = await client.post("/messages/callbacks/aliyun/wrong-token/report", json=report)
        assert r.status_code == 404
    [row] = await messages_of(db, registered.customer.id)
    assert (row.report_status, row.report_detail) == ("DELIVERED", "用户接收成功")
    assert row.reported_at is not None
    assert len([r for r in aliyun.received() if r.phone == mobile]) == 1


async def test_a_customer_who_replied_t_unsubscribed_or_refused_contact_gets_nothing(
    stack: Stack, standins: tuple[StandIn, StandIn], db: Database
) -> None:
    aliyun, tencent = standins
    opted, refusing, linked = "13900000002", "13900000003", "13900000004"
    customers = [customer(opted), customer(refusing, consent=False), customer(linked)]
    await publish_many(stack.nats.url, [(c, str(c.customer.id)) for c in customers])
    await known(db, [c.customer.id for c in customers])
    async with httpx.AsyncClient(base_url=stack.url("followup"), timeout=10) as client:
        reply = {
            "extend": "",
            "mobile": opted,
            "nationcode": "86",
            "sign": "测试4S店",
            "text": "T",
            "time": int(utcnow().timestamp()),
        }
        r = await client.post(f"/messages/callbacks/tencent/{TOKEN}/reply", json=reply)
        assert (r.status_code, r.json()) == (200, {"result": 0, "errmsg": "OK"})
        # The unsubscribe link: the page asks, its button unsubscribes; a forged link is 404.
        token = unsubscribe_token(Settings(message_link_secret=LINK_SECRET), "sms", linked)
        forged = unsubscribe_token(Settings(message_link_secret="another"), "sms", linked)
        r = await client.get(f"/unsubscribe/{token}")
        assert r.status_code == 200 and f'action="/unsubscribe/{token}"' in r.text
        assert (await client.get(f"/unsubscribe/{forged}")).status_code == 404
        assert (await client.post(f"/unsubscribe/{forged}")).status_code == 404
        r = await client.post(f"/unsubscribe/{token}")
        assert r.status_code == 200 and "已退订" in r.text
    events = [ready(c.customer.id, f"RO-2026-00020{i}") for i, c in enumerate(customers)]
    await publish_many(stack.nats.url, [(e, str(e.repair_order_id)) for e in events])

    async def both_handled() -> bool:
        async with db.reader() as session:
            count = (
                await session.exec(
                    select(func.count())
                    .select_from(InboxEvent)
                    .where(InboxEvent.consumer == "followup__car_ready_message")
                )
            ).one()
        # The first test's two events and these three.
        return count >= 5

    await eventually(both_handled, what="both ready events handled")
    for c in customers:
        assert await messages_of(db, c.customer.id) == []
    phones = {r.phone for r in aliyun.received()} | {r.phone for r in tencent.received()}
    assert not {n for m in (opted, refusing, linked) for n in (m, f"+86{m}")} & phones


async def test_killed_in_a_batch_of_reminders_each_is_sent_once(
    stack: Stack, standins: tuple[StandIn, StandIn], db: Database
) -> None:
    aliyun, _ = standins
    count = 150
    customers = [customer(f"137{n:08d}") for n in range(count)]
    await publish_many(stack.nats.url, [(c, str(c.customer.id)) for c in customers])
    await known(db, [c.customer.id for c in customers])
    phones = {c.customer.mobile for c in customers}
    before = len(aliyun.received())
    aliyun.delay = 0.05  # each answer takes 50 ms: a batch takes about half a second
    try:
        booked = [
            AppointmentBooked(
                appointment_id=uuid.uuid4(),
                branch="BR01",
                customer_id=c.customer.id,
                scheduled_for=utcnow() + timedelta(hours=3),
                booked_by="advisor-1",
                booked_at=utcnow(),
            )
            for c in customers
        ]
        await publish_many(stack.nats.url, [(b, str(b.appointment_id)) for b in booked])

        async def some_sent() -> bool:
            return len({r.phone for r in aliyun.received()[before:]} & phones) >= count // 3 + 10

        await eventually(some_sent, timeout=30, what="a third of the reminders and more sent")
        followup = stack.services["followup"]
        followup.kill()
        at_kill = len({r.phone for r in aliyun.received()[before:]} & phones)
        assert at_kill < count, "the batch had finished before the kill"
        followup.start()

        async def all_sent() -> bool:
            return len({r.phone for r in aliyun.received()[before:]} & phones) == count

        await eventually(all_sent, timeout=60, what="every reminder at the provider")
    finally:
        aliyun.delay = 0.0
    mine = [r for r in aliyun.received()[before:] if r.phone in phones]
    per_phone: dict[str, set[str]] = {}
    for r in mine:
        per_phone.setdefault(r.phone, set()).add(r.request_id)
    # One message per reminder: each phone's requests carry one request id.
    assert all(len(ids) == 1 for ids in per_phone.values()), per_phone
    # Sent again only what was at the provider when the process died (its answer not yet
    # committed), under the same request id, answered with the same message id.
    repeats = len(mine) - count
    assert 0 <= repeats <= CONCURRENCY, repeats
    print(f"\nkilled after {at_kill}/{count} reminders; sent again after restart: {repeats}")

    async def all_marked() -> bool:
        async with db.reader() as session:
            rows = (
                await session.exec(
                    select(CustomerMessage.status, CustomerMessage.provider_message_id).where(
                        col(CustomerMessage.cause).startswith("appointment:")
                    )
                )
            ).all()
        return len(rows) == count and all(status == "sent" for status, _ in rows)

    await eventually(all_marked, what="every reminder marked sent")
    first = {r.request_id: r.message_id for r in mine}
    async with db.reader() as session:
        rows = (
            await session.exec(
                select(CustomerMessage.id, CustomerMessage.provider_message_id).where(
                    col(CustomerMessage.cause).startswith("appointment:")
                )
            )
        ).all()
    assert {str(i): p for i, p in rows} == first
