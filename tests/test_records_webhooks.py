"""ERP webhooks in process (ASGI) on a real database and nats-server, sending to a real HTTP
receiver on loopback: endpoints and their rules, signing and rotation, retries, 410, slow
down with Retry-After, giving up, replay, ping, SSRF refusals, and the signed inbound
price lists and payments."""

import ipaddress
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from sqlalchemy import update
from sqlmodel import col, func, select
from standardwebhooks import Webhook

from services.records import webhook_handlers, webhook_service
from services.records.config import Settings
from services.records.main import create_app
from services.records.models import OutboxEvent
from services.records.webhook_models import (
    ErpPayment,
    PartPriceList,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from services.records.webhook_targets import why_not_public
from shared.contracts import (
    CustomerSnapshot,
    CustomerUpdated,
    InvoiceLine,
    RepairOrderSettled,
    VehicleOwnerChanged,
    VehicleSnapshot,
)
from shared.db import Database
from shared.events import decode, utcnow
from tests.harness import NatsServer, auth, eventually
from tests.test_bad_input import assert_problem

MANAGER = auth("manager")
ADMIN = auth("admin")


# --- a webhook receiver on loopback --------------------------------------------------


class Receiver:
    """A real HTTP server in a thread. `answer(request)` decides each response; every
    request is kept with whether `standardwebhooks` verified it against `secrets`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.secrets: list[str] = []
        self.answer: Callable[[dict[str, Any]], tuple[int, dict[str, str]]] = lambda r: (200, {})
        self.delay = 0.0  # seconds each answer takes, as a slow ERP would
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified_by = []
                for secret in receiver.secrets:
                    try:
                        Webhook(secret).verify(body, headers)
                        verified_by.append(secret)
                    except Exception:
                        continue
                request = {
                    "path": self.path,
                    "headers": headers,
                    "body": orjson.loads(body),
                    "verified_by": verified_by,
                    "at": time.monotonic(),
                }
                with receiver.lock:
                    receiver.requests.append(request)
                    request["nth"] = sum(
                        1
                        for r in receiver.requests
                        if r["headers"].get("webhook-id") == headers.get("webhook-id")
                    )
                    status, extra = receiver.answer(request)
                time.sleep(receiver.delay)
                payload = b'{"ok": true}' if status < 300 else b'{"error": "not now"}'
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of(self, message_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["headers"].get("webhook-id") == message_id]


@pytest.fixture
def receiver() -> Any:
    running = Receiver().start()
    yield running
    running.stop()


# --- the app -------------------------------------------------------------------------


def settings_for(database_url: str, nats: NatsServer, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "nats_url": nats.url,
        "files_dir": str(tmp / "files"),
        "webhook_allow_private_targets": True,
        "webhook_allow_http": True,  # the receiver is plain http on loopback
        "webhook_retry_schedule": [0.1, 0.1, 0.1],
        "webhook_jitter": 0.1,
        "webhook_poll_interval": 0.05,
        "webhook_timeout_seconds": 3.0,
        **overrides,
    }
    return Settings(**values)


class App:
    def __init__(self, settings: Settings):
        self.app = create_app(settings)

    async def __aenter__(self) -> httpx.AsyncClient:
        self.lifespan = self.app.router.lifespan_context(self.app)
        await self.lifespan.__aenter__()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(self.app), base_url="http://test"
        )
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(None, None, None)


@pytest_asyncio.fixture
async def records(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with App(settings_for(database_url, nats_server, tmp_path)) as client:
        yield client


@pytest_asyncio.fixture
async def strict(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """Records as deployed: private and loopback targets refused."""
    settings = settings_for(
        database_url, nats_server, tmp_path, webhook_allow_private_targets=False
    )
    async with App(settings) as client:
        yield client


def db_of(client: httpx.AsyncClient) -> Any:
    return client._transport.app.state.runtime.db  # type: ignore[attr-defined]


async def count(client: httpx.AsyncClient, model: Any) -> int:
    async with db_of(client).reader() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def outbox(client: httpx.AsyncClient, event_type: str) -> list[dict[str, Any]]:
    async with db_of(client).reader() as session:
        rows = (
            await session.exec(select(OutboxEvent).where(OutboxEvent.subject == event_type))
        ).all()
        return [decode(r.payload).data for r in rows]


async def register(
    client: httpx.AsyncClient,
    url: str,
    types: tuple[str, ...] = ("customer.registered", "invoice.settled", "parts.used"),
    headers: dict[str, str] = MANAGER,
) -> dict[str, Any]:
    r = await client.post(
        "/webhooks/endpoints", headers=headers, json={"url": url, "event_types": list(types)}
    )
    assert r.status_code == 201, r.text
    return r.json()


async def queue(client: httpx.AsyncClient, name: str = "王芳", branch: str = "BR01") -> str:
    """A customer.registered message, queued as the event's handler would; its webhook-id."""
    event_id = str(uuid.uuid4())
    async with db_of(client).transaction() as session:
        await webhook_service.enqueue(
            session,
            branch=branch,
            event_type="customer.registered",
            occurred_at=utcnow(),
            data={"customer_id": str(uuid.uuid4()), "name": name},
            source_event_id=event_id,
        )
    return webhook_service.message_id(event_id, "customer.registered")


async def deliveries(
    client: httpx.AsyncClient, endpoint_id: str, headers: dict[str, str] = MANAGER
) -> list[dict[str, Any]]:
    r = await client.get(f"/webhooks/endpoints/{endpoint_id}/deliveries", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def finished(client: httpx.AsyncClient, endpoint_id: str, n: int = 1) -> Any:
    async def probe() -> list[dict[str, Any]] | None:
        items = await deliveries(client, endpoint_id)
        done = [d for d in items if d["status"] != "pending"]
        return items if len(done) >= n else None

    return await eventually(probe, timeout=15, what=f"{n} finished deliveries")


async def detail(client: httpx.AsyncClient, delivery_id: str) -> dict[str, Any]:
    r = await client.get(f"/webhooks/deliveries/{delivery_id}", headers=MANAGER)
    assert r.status_code == 200, r.text
    return r.json()


pytestmark = [pytest.mark.asyncio]


# --- rules without a database ----------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("100.64.0.1", "reserved"),
        ("240.0.0.1", "private"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        # IPv4 carried in IPv6: judged by the IPv4 host a tunnel or translator reaches.
        ("2002:7f00:1::", "6to4-wrapped loopback"),
        ("2002:c0a8:101::1", "6to4-wrapped private"),
        ("2002:a9fe:a9fe::", "6to4-wrapped link-local"),
        ("2002:808:808::1", None),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo-wrapped loopback"),  # client 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo-wrapped private"),  # client 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "private"),  # 8.8.8.8; Teredo is not public
        ("64:ff9b::7f00:1", "NAT64-wrapped loopback"),
        ("64:ff9b::a00:1", "NAT64-wrapped private"),
        ("64:ff9b::c0a8:101", "NAT64-wrapped private"),
        ("64:ff9b::a9fe:a9fe", "NAT64-wrapped link-local"),
        ("64:ff9b::808:808", None),  # a public host through the network's NAT64
    ],
)
async def test_address_kinds(address: str, kind: str | None) -> None:
    assert why_not_public(ipaddress.ip_address(address)) == kind


@pytest.mark.store
async def test_production_refuses_plain_http_targets(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    """As deployed (every setting at its default): an https target on a public address is
    taken, the same target over plain http is a 422 naming `url`, before and after."""
    settings = Settings(
        database_url=database_url, nats_url=nats_server.url, files_dir=str(tmp_path / "files")
    )
    assert not settings.webhook_allow_http and not settings.webhook_allow_private_targets
    async with App(settings) as production:
        body = assert_problem(
            await production.post(
                "/webhooks/endpoints",
                headers=MANAGER,
                json={"url": "http://93.184.215.14/hook", "event_types": ["parts.used"]},
            ),
            422,
            "url",
        )
        assert "https" in body["detail"]
        assert await count(production, WebhookEndpoint) == 0
        r = await production.post(
            "/webhooks/endpoints",
            headers=MANAGER,
            json={"url": "https://93.184.215.14/hook", "event_types": ["parts.used"]},
        )
        assert r.status_code == 201, r.text
        endpoint = r.json()
        assert_problem(
            await production.patch(
                f"/webhooks/endpoints/{endpoint['id']}",
                headers={**MANAGER, "If-Match": r.headers["etag"]},
                json={"url": "http://93.184.215.14/hook"},
            ),
            422,
            "url",
        )


# --- endpoints -----------------------------------------------------------------------


@pytest.mark.store
async def test_endpoint_rules_roles_etag_and_idempotency(records: httpx.AsyncClient) -> None:
    url = "http://93.184.215.14/erp/hooks"  # a public address: never called here
    for role in ("advisor", "records_clerk", "erp", "cashier"):
        r = await records.post(
            "/webhooks/endpoints",
            headers=auth(role),
            json={"url": url, "event_types": ["invoice.settled"]},
        )
        assert_problem(r, 403)
    assert_problem(
        await records.post(
            "/webhooks/endpoints", headers=MANAGER, json={"url": url, "event_types": ["nope"]}
        ),
        422,
        "event_types.0",
    )
    assert_problem(
        await records.post(
            "/webhooks/endpoints", headers=MANAGER, json={"url": url, "event_types": []}
        ),
        422,
        "event_types",
    )
    assert_problem(
        await records.post(
            "/webhooks/endpoints",
            headers=MANAGER,
            json={"url": url, "event_types": ["invoice.settled"], "colour": "red"},
        ),
        422,
        "colour",
    )
    assert await count(records, WebhookEndpoint) == 0

    key = {**MANAGER, "Idempotency-Key": "register-erp-1"}
    body = {"url": url, "event_types": ["parts.used", "invoice.settled", "parts.used"]}
    first = await records.post("/webhooks/endpoints", headers=key, json=body)
    assert first.status_code == 201, first.text
    endpoint = first.json()
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["event_types"] == ["invoice.settled", "parts.used"]
    assert endpoint["active"] is True and first.headers["ETag"] == endpoint["etag"]
    again = await records.post("/webhooks/endpoints", headers=key, json=body)
    assert again.json()["id"] == endpoint["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert_problem(
        await records.post("/webhooks/endpoints", headers=key, json={**body, "url": url + "x"}),
        422,
        "Idempotency-Key",
    )
    assert await count(records, WebhookEndpoint) == 1

    path = f"/webhooks/endpoints/{endpoint['id']}"
    r = await records.get(path, headers=ADMIN)
    assert r.status_code == 200 and "secret" not in r.json()
    assert_problem(await records.get(path, headers=auth("manager", "BR02")), 404)
    assert_problem(await records.get(path, headers=auth("records_clerk")), 403)
    assert (await records.get(path + "/secret", headers=MANAGER)).json()["secret"] == endpoint[
        "secret"
    ]

    assert_problem(await records.patch(path, headers=MANAGER, json={"active": False}), 428)
    assert_problem(
        await records.patch(path, headers={**MANAGER, "If-Match": '"99"'}, json={"active": False}),
        412,
    )
    r = await records.patch(
        path, headers={**MANAGER, "If-Match": r.headers["ETag"]}, json={"active": False}
    )
    assert r.status_code == 200 and r.json()["active"] is False
    assert r.headers["ETag"] != endpoint["etag"]
    assert_problem(
        await records.patch(
            path, headers={**MANAGER, "If-Match": r.headers["ETag"]}, json={"url": "gopher://x"}
        ),
        422,
        "url",
    )
    second = await register(records, url + "/second")
    listed = (await records.get("/webhooks/endpoints", headers=MANAGER)).json()
    assert [e["id"] for e in listed["items"]] == [second["id"], endpoint["id"]]
    r = await records.get("/webhooks/endpoints", headers=MANAGER, params={"limit": 1})
    assert [e["id"] for e in r.json()["items"]] == [second["id"]]
    r = await records.get(
        "/webhooks/endpoints", headers=MANAGER, params={"cursor": r.json()["next_cursor"]}
    )
    assert [e["id"] for e in r.json()["items"]] == [endpoint["id"]]
    assert r.json()["next_cursor"] is None
    other = await records.get("/webhooks/endpoints", headers=auth("manager", "BR02"))
    assert other.json()["items"] == []


@pytest.mark.store
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",  # resolved: the name is checked by its address
        "http://2130706433/hook",  # 127.0.0.1 written as a number
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://10.20.30.40/hook",
        "http://192.168.0.10/hook",
        "https://172.31.255.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/hook",
        "http://224.0.0.251/hook",
        "http://100.64.1.1/hook",
        "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        "http://[2002:c0a8:101::1]/hook",  # 6to4 of 192.168.1.1
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo, client 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # NAT64 of 169.254.169.254
        "http://[64:ff9b::7f00:1]:8080/hook",  # NAT64 of 127.0.0.1
        "ftp://93.184.215.14/hook",
        "http://user:pw@93.184.215.14/hook",
        "http:///hook",
        "http://93.184.215.14:99999/hook",
        "http://no-such-host.invalid/hook",
    ],
)
async def test_targets_refused_at_registration(strict: httpx.AsyncClient, url: str) -> None:
    r = await strict.post(
        "/webhooks/endpoints", headers=MANAGER, json={"url": url, "event_types": ["parts.used"]}
    )
    assert_problem(r, 422, "url")
    assert await count(strict, WebhookEndpoint) == 0


@pytest.mark.store
async def test_target_checked_again_before_each_send(
    strict: httpx.AsyncClient, receiver: Receiver
) -> None:
    """An endpoint whose host now resolves to a private address is not called."""
    r = await strict.post(
        "/webhooks/endpoints",
        headers=MANAGER,
        json={"url": "http://93.184.215.14/hook", "event_types": ["customer.registered"]},
    )
    endpoint = r.json()
    async with db_of(strict).transaction() as session:  # as if its DNS had changed
        row = await session.get(WebhookEndpoint, uuid.UUID(endpoint["id"]))
        assert row is not None
        row.url = receiver.url()
    r = await strict.post(f"/webhooks/endpoints/{endpoint['id']}/ping", headers=MANAGER)
    assert r.status_code == 202, r.text
    [delivery] = await finished(strict, endpoint["id"])
    assert delivery["status"] == "failed" and delivery["last_status_code"] is None
    assert "target refused" in delivery["last_error"] and "loopback" in delivery["last_error"]
    assert receiver.requests == []


# --- sending -------------------------------------------------------------------------


@pytest.mark.store
async def test_ping_is_signed_and_logged(records: httpx.AsyncClient, receiver: Receiver) -> None:
    endpoint = await register(records, receiver.url())
    receiver.secrets = [endpoint["secret"]]
    assert_problem(
        await records.post(f"/webhooks/endpoints/{endpoint['id']}/ping", headers=auth("advisor")),
        403,
    )
    r = await records.post(f"/webhooks/endpoints/{endpoint['id']}/ping", headers=MANAGER)
    assert r.status_code == 202, r.text
    ping = r.json()
    assert ping["event_type"] == "webhook.ping" and ping["status"] == "pending"
    await finished(records, endpoint["id"])
    [request] = receiver.requests
    assert request["verified_by"] == [endpoint["secret"]]
    assert request["headers"]["webhook-id"] == ping["message_id"]
    assert request["body"]["type"] == "webhook.ping"
    assert request["body"]["data"]["endpoint_id"] == endpoint["id"]
    assert abs(int(request["headers"]["webhook-timestamp"]) - time.time()) < 60
    log = await detail(records, ping["id"])
    assert log["status"] == "succeeded" and log["attempts"] == 1
    assert log["request_body"] == request["body"]
    [attempt] = log["attempt_log"]
    assert attempt["status_code"] == 200 and attempt["trigger"] == "ping"
    assert attempt["response_ms"] is not None and attempt["response_body"] == '{"ok": true}'
    assert_problem(
        await records.get(f"/webhooks/deliveries/{ping['id']}", headers=auth("manager", "BR02")),
        404,
    )


@pytest.mark.store
async def test_secret_rotation_signs_with_both_during_the_overlap(
    records: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await register(records, receiver.url())
    path = f"/webhooks/endpoints/{endpoint['id']}"
    old = endpoint["secret"]
    assert_problem(await records.post(path + "/rotate-secret", headers=MANAGER), 428)
    r = await records.post(
        path + "/rotate-secret",
        headers={**MANAGER, "If-Match": endpoint["etag"]},
        json={"overlap_seconds": 3600},
    )
    assert r.status_code == 200, r.text
    rotated = r.json()
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_") and rotated["previous_secret_until"]
    receiver.secrets = [old, new]
    await records.post(path + "/ping", headers=MANAGER)
    await finished(records, endpoint["id"])
    [request] = receiver.requests
    signatures = request["headers"]["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert sorted(request["verified_by"]) == sorted([old, new])

    r = await records.post(
        path + "/rotate-secret",
        headers={**MANAGER, "If-Match": r.headers["ETag"]},
        json={"overlap_seconds": 0},
    )
    newest = r.json()["secret"]
    receiver.secrets = [old, new, newest]
    await records.post(path + "/ping", headers=MANAGER)
    await finished(records, endpoint["id"], 2)
    assert receiver.requests[-1]["verified_by"] == [newest]
    assert_problem(
        await records.post(
            path + "/rotate-secret",
            headers={**MANAGER, "If-Match": "*"},
            json={"overlap_seconds": 30 * 86400},
        ),
        422,
        "overlap_seconds",
    )


@pytest.mark.store
async def test_retries_until_it_succeeds_with_one_webhook_id(
    records: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await register(records, receiver.url())
    receiver.secrets = [endpoint["secret"]]
    receiver.answer = lambda r: (500, {}) if r["nth"] <= 2 else (204, {})
    msg = await queue(records)
    [delivery] = await finished(records, endpoint["id"])
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 3
    requests = receiver.of(msg)
    assert len(requests) == 3 and all(r["verified_by"] for r in requests)
    assert len({r["body"]["data"]["customer_id"] for r in requests}) == 1
    log = await detail(records, delivery["id"])
    assert [a["status_code"] for a in log["attempt_log"]] == [500, 500, 204]
    assert [a["trigger"] for a in log["attempt_log"]] == ["event", "retry", "retry"]
    assert log["request_body"]["type"] == "customer.registered"


@pytest.mark.store
async def test_last_retry_disables_the_endpoint_and_tells_the_manager(
    records: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await register(records, receiver.url())
    receiver.answer = lambda r: (500, {})
    msg = await queue(records)
    [delivery] = await finished(records, endpoint["id"])
    assert delivery["status"] == "failed" and delivery["attempts"] == 4  # 1 + 3 retries
    assert len(receiver.of(msg)) == 4
    r = await records.get(f"/webhooks/endpoints/{endpoint['id']}", headers=MANAGER)
    assert r.json()["active"] is False and r.json()["disabled_reason"] == "failing"
    [told] = await outbox(records, "records.webhook.endpoint_disabled.v1")
    assert told["endpoint_id"] == endpoint["id"] and told["reason"] == "failing"
    assert told["delivery_id"] == delivery["id"] and told["last_status_code"] == 500
    assert_problem(
        await records.post(f"/webhooks/endpoints/{endpoint['id']}/ping", headers=MANAGER), 409
    )
    # The operator sees it: the failed delivery under its endpoint, one endpoint disabled.
    scraped = (await records.get("/metrics", headers=MANAGER)).text
    failed = f'webhook_deliveries_failing{{endpoint="{endpoint["id"]}",state="failed"}} 1.0'
    assert failed in scraped
    assert "webhook_endpoints_disabled 1.0" in scraped


@pytest.mark.store
async def test_gone_disables_at_once_and_re_enabling_sends_what_waited(
    records: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await register(records, receiver.url())
    receiver.answer = lambda r: (410, {})
    first = await queue(records, "甲")
    [delivery] = await finished(records, endpoint["id"])
    assert delivery["status"] == "failed" and delivery["attempts"] == 1
    assert delivery["last_status_code"] == 410
    r = await records.get(f"/webhooks/endpoints/{endpoint['id']}", headers=MANAGER)
    assert r.json()["active"] is False and r.json()["disabled_reason"] == "gone"
    [told] = await outbox(records, "records.webhook.endpoint_disabled.v1")
    assert told["reason"] == "gone"

    # Disabled endpoints get no new messages queued; nothing is sent to them.
    await queue(records, "乙")
    assert len(await deliveries(records, endpoint["id"])) == 1
    receiver.answer = lambda r: (200, {})
    r = await records.patch(
        f"/webhooks/endpoints/{endpoint['id']}",
        headers={**MANAGER, "If-Match": r.headers["ETag"]},
        json={"active": True},
    )
    assert r.status_code == 200 and r.json()["disabled_reason"] is None
    r = await records.post(f"/webhooks/deliveries/{delivery['id']}/replay", headers=MANAGER)
    assert r.status_code == 202, r.text
    await eventually(
        lambda: _status(records, delivery["id"], "succeeded"), what="replayed delivery"
    )
    assert [q["nth"] for q in receiver.of(first)] == [1, 2]
    assert len(await outbox(records, "records.webhook.endpoint_disabled.v1")) == 1


async def _status(client: httpx.AsyncClient, delivery_id: str, status: str) -> bool:
    return (await detail(client, delivery_id))["status"] == status


@pytest.mark.store
@pytest.mark.parametrize("code", [429, 502, 504])
async def test_slow_down_honours_retry_after(
    records: httpx.AsyncClient, receiver: Receiver, code: int
) -> None:
    endpoint = await register(records, receiver.url())
    receiver.answer = lambda r: (code, {"Retry-After": "1"}) if r["nth"] == 1 else (200, {})
    msg = await queue(records)
    [delivery] = await finished(records, endpoint["id"])
    assert delivery["status"] == "succeeded"
    first, second = receiver.of(msg)
    # The retry schedule says 0.1 s; the endpoint asked for 1 s.
    assert second["at"] - first["at"] >= 0.9
    log = await detail(records, delivery["id"])
    assert [a["status_code"] for a in log["attempt_log"]] == [code, 200]


@pytest.mark.store
async def test_slow_down_holds_the_whole_endpoint(
    records: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await register(records, receiver.url())
    receiver.answer = lambda r: (
        (429, {"Retry-After": "1"}) if len(receiver.requests) == 1 else (200, {})
    )
    first = await queue(records, "甲")

    async def throttled() -> bool:
        r = await records.get(f"/webhooks/endpoints/{endpoint['id']}", headers=MANAGER)
        return r.json()["throttled_until"] is not None

    await eventually(throttled, what="the endpoint held after its 429")
    second = await queue(records, "乙")
    await finished(records, endpoint["id"], 2)
    throttled_at = receiver.of(first)[0]["at"]
    assert receiver.of(second)[0]["at"] - throttled_at >= 0.9
    assert receiver.of(first)[1]["at"] - throttled_at >= 0.9


@pytest.mark.store
async def test_redirects_are_not_followed(records: httpx.AsyncClient, receiver: Receiver) -> None:
    endpoint = await register(records, receiver.url())
    receiver.answer = lambda r: (302, {"Location": receiver.url("/elsewhere")})
    await records.post(f"/webhooks/endpoints/{endpoint['id']}/ping", headers=MANAGER)
    [delivery] = await finished(records, endpoint["id"])
    assert delivery["status"] == "failed" and delivery["last_status_code"] == 302
    assert "not followed" in delivery["last_error"]
    assert [r["path"] for r in receiver.requests] == ["/hook"]


@pytest.mark.store
async def test_replay_sends_the_same_message_again(
    records: httpx.AsyncClient, receiver: Receiver
) -> None:
    endpoint = await register(records, receiver.url())
    receiver.secrets = [endpoint["secret"]]
    msg = await queue(records)
    [delivery] = await finished(records, endpoint["id"])
    path = f"/webhooks/deliveries/{delivery['id']}/replay"
    assert_problem(await records.post(path, headers=auth("records_clerk")), 403)
    assert_problem(await records.post(path, headers=auth("manager", "BR02")), 404)
    r = await records.post(path, headers={**MANAGER, "Idempotency-Key": "replay-1"})
    assert r.status_code == 202 and r.json()["status"] == "pending"
    again = await records.post(path, headers={**MANAGER, "Idempotency-Key": "replay-1"})
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    await eventually(lambda: _status(records, delivery["id"], "succeeded"), what="replay sent")
    requests = receiver.of(msg)
    assert len(requests) == 2 and requests[0]["body"] == requests[1]["body"]
    assert all(r["verified_by"] for r in requests)
    log = await detail(records, delivery["id"])
    assert [a["trigger"] for a in log["attempt_log"]] == ["event", "replay"]


# --- queueing from events ------------------------------------------------------------


def settled(branch: str = "BR01") -> RepairOrderSettled:
    at = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    return RepairOrderSettled(
        repair_order_id=uuid.uuid4(),
        number="RO-2026-000042",
        invoice_number="INV-2026-000042",
        branch=branch,
        customer_id=uuid.uuid4(),
        vehicle_id=uuid.uuid4(),
        vin="LSVAU2180N2183294",
        lines=[
            InvoiceLine(
                line_id=uuid.uuid4(),
                kind="labour",
                op_code="BRK01",
                description="更换前刹车片",
                net=Decimal("300.00"),
            ),
            InvoiceLine(
                line_id=uuid.uuid4(),
                kind="part",
                part_number="5Q0698151",
                description="前刹车片",
                quantity=Decimal("1"),
                unit_price=Decimal("420.00"),
                net=Decimal("420.00"),
            ),
        ],
        net_total=Decimal("720.00"),
        tax_total=Decimal("93.60"),
        gross_total=Decimal("813.60"),
        customer_due=Decimal("813.60"),
        settled_by="cashier-1",
        settled_at=at,
    )


@pytest.mark.store
async def test_a_settled_invoice_becomes_invoice_and_parts_messages_once(
    records: httpx.AsyncClient, receiver: Receiver
) -> None:
    invoices = await register(records, receiver.url("/invoices"), ("invoice.settled",))
    parts = await register(records, receiver.url("/parts"), ("parts.used",))
    other = await register(
        records, receiver.url("/other"), ("invoice.settled",), headers=auth("manager", "BR02")
    )
    event = settled()
    event._envelope = event.to_envelope(subject=str(event.repair_order_id))
    for _ in range(2):  # a repeat queues nothing more
        async with db_of(records).transaction() as session:
            await webhook_handlers.queue_invoice(event, session)
    await finished(records, invoices["id"])
    await finished(records, parts["id"])
    assert await deliveries(records, other["id"], auth("manager", "BR02")) == []
    by_path = {r["path"]: r for r in receiver.requests}
    assert sorted(by_path) == ["/invoices", "/parts"] and len(receiver.requests) == 2
    invoice = by_path["/invoices"]["body"]
    assert invoice["type"] == "invoice.settled"
    assert invoice["timestamp"] == "2026-11-28T09:30:00+00:00"
    assert invoice["data"]["invoice_number"] == "INV-2026-000042"
    assert invoice["data"]["tax_total"] == "93.60" and len(invoice["data"]["lines"]) == 2
    used = by_path["/parts"]["body"]["data"]
    assert [p["part_number"] for p in used["parts"]] == ["5Q0698151"]
    assert used["parts"][0]["unit_price"] == "420.00"
    assert used["invoice_number"] == "INV-2026-000042"
    assert (
        by_path["/invoices"]["headers"]["webhook-id"] != by_path["/parts"]["headers"]["webhook-id"]
    )


async def test_master_data_changes_reach_the_erp(
    records: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A customer's edit and a vehicle's new owner go to endpoints that asked for them."""
    hook = await register(
        records, receiver.url("/master"), ("customer.updated", "vehicle.owner_changed")
    )
    customer_id, buyer, vehicle_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    updated = CustomerUpdated(
        branch="BR01",
        customer=CustomerSnapshot(id=customer_id, name="王芳", mobile="13900139000"),
        mobiles=["13900139000", "13800138000"],
        updated_by="advisor-1",
        updated_at=at,
    )
    changed = VehicleOwnerChanged(
        branch="BR01",
        vehicle=VehicleSnapshot(id=vehicle_id, vin="LSVAU2180N2183294", plate="沪A12345"),
        previous_customer_id=customer_id,
        customer_id=buyer,
        reason="sold",
        changed_by="advisor-1",
        changed_at=at,
    )
    updated._envelope = updated.to_envelope(subject=str(customer_id))
    changed._envelope = changed.to_envelope(subject=str(vehicle_id))
    for _ in range(2):  # a repeat queues nothing more
        async with db_of(records).transaction() as session:
            await webhook_handlers.queue_customer_update(updated, session)
            await webhook_handlers.queue_owner_change(changed, session)
    await finished(records, hook["id"])
    bodies = {r["body"]["type"]: r["body"]["data"] for r in receiver.requests}
    assert len(receiver.requests) == 2
    assert bodies["customer.updated"]["mobiles"] == ["13900139000", "13800138000"]
    assert bodies["vehicle.owner_changed"]["customer_id"] == str(buyer)
    assert bodies["vehicle.owner_changed"]["previous_customer_id"] == str(customer_id)


# --- inbound from the ERP ------------------------------------------------------------


def signed(
    secret: str, body: dict[str, Any], *, msg_id: str | None = None, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = orjson.dumps(body)
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = at or utcnow()
    return raw, {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, raw.decode()),
    }


def payment(**overrides: Any) -> dict[str, Any]:
    return {
        "erp_payment_id": "PAY-0001",
        "invoice_number": "INV-2026-000042",
        "amount": "813.60",
        "currency": "CNY",
        "method": "transfer",
        "paid_at": "2026-11-28T10:00:00+08:00",
        **overrides,
    }


async def new_source(client: httpx.AsyncClient) -> dict[str, Any]:
    assert_problem(
        await client.post("/webhooks/erp-sources", headers=auth("erp"), json={"name": "SAP"}), 403
    )
    r = await client.post("/webhooks/erp-sources", headers=MANAGER, json={"name": "SAP B1"})
    assert r.status_code == 201, r.text
    source = r.json()
    assert source["secret"].startswith("whsec_")
    return source


@pytest.mark.store
async def test_inbound_refuses_what_is_not_signed_by_the_erp(records: httpx.AsyncClient) -> None:
    source = await new_source(records)
    path = f"/erp/{source['id']}/payments"
    raw, headers = signed(source["secret"], payment())

    assert_problem(
        await records.post(path, content=raw, headers={"content-type": "application/json"}), 401
    )
    bad = {**headers, "webhook-signature": "v1,AAAA" + headers["webhook-signature"][7:]}
    assert_problem(await records.post(path, content=raw, headers=bad), 401)
    assert_problem(
        await records.post(path, content=raw, headers={**headers, "webhook-signature": "garbage"}),
        401,
    )
    tampered = raw.replace(b"813.60", b"8136.00")
    assert_problem(await records.post(path, content=tampered, headers=headers), 401)
    stale_raw, stale = signed(source["secret"], payment(), at=utcnow() - timedelta(minutes=10))
    body = assert_problem(await records.post(path, content=stale_raw, headers=stale), 401)
    assert "replay window" in body["detail"]
    future_raw, future = signed(source["secret"], payment(), at=utcnow() + timedelta(minutes=10))
    assert_problem(await records.post(path, content=future_raw, headers=future), 401)
    other_raw, other = signed(webhook_service.new_secret(), payment())
    assert_problem(await records.post(path, content=other_raw, headers=other), 401)
    assert_problem(
        await records.post(f"/erp/{uuid.uuid4()}/payments", content=raw, headers=headers), 401
    )
    # A valid staff token is no substitute for the signature.
    assert_problem(
        await records.post(
            path, content=raw, headers={"content-type": "application/json", **auth("erp")}
        ),
        401,
    )
    assert await count(records, ErpPayment) == 0
    assert await outbox(records, "records.erp.payment_confirmed.v1") == []

    bad_raw, bad_headers = signed(source["secret"], payment(amount="-5"))
    assert_problem(await records.post(path, content=bad_raw, headers=bad_headers), 422, "amount")
    bad_raw, bad_headers = signed(source["secret"], payment(method="barter"))
    assert_problem(await records.post(path, content=bad_raw, headers=bad_headers), 422, "method")
    bad_raw, bad_headers = signed(source["secret"], payment(paid_at="2026-11-28T10:00:00"))
    assert_problem(await records.post(path, content=bad_raw, headers=bad_headers), 422, "paid_at")
    assert await count(records, ErpPayment) == 0


@pytest.mark.store
async def test_a_payment_confirmation_is_published_once(records: httpx.AsyncClient) -> None:
    source = await new_source(records)
    event = settled()
    event._envelope = event.to_envelope(subject=str(event.repair_order_id))
    async with db_of(records).transaction() as session:
        await webhook_handlers.queue_invoice(event, session)
    path = f"/erp/{source['id']}/payments"
    raw, headers = signed(source["secret"], payment())
    r = await records.post(path, content=raw, headers=headers)
    assert r.status_code == 201 and r.json()["status"] == "accepted", r.text
    # The same message again, and the same payment in a new message: neither counts twice.
    r = await records.post(path, content=raw, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == "duplicate"
    raw2, headers2 = signed(source["secret"], payment())
    assert (await records.post(path, content=raw2, headers=headers2)).json()[
        "status"
    ] == "duplicate"
    [published] = await outbox(records, "records.erp.payment_confirmed.v1")
    assert published["erp_payment_id"] == "PAY-0001" and published["branch"] == "BR01"
    assert published["repair_order_id"] == str(event.repair_order_id)  # found by invoice number
    assert Decimal(published["amount"]) == Decimal("813.60") and published["method"] == "transfer"
    listed = (await records.get("/erp/payments", headers=auth("cashier"))).json()["items"]
    assert [p["erp_payment_id"] for p in listed] == ["PAY-0001"]
    assert (await records.get("/erp/payments", headers=auth("cashier", "BR02"))).json()[
        "items"
    ] == []

    # During a rotation's overlap the old secret is still accepted, then no longer.
    r = await records.post(
        f"/webhooks/erp-sources/{source['id']}/rotate-secret",
        headers=MANAGER,
        json={"overlap_seconds": 600},
    )
    new = r.json()["secret"]
    raw3, headers3 = signed(source["secret"], payment(erp_payment_id="PAY-0002"))
    assert (await records.post(path, content=raw3, headers=headers3)).status_code == 201
    raw4, headers4 = signed(new, payment(erp_payment_id="PAY-0003"))
    assert (await records.post(path, content=raw4, headers=headers4)).status_code == 201
    await records.post(
        f"/webhooks/erp-sources/{source['id']}/rotate-secret",
        headers=MANAGER,
        json={"overlap_seconds": 0},
    )
    raw5, headers5 = signed(new, payment(erp_payment_id="PAY-0004"))
    assert_problem(await records.post(path, content=raw5, headers=headers5), 401)
    # A source switched off is refused until it is switched on again.
    source_path = f"/webhooks/erp-sources/{source['id']}"
    assert_problem(
        await records.patch(source_path, headers=auth("erp"), json={"active": False}), 403
    )
    r = await records.patch(source_path, headers=MANAGER, json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    newest = (await records.get("/webhooks/erp-sources", headers=MANAGER)).json()["items"]
    assert [s["active"] for s in newest] == [False]
    secret = (
        await records.post(
            source_path + "/rotate-secret", headers=MANAGER, json={"overlap_seconds": 0}
        )
    ).json()["secret"]
    raw6, headers6 = signed(secret, payment(erp_payment_id="PAY-0005"))
    assert_problem(await records.post(path, content=raw6, headers=headers6), 401)
    await records.patch(source_path, headers=MANAGER, json={"active": True})
    raw6, headers6 = signed(secret, payment(erp_payment_id="PAY-0005"))
    assert (await records.post(path, content=raw6, headers=headers6)).status_code == 201
    assert len(await outbox(records, "records.erp.payment_confirmed.v1")) == 4


@pytest.mark.store
async def test_price_lists_are_stored_and_queried(records: httpx.AsyncClient) -> None:
    source = await new_source(records)
    path = f"/erp/{source['id']}/price-lists"
    january = {
        "list_id": "PL-2026-01",
        "valid_from": "2026-01-01T00:00:00+08:00",
        "items": [
            {"part_number": "5Q0698151", "description": "前刹车片", "unit_price": "400.00"},
            {"part_number": "04E115561H", "description": "机油滤清器", "unit_price": "68.00"},
        ],
    }
    june: dict[str, Any] = {
        "list_id": "PL-2026-06",
        "valid_from": "2026-06-01T00:00:00+08:00",
        "items": [{"part_number": "5Q0698151", "unit_price": "420.00"}],
    }
    for body in (january, june):
        raw, headers = signed(source["secret"], body)
        r = await records.post(path, content=raw, headers=headers)
        assert r.status_code == 201, r.text
    raw, headers = signed(source["secret"], june)
    assert (await records.post(path, content=raw, headers=headers)).json()["status"] == "duplicate"
    dup = {**june, "list_id": "PL-X", "items": june["items"] * 2}
    raw, headers = signed(source["secret"], dup)
    assert_problem(await records.post(path, content=raw, headers=headers), 422, "items")
    assert await count(records, PartPriceList) == 2

    advisor = auth("advisor")
    lists = (await records.get("/erp/price-lists", headers=advisor)).json()["items"]
    assert sorted(p["list_id"] for p in lists) == ["PL-2026-01", "PL-2026-06"]
    now = (await records.get("/erp/part-prices/5Q0698151", headers=advisor)).json()
    assert now["unit_price"] == "420.00" and now["list_id"] == "PL-2026-06"
    march = await records.get(
        "/erp/part-prices/5Q0698151", params={"at": "2026-03-01T00:00:00+08:00"}, headers=advisor
    )
    assert march.json()["unit_price"] == "400.00"
    assert (await records.get("/erp/part-prices/04E115561H", headers=advisor)).json()[
        "description"
    ] == "机油滤清器"
    assert_problem(await records.get("/erp/part-prices/NOPE", headers=advisor), 404)
    assert_problem(
        await records.get("/erp/part-prices/5Q0698151", headers=auth("advisor", "BR02")), 404
    )
    assert_problem(await records.get("/erp/part-prices/5Q0698151", headers=auth("technician")), 403)
    assert_problem(
        await records.get(
            "/erp/part-prices/5Q0698151", params={"at": "2026-03-01T00:00:00"}, headers=advisor
        ),
        422,
        "at",
    )


@pytest.mark.store
async def test_deliveries_are_claimed_once(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    """A claim moves the delivery out of reach of a second claim until its lease ends."""
    from services.records.webhook_worker import Policy, claim

    settings = settings_for(database_url, nats_server, tmp_path)
    async with App(settings) as records:
        endpoint = await register(records, "http://93.184.215.14/never-called")
    # The service is stopped: no sender of its own takes the delivery first.
    db = Database(database_url)
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
        first, second = await claim(db, policy, lease=60), await claim(db, policy, lease=60)
        assert len(first) == 1 and second == []
        assert str(first[0].endpoint_id) == endpoint["id"]
        async with db.reader() as session:
            due = (
                await session.exec(
                    select(WebhookDelivery.next_attempt_at).where(
                        col(WebhookDelivery.id) == first[0].delivery_id
                    )
                )
            ).one()
        assert due > utcnow() + timedelta(seconds=50)
    finally:
        await db.dispose()


async def set_throttle(db: Any, endpoint_id: str, until: datetime | None) -> None:
    async with db.transaction() as session:
        await session.exec(
            update(WebhookEndpoint)
            .where(col(WebhookEndpoint.id) == uuid.UUID(endpoint_id))
            .values(throttled_until=until)
        )


@pytest.mark.postgres
async def test_two_replicas_never_send_a_delivery_twice(
    pg_url: str, nats_server: NatsServer, tmp_path: Path, receiver: Receiver
) -> None:
    """Two records processes' senders on one PostgreSQL database claim with FOR UPDATE
    SKIP LOCKED: every message reaches the receiver once."""
    settings = settings_for(pg_url, nats_server, tmp_path, webhook_batch=20)
    async with App(settings) as first, App(settings) as second:
        endpoint = await register(first, receiver.url())
        await set_throttle(db_of(first), endpoint["id"], utcnow() + timedelta(hours=1))
        for _ in range(10):
            async with db_of(first).transaction() as session:
                for _ in range(30):
                    await webhook_service.enqueue(
                        session,
                        branch="BR01",
                        event_type="customer.registered",
                        occurred_at=utcnow(),
                        data={"customer_id": str(uuid.uuid4())},
                        source_event_id=str(uuid.uuid4()),
                    )
        # Released at once for both senders; each polls every 50 ms.
        await set_throttle(db_of(second), endpoint["id"], None)

        async def all_sent() -> bool:
            async with db_of(second).reader() as session:
                pending = (
                    await session.exec(
                        select(func.count())
                        .select_from(WebhookDelivery)
                        .where(WebhookDelivery.status != "succeeded")
                    )
                ).one()
            return pending == 0

        await eventually(all_sent, timeout=60, what="300 deliveries sent")
    ids = [r["headers"]["webhook-id"] for r in receiver.requests]
    assert len(ids) == 300 and len(set(ids)) == 300


@pytest.mark.store
async def test_a_named_host_is_called_at_its_checked_address(
    records: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The name is resolved and checked; the request goes to that address and still
    names the registered host."""
    port = receiver.server.server_address[1]
    endpoint = await register(records, f"http://localhost:{port}/hook")
    receiver.secrets = [endpoint["secret"]]
    await records.post(f"/webhooks/endpoints/{endpoint['id']}/ping", headers=MANAGER)
    [delivery] = await finished(records, endpoint["id"])
    assert delivery["status"] == "succeeded", delivery
    [request] = receiver.requests
    assert request["headers"]["host"] == f"localhost:{port}"
    assert request["verified_by"] == [endpoint["secret"]]


def make_ca_and_cert(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for `name` signed by it (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    # OpenSSL checks validity by the operating system's clock, which a test that moves
    # Python's clock does not move: a window of years either side holds for both.
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Dealer test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=3 * 366))
        .not_valid_after(now + timedelta(days=3 * 366))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=3 * 366))
        .not_valid_after(now + timedelta(days=3 * 366))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


@pytest.mark.store
@pytest.mark.parametrize(("cert_name", "delivered"), [("localhost", True), ("erp.example", False)])
async def test_https_is_verified_against_the_registered_host(
    database_url: str, nats_server: NatsServer, tmp_path: Path, cert_name: str, delivered: bool
) -> None:
    """The request goes to the checked address, but TLS names and verifies the registered
    host: a certificate for another name is refused."""
    import ssl

    ca_file, cert_file, key_file = make_ca_and_cert(tmp_path, cert_name)
    receiver = Receiver()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    receiver.start()
    settings = settings_for(database_url, nats_server, tmp_path, webhook_ca_file=str(ca_file))
    try:
        async with App(settings) as records:
            port = receiver.server.server_address[1]
            endpoint = await register(records, f"https://localhost:{port}/hook")
            receiver.secrets = [endpoint["secret"]]
            await records.post(f"/webhooks/endpoints/{endpoint['id']}/ping", headers=MANAGER)
            [delivery] = await finished(records, endpoint["id"])
    finally:
        receiver.stop()
    if delivered:
        assert delivery["status"] == "succeeded", delivery
        assert receiver.requests[0]["verified_by"] == [endpoint["secret"]]
        assert receiver.requests[0]["headers"]["host"] == f"localhost:{port}"
    else:
        assert delivery["status"] == "failed" and receiver.requests == []
        assert "CERTIFICATE_VERIFY_FAILED" in delivery["last_error"], delivery


@pytest.mark.store
async def test_the_log_keeps_what_is_pending_and_prunes_what_is_old(
    records: httpx.AsyncClient, receiver: Receiver
) -> None:
    from services.records.webhook_worker import prune_log

    endpoint = await register(records, receiver.url())
    await records.post(f"/webhooks/endpoints/{endpoint['id']}/ping", headers=MANAGER)
    [sent] = await finished(records, endpoint["id"])
    await set_throttle(db_of(records), endpoint["id"], utcnow() + timedelta(hours=1))
    await queue(records)
    db = db_of(records)
    assert await prune_log(db, keep=timedelta(days=30)) == 0
    assert await prune_log(db, keep=timedelta(days=30), now=utcnow() + timedelta(days=31)) == 1
    [left] = await deliveries(records, endpoint["id"])
    assert left["status"] == "pending" and left["id"] != sent["id"]
    assert_problem(await records.get(f"/webhooks/deliveries/{sent['id']}", headers=MANAGER), 404)
    assert await count(records, WebhookAttempt) == 0


@pytest.mark.store
async def test_a_slow_endpoint_times_out(
    database_url: str, nats_server: NatsServer, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.delay = 1.5
    settings = settings_for(database_url, nats_server, tmp_path, webhook_timeout_seconds=0.5)
    async with App(settings) as records:
        endpoint = await register(records, receiver.url())
        await records.post(f"/webhooks/endpoints/{endpoint['id']}/ping", headers=MANAGER)
        [delivery] = await finished(records, endpoint["id"])
    assert delivery["status"] == "failed" and delivery["last_status_code"] is None
    assert delivery["last_error"] == "no answer within 0.5 s"


@pytest.mark.store
async def test_inbound_malformed_json_is_refused_after_the_signature(
    records: httpx.AsyncClient,
) -> None:
    source = await new_source(records)
    raw = b'{"erp_payment_id": "PAY-1", '
    msg_id, when = f"msg_{uuid.uuid4().hex}", utcnow()
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(source["secret"]).sign(msg_id, when, raw.decode()),
    }
    r = await records.post(f"/erp/{source['id']}/payments", content=raw, headers=headers)
    assert_problem(r, 400)
    assert r.json()["type"].endswith("malformed-json")
    assert await count(records, ErpPayment) == 0


@pytest.mark.store
async def test_secrets_are_sealed_at_rest(
    database_url: str, nats_server: NatsServer, tmp_path: Path, receiver: Receiver
) -> None:
    """With a key configured the database holds no secret in clear, and signing and
    verifying still work."""
    import base64
    import os

    from services.records.webhook_models import ErpSource

    key = base64.b64encode(os.urandom(32)).decode()
    settings = settings_for(database_url, nats_server, tmp_path, webhook_secrets_key=key)
    async with App(settings) as records:
        endpoint = await register(records, receiver.url())
        source = await new_source(records)
        async with db_of(records).reader() as session:
            stored = [(await session.get(WebhookEndpoint, uuid.UUID(endpoint["id"]))).secret]
            stored.append((await session.get(ErpSource, uuid.UUID(source["id"]))).secret)
        assert all(s.startswith("aesgcm:") for s in stored)
        assert endpoint["secret"] not in stored[0] and source["secret"] not in stored[1]
        r = await records.get(f"/webhooks/endpoints/{endpoint['id']}/secret", headers=MANAGER)
        assert r.json()["secret"] == endpoint["secret"]

        receiver.secrets = [endpoint["secret"]]
        await records.post(f"/webhooks/endpoints/{endpoint['id']}/ping", headers=MANAGER)
        [delivery] = await finished(records, endpoint["id"])
        assert delivery["status"] == "succeeded"
        assert receiver.requests[0]["verified_by"] == [endpoint["secret"]]
        raw, headers = signed(source["secret"], payment())
        r = await records.post(f"/erp/{source['id']}/payments", content=raw, headers=headers)
        assert r.status_code == 201, r.text


async def test_a_bad_secrets_key_is_refused() -> None:
    from services.records.webhook_secrets import SecretsKeyError, parse_key, seal, unseal

    with pytest.raises(SecretsKeyError):
        parse_key("not base64!")
    with pytest.raises(SecretsKeyError):
        parse_key("c2hvcnQ=")
    sealed = seal("whsec_abc", b"k" * 32)
    assert unseal(sealed, b"k" * 32) == "whsec_abc"
    with pytest.raises(SecretsKeyError):
        unseal(sealed, b"x" * 32)
    with pytest.raises(SecretsKeyError):
        unseal(sealed, None)
    assert unseal("whsec_plain", b"k" * 32) == "whsec_plain"


async def test_the_default_schedule_spans_about_three_days() -> None:
    from services.records.webhook_worker import Policy

    policy = Policy.of(Settings())
    days = sum(policy.schedule) / 86400
    assert 2.5 <= days <= 3.5 and len(policy.schedule) + 1 == 10
    for n, base in enumerate(policy.schedule, start=1):
        delay = policy.retry_delay(n)
        assert delay is not None and base * 0.8 <= delay <= base * 1.2
    assert policy.retry_delay(len(policy.schedule) + 1) is None


async def test_retry_after_in_seconds_or_as_a_date() -> None:
    from email.utils import format_datetime

    from services.records.webhook_worker import parse_retry_after

    now = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
