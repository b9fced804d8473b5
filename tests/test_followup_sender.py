"""The sender of customer messages on a real database against real servers on loopback:
an aiosmtpd server (STARTTLS and implicit TLS) receiving the e-mail, and stand-ins of
Alibaba Cloud's and Tencent Cloud's SMS APIs that check every request's signature.
Failover on an error code, a 5xx and a timeout; a rate limit on every provider backs
off; a customer who opted out or refused contact gets nothing."""

import asyncio
import json
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from sqlmodel import select

from services.followup import messages
from services.followup.channels import Channels
from services.followup.config import Settings
from services.followup.main import SPEC
from services.followup.message_routes import unsubscribe_token
from services.followup.models import Contact, CustomerMessage
from services.followup.sender import send_due
from shared.db import Database
from shared.events import utcnow
from shared.migrations import upgrade
from tests.sms_standins import StandIn, provider_env
from tests.test_records_webhooks import make_ca_and_cert
from tools.processes import free_port

pytestmark = [pytest.mark.asyncio, pytest.mark.store]


PARAMS = {"number": "RO-2026-000042", "plate": "沪A12345", "amount": "1280.50", "currency": "CNY"}


class Clock:
    """Now, moved on by hand (the stand-ins check timestamps against the real time)."""

    def __init__(self) -> None:
        self.at = utcnow()

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture(scope="module")
def aliyun() -> Iterator[StandIn]:
    standin = StandIn("aliyun").start()
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def tencent() -> Iterator[StandIn]:
    standin = StandIn("tencent").start()
    yield standin
    standin.stop()


@pytest.fixture(autouse=True)
def healthy(aliyun: StandIn, tencent: StandIn) -> None:
    for standin in (aliyun, tencent):
        standin.mode, standin.delay = "ok", 0.0


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(
        database_url,
        info={"outbox_model": SPEC.outbox_model, "idempotency_model": SPEC.idempotency_model},
    )
    await upgrade(database, SPEC.migrations)
    yield database
    await database.dispose()


def sms_settings(aliyun: StandIn, tencent: StandIn, clock: Clock, **extra: Any) -> Settings:
    env = provider_env(aliyun, tencent, prefix="")
    values: dict[str, Any] = {k.lower(): v for k, v in env.items()}
    for name in ("aliyun_templates", "tencent_templates"):
        values[name] = json.loads(values[name])
    return Settings(clock=clock, message_timeout=1.0, **values, **extra)


async def contact(db: Database, mobile: str, *, consent: bool = True) -> uuid.UUID:
    customer_id = uuid.uuid4()
    async with db.transaction() as session:
        session.add(
            Contact(
                customer_id=customer_id,
                branch="BR01",
                name="王先生",
                mobile=mobile,
                preferred_channel="sms",
                language="zh-CN",
                contact_consent=consent,
                as_of=utcnow(),
                updated_at=utcnow(),
            )
        )
    return customer_id


async def queue(
    db: Database,
    clock: Clock,
    customer_id: uuid.UUID,
    recipient: str,
    *,
    channel: str = "sms",
    language: str = "zh-CN",
) -> uuid.UUID:
    cause = f"car_ready:{uuid.uuid4()}"
    async with db.transaction() as session:
        assert await messages.queue_message(
            session,
            branch="BR01",
            customer_id=customer_id,
            cause=cause,
            channel=channel,
            recipient=recipient,
            purpose="service",
            template="car_ready",
            language=language,
            params=PARAMS,
            not_before=clock(),
            now=clock(),
        )
    async with db.reader() as session:
        row = (
            await session.exec(select(CustomerMessage).where(CustomerMessage.cause == cause))
        ).one()
        return row.id


async def message(db: Database, message_id: uuid.UUID) -> CustomerMessage:
    async with db.reader() as session:
        row = await session.get(CustomerMessage, message_id)
        assert row is not None
        session.expunge(row)
    return row


async def send(db: Database, settings: Settings) -> int:
    async with httpx.AsyncClient() as client:
        return await send_due(db, settings, Channels(settings, client))


async def test_an_sms_goes_through_the_first_provider_signed_and_is_kept_sent(
    db: Database, aliyun: StandIn, tencent: StandIn
) -> None:
    clock = Clock()
    settings = sms_settings(aliyun, tencent, clock)
    mobile = "13800138001"
    message_id = await queue(db, clock, await contact(db, mobile), mobile)
    assert await send(db, settings) == 1
    got = aliyun.distinct()[str(message_id)]
    assert (got.phone, got.template) == (mobile, "SMS_1001")
    assert got.params == {
        "number": "RO-2026-000042",
        "plate": "沪A12345",
        "amount": "1280.50",
        "currency": "CNY",
    }
    row = await message(db, message_id)
    assert (row.status, row.provider, row.provider_message_id, row.provider_status) == (
        "sent",
        "aliyun",
        got.message_id,
        "OK",
    )
    assert await send(db, settings) == 0
    assert [r.request_id for r in aliyun.received()].count(str(message_id)) == 1


@pytest.mark.parametrize(("mode", "delay"), [("error", 0.0), ("http500", 0.0), ("ok", 3.0)])
async def test_a_failing_provider_passes_the_message_to_the_next(
    db: Database, aliyun: StandIn, tencent: StandIn, mode: str, delay: float
) -> None:
    """An error code, a 5xx or no answer within the timeout (1 s here)."""
    clock = Clock()
    settings = sms_settings(aliyun, tencent, clock)
    aliyun.mode, aliyun.delay = mode, delay
    mobile = "13800138002"
    message_id = await queue(db, clock, await contact(db, mobile), mobile)
    assert await send(db, settings) == 1
    got = tencent.distinct()[str(message_id)]
    assert (got.phone, got.template) == (f"+86{mobile}", "1001")
    assert got.params == ["沪A12345", "1280.50", "RO-2026-000042"]
    row = await message(db, message_id)
    assert (row.status, row.provider, row.provider_message_id, row.provider_status) == (
        "sent",
        "tencent",
        got.message_id,
        "Ok",
    )
    assert str(message_id) not in aliyun.distinct()


async def test_the_branchs_provider_order_is_a_setting(
    db: Database, aliyun: StandIn, tencent: StandIn
) -> None:
    clock = Clock()
    settings = sms_settings(aliyun, tencent, clock, branch_sms_providers={"BR01": ["tencent"]})
    mobile = "13800138003"
    message_id = await queue(db, clock, await contact(db, mobile), mobile)
    assert await send(db, settings) == 1
    assert (await message(db, message_id)).provider == "tencent"
    assert str(message_id) not in aliyun.distinct()


async def test_rate_limited_everywhere_the_message_waits_and_goes_later(
    db: Database, aliyun: StandIn, tencent: StandIn
) -> None:
    clock = Clock()
    settings = sms_settings(aliyun, tencent, clock, message_retry_base=30.0)
    aliyun.mode = tencent.mode = "limited"
    mobile = "13800138004"
    message_id = await queue(db, clock, await contact(db, mobile), mobile)
    assert await send(db, settings) == 1
    row = await message(db, message_id)
    assert (row.status, row.attempts, row.provider, row.provider_status) == (
        "pending",
        1,
        "tencent",
        "RequestLimitExceeded",
    )
    assert row.next_attempt_at == clock() + timedelta(seconds=30)
    assert "isv.BUSINESS_LIMIT_CONTROL" in (row.last_error or "")
    aliyun.mode = tencent.mode = "ok"
    clock.at += timedelta(seconds=29)
    assert await send(db, settings) == 0  # not due yet
    clock.at += timedelta(seconds=1)
    assert await send(db, settings) == 1
    row = await message(db, message_id)
    assert (row.status, row.attempts, row.provider) == ("sent", 2, "aliyun")


async def test_a_wrong_secret_is_refused_by_the_provider_and_nothing_is_sent(
    db: Database, aliyun: StandIn, tencent: StandIn
) -> None:
    clock = Clock()
    settings = sms_settings(aliyun, tencent, clock)
    settings.aliyun_access_key_secret = settings.tencent_secret_key = type(
        settings.tencent_secret_key
    )("not-the-secret")
    mobile = "13800138005"
    message_id = await queue(db, clock, await contact(db, mobile), mobile)
    refused = len(aliyun.refused), len(tencent.refused)
    assert await send(db, settings) == 1
    assert (len(aliyun.refused), len(tencent.refused)) == (refused[0] + 1, refused[1] + 1)
    assert aliyun.refused[-1] == "SignatureDoesNotMatch"
    assert tencent.refused[-1] == "AuthFailure.SignatureFailure"
    assert (await message(db, message_id)).status == "pending"


async def test_an_opted_out_or_refusing_customer_gets_nothing(
    db: Database, aliyun: StandIn, tencent: StandIn
) -> None:
    clock = Clock()
    settings = sms_settings(aliyun, tencent, clock)
    opted, refusing = "13800138006", "13800138007"
    first = await queue(db, clock, await contact(db, opted), opted)
    second = await queue(db, clock, await contact(db, refusing, consent=False), refusing)
    async with db.transaction() as session:
        await messages.record_opt_out(
            session, channel="sms", recipient=opted, source="test", now=clock()
        )
    assert await send(db, settings) == 2
    assert [(await message(db, m)).status for m in (first, second)] == ["suppressed"] * 2
    sent = {r.phone for r in aliyun.received()} | {r.phone for r in tencent.received()}
    assert not {opted, refusing, f"+86{opted}", f"+86{refusing}"} & sent


# --- e-mail through a real SMTP server ----------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 2.0.0 Ok: queued as 4F2C1"


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_an_email_reaches_the_smtp_server_over_tls(
    db: Database, tmp_path: Path, security: str
) -> None:
    ca_file, cert_file, key_file = make_ca_and_cert(tmp_path, "localhost")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    inbox = Inbox()
    port = free_port()
    tls_args: dict[str, Any] = (
        {"tls_context": server_tls, "require_starttls": True}
        if security == "starttls"
        else {"ssl_context": server_tls}
    )
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **tls_args)
    controller.start()
    try:
        clock = Clock()
        settings = Settings(
            clock=clock,
            smtp_host="localhost",
            smtp_port=port,
            smtp_security=security,
            smtp_ca_file=str(ca_file),
            smtp_sender="service@dealer.example.cn",
            public_url="https://service.dealer.example.cn",
            message_link_secret="link-secret",
        )
        address = "wang.customer@example.cn"
        message_id = await queue(
            db, clock, await contact(db, "13800138008"), address, channel="email", language="en"
        )
        assert await send(db, settings) == 1
        row = await message(db, message_id)
        assert (row.status, row.provider) == ("sent", "smtp"), row.last_error
        assert row.provider_message_id == f"<{message_id}@dealer.example.cn>"
        [envelope] = inbox.envelopes
        assert (envelope.mail_from, envelope.rcpt_tos) == (
            "service@dealer.example.cn",
            [address],
        )
        assert isinstance(envelope.content, bytes)
        mail = message_from_bytes(envelope.content)
        assert mail["Message-ID"] == row.provider_message_id
        assert str(make_header(decode_header(mail["Subject"]))) == "Your car is ready"
        text = mail.get_payload(decode=True)
        assert isinstance(text, bytes)
        assert "Amount due: CNY 1280.50" in text.decode()
        assert "RO-2026-000042" in text.decode()
        token = unsubscribe_token(settings, "email", address)
        link = f"https://service.dealer.example.cn/unsubscribe/{token}"
        assert link in text.decode()
        header = str(make_header(decode_header(mail["List-Unsubscribe"])))
        assert "".join(header.split()) == f"<{link}>"
    finally:
        controller.stop()
    await asyncio.sleep(0)  # let the server's closed transports go before the loop ends


async def test_an_unreachable_smtp_server_backs_off(db: Database) -> None:
    clock = Clock()
    settings = Settings(clock=clock, smtp_host="127.0.0.1", smtp_port=free_port())
    message_id = await queue(
        db, clock, await contact(db, "13800138009"), "li@example.cn", channel="email"
    )
    assert await send(db, settings) == 1
    row = await message(db, message_id)
    assert (row.status, row.attempts, row.provider, row.provider_status) == (
        "pending",
        1,
        "smtp",
        "unreachable",
    )
