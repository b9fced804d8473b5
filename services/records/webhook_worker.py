"""Sends queued webhook deliveries: claim, sign, POST, record, and schedule the retry.

A claim moves the delivery's next attempt a lease ahead in its own short transaction
(on PostgreSQL the rows are picked with FOR UPDATE SKIP LOCKED), so two replicas never
send the same delivery at the same time, and a worker that dies mid-send leaves the row
to be sent again when the lease runs out (with the same `webhook-id`: receivers drop the
repeat). The HTTP calls hold no transaction.
"""

import asyncio
import contextlib
import email.utils
import logging
import random
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import delete, insert, or_, update
from sqlalchemy import func as sa_func
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from standardwebhooks import Webhook

from services.records import webhook_service
from services.records.webhook_models import (
    PING,
    DeliveryStatus,
    ErpInboundMessage,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from services.records.webhook_secrets import key_of, unseal
from services.records.webhook_targets import TargetRefused, check_target
from shared.aio import settle
from shared.contracts.records import WebhookEndpointDisabled
from shared.events import utcnow
from shared.outbox import add_event

if TYPE_CHECKING:
    from shared.db import Database
    from shared.service import Runtime

log = logging.getLogger(__name__)

SLOW_DOWN = frozenset({429, 502, 504})
GONE = 410
USER_AGENT = "workshop-records-webhooks/1"
RESPONSE_KEEP = 1000  # characters of the response body kept in the log


@dataclass(frozen=True)
class Policy:
    timeout: float
    schedule: tuple[float, ...]
    jitter: float
    max_retry_after: float
    allow_private: bool
    allow_http: bool
    batch: int
    concurrency: int
    per_endpoint: int
    lease: float
    ca_file: str | None = None

    @classmethod
    def of(cls, settings: Any) -> "Policy":
        return cls(
            timeout=settings.webhook_timeout_seconds,
            schedule=tuple(settings.webhook_retry_schedule),
            jitter=settings.webhook_jitter,
            max_retry_after=settings.webhook_max_retry_after_seconds,
            allow_private=settings.webhook_allow_private_targets,
            allow_http=settings.webhook_allow_http,
            batch=settings.webhook_batch,
            concurrency=settings.webhook_concurrency,
            per_endpoint=settings.webhook_connections_per_endpoint,
            ca_file=settings.webhook_ca_file,
            # A claim outlives the slowest send (name lookup, timeout) and its recording.
            lease=max(settings.webhook_claim_lease_seconds, settings.webhook_timeout_seconds + 2.0),
        )

    def retry_delay(self, round_attempts: int) -> float | None:
        """Seconds to wait after the `round_attempts`-th failed attempt; None: give up."""
        if round_attempts > len(self.schedule):
            return None
        base = self.schedule[round_attempts - 1]
        return base * (1 + random.uniform(-self.jitter, self.jitter))


@dataclass(frozen=True)
class Job:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    secrets: tuple[str, ...]
    message_id: str
    body: str
    trigger: str


@dataclass
class Outcome:
    started_at: datetime
    status_code: int | None = None
    response_ms: int | None = None
    response_body: str | None = None
    error: str | None = None
    retry_after: float | None = None
    connect_failed: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signature_header(secrets: tuple[str, ...], msg_id: str, at: datetime, body: str) -> str:
    """`v1,<sig>` for every secret that signs now, space-separated (rotation overlap)."""
    return " ".join(Webhook(s).sign(msg_id, at, body) for s in secrets)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is not None:
            return max(0.0, (when - now).total_seconds())
    return None


def _due(now: datetime) -> Any:
    return (
        select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(
            WebhookDelivery.status == DeliveryStatus.pending,
            col(WebhookDelivery.next_attempt_at) <= now,
            col(WebhookEndpoint.active).is_(True),
            or_(
                col(WebhookEndpoint.throttled_until).is_(None),
                col(WebhookEndpoint.throttled_until) <= now,
            ),
        )
    )


async def claim(db: "Database", policy: Policy, *, lease: float) -> list[Job]:
    now = utcnow()
    # Most polls find nothing: a read first, so an idle sender never takes the writer.
    async with db.reader() as session:
        probe = _due(now).with_only_columns(col(WebhookDelivery.id)).limit(1)
        if (await session.exec(probe)).first() is None:
            return []
    async with db.transaction() as session:
        query = _due(now).order_by(col(WebhookDelivery.next_attempt_at)).limit(policy.batch)
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True, of=WebhookDelivery)
        rows = (await session.exec(query)).all()
        if not rows:
            return []
        key = key_of(session)
        await session.exec(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_([d.id for d, _ in rows]))
            .values(next_attempt_at=now + timedelta(seconds=lease))
        )
        return [
            Job(
                delivery_id=d.id,
                endpoint_id=e.id,
                url=e.url,
                secrets=tuple(unseal(secret, key) for secret in e.secrets(now)),
                message_id=d.message_id,
                body=d.body,
                trigger=d.trigger,
            )
            for d, e in rows
        ]


async def send(client: httpx.AsyncClient, job: Job, policy: Policy) -> Outcome:
    started = utcnow()
    try:
        target = await check_target(
            job.url, allow_private=policy.allow_private, allow_http=policy.allow_http
        )
    except TargetRefused as exc:
        return Outcome(started_at=started, error=f"target refused: {exc}")
    sent_at = utcnow()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "host": target.host_header,
        "webhook-id": job.message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature_header(job.secrets, job.message_id, sent_at, job.body),
    }
    extensions = {"sni_hostname": target.server_name} if target.server_name else {}
    clock = time.perf_counter()
    outcome = Outcome(started_at=started, error="no address to connect to")
    # A name may resolve to several addresses (IPv6 and IPv4): the next one is tried only
    # when the connection could not be made, never after a request went out.
    for connect_url in target.connect_urls:
        outcome = await _post(client, connect_url, job, headers, extensions, policy, started)
        if not outcome.connect_failed:
            break
    outcome.response_ms = round((time.perf_counter() - clock) * 1000)
    return outcome


async def _post(
    client: httpx.AsyncClient,
    url: str,
    job: Job,
    headers: dict[str, str],
    extensions: dict[str, Any],
    policy: Policy,
    started: datetime,
) -> Outcome:
    try:
        async with client.stream(
            "POST", url, content=job.body.encode(), headers=headers, extensions=extensions
        ) as response:
            kept = b""
            async for chunk in response.aiter_bytes():
                kept += chunk
                if len(kept) >= RESPONSE_KEEP:
                    break
            error = None
            if 300 <= response.status_code < 400:
                error = f"redirect to {response.headers.get('location', '?')!r} not followed"
            return Outcome(
                started_at=started,
                status_code=response.status_code,
                response_body=kept[:RESPONSE_KEEP].decode("utf-8", "replace") or None,
                error=error,
                retry_after=parse_retry_after(response.headers.get("retry-after"), utcnow()),
            )
    except httpx.ConnectError as exc:
        return Outcome(
            started_at=started, error=f"cannot connect: {exc}"[:500], connect_failed=True
        )
    except httpx.TimeoutException:
        return Outcome(started_at=started, error=f"no answer within {policy.timeout:g} s")
    except httpx.HTTPError as exc:
        return Outcome(started_at=started, error=f"{type(exc).__name__}: {exc}"[:500])


async def record(db: "Database", policy: Policy, results: list[tuple[Job, Outcome]]) -> None:
    """Write each attempt and what follows from it, in one transaction (bulk statements:
    a round can be hundreds of deliveries)."""
    now = utcnow()
    async with db.transaction() as session:
        query: Any = sa_select(
            col(WebhookDelivery.id),
            col(WebhookDelivery.attempts),
            col(WebhookDelivery.round_attempts),
            col(WebhookDelivery.event_type),
            col(WebhookDelivery.branch),
            col(WebhookDelivery.next_attempt_at),
        ).where(
            col(WebhookDelivery.id).in_([job.delivery_id for job, _ in results]),
            col(WebhookDelivery.status) == DeliveryStatus.pending,
        )
        if not db.is_sqlite:
            # A sender whose lease ran out (a slow endpoint) and the one that claimed the
            # delivery after it may record at once: the second waits, then finds the
            # delivery finished or its count moved on, instead of writing over it.
            query = query.with_for_update(of=WebhookDelivery)
        rows: list[Any] = list((await session.exec(query)).all())
        current = {row.id: row for row in rows}
        attempts: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        for job, outcome in results:
            row = current.get(job.delivery_id)
            if row is None:  # replayed or changed meanwhile
                continue
            number, round_attempts = row.attempts + 1, row.round_attempts + 1
            attempts.append(
                {
                    "id": uuid.uuid4(),
                    "delivery_id": row.id,
                    "number": number,
                    "trigger": job.trigger if round_attempts == 1 else "retry",
                    "started_at": outcome.started_at,
                    "status_code": outcome.status_code,
                    "response_ms": outcome.response_ms,
                    "response_body": outcome.response_body,
                    "error": outcome.error,
                }
            )
            change = {
                "id": row.id,
                "attempts": number,
                "round_attempts": round_attempts,
                "last_attempt_at": outcome.started_at,
                "last_status_code": outcome.status_code,
                "last_response_ms": outcome.response_ms,
                "last_error": outcome.error,
                "status": DeliveryStatus.failed.value,
                "finished_at": now,
                "next_attempt_at": row.next_attempt_at,
            }
            changes.append(change)
            if outcome.ok:
                change["status"] = DeliveryStatus.succeeded.value
                continue
            failure = Failure(row.id, row.branch, outcome.status_code, outcome.error)
            if outcome.status_code == GONE:
                await _disable(session, job.endpoint_id, "gone", failure, now)
                continue
            ping = row.event_type == PING
            delay = None if ping else policy.retry_delay(round_attempts)
            if delay is None:
                if not ping:
                    await _disable(session, job.endpoint_id, "failing", failure, now)
                continue
            if outcome.status_code in SLOW_DOWN:
                if outcome.retry_after is not None:
                    delay = max(delay, min(outcome.retry_after, policy.max_retry_after))
                until = now + timedelta(seconds=delay)
                # Nothing else goes to this endpoint before then either.
                await session.exec(
                    update(WebhookEndpoint)
                    .where(
                        col(WebhookEndpoint.id) == job.endpoint_id,
                        or_(
                            col(WebhookEndpoint.throttled_until).is_(None),
                            col(WebhookEndpoint.throttled_until) < until,
                        ),
                    )
                    .values(throttled_until=until)
                )
            change |= {
                "status": DeliveryStatus.pending.value,
                "finished_at": None,
                "next_attempt_at": now + timedelta(seconds=delay),
            }
        if attempts:
            await session.exec(insert(WebhookAttempt), params=attempts)
            await session.exec(update(WebhookDelivery), params=changes)


@dataclass(frozen=True)
class Failure:
    delivery_id: uuid.UUID
    branch: str
    status_code: int | None
    error: str | None


async def _disable(
    session: Any, endpoint_id: uuid.UUID, reason: str, failure: Failure, now: datetime
) -> None:
    """Switch the endpoint off (once) and tell the branch's manager through an event."""
    result = await session.exec(
        update(WebhookEndpoint)
        .where(col(WebhookEndpoint.id) == endpoint_id, col(WebhookEndpoint.active).is_(True))
        .values(
            active=False,
            disabled_reason=reason,
            disabled_at=now,
            updated_at=now,
            version=col(WebhookEndpoint.version) + 1,
        )
    )
    if not result.rowcount:
        return
    endpoint = (
        await session.exec(select(WebhookEndpoint.url).where(WebhookEndpoint.id == endpoint_id))
    ).one()
    log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
    add_event(
        session,
        WebhookEndpointDisabled(
            endpoint_id=endpoint_id,
            branch=failure.branch,
            url=endpoint,
            reason=reason,
            delivery_id=failure.delivery_id,
            last_status_code=failure.status_code,
            last_error=failure.error,
            disabled_at=now,
        ),
        subject=endpoint_id,
    )


class Clients:
    """One small connection pool per endpoint: at most `per_endpoint` connections to one
    ERP at a time, and httpcore's pool bookkeeping stays cheap (it scans every connection
    of the pool on each request)."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self._clients: dict[uuid.UUID, httpx.AsyncClient] = {}
        # https targets are verified against the system's CAs, or a dealer's own CA.
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=policy.ca_file) if policy.ca_file else True
        )

    def of(self, endpoint_id: uuid.UUID) -> httpx.AsyncClient:
        client = self._clients.get(endpoint_id)
        if client is None:
            # No redirects (a 3xx is a failed attempt) and no proxies from the environment:
            # the address that was checked is the one connected to.
            client = self._clients[endpoint_id] = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                verify=self._verify,
                timeout=httpx.Timeout(self.policy.timeout),
                limits=httpx.Limits(
                    max_connections=self.policy.per_endpoint,
                    max_keepalive_connections=self.policy.per_endpoint,
                ),
            )
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


async def deliver_due(db: "Database", policy: Policy, clients: Clients) -> int:
    """One round: claim what is due, send it, record it; returns how many were sent."""
    jobs = await claim(db, policy, lease=policy.lease)
    if not jobs:
        return 0
    gate = asyncio.Semaphore(policy.concurrency)

    async def one(job: Job) -> tuple[Job, Outcome]:
        async with gate:
            return job, await send(clients.of(job.endpoint_id), job, policy)

    results = await asyncio.gather(*(one(job) for job in jobs))
    await record(db, policy, list(results))
    return len(jobs)


async def _lane(db: "Database", policy: Policy, clients: Clients, interval: float) -> None:
    """One claim-send-record loop; woken by queueing, else polls."""
    wake = asyncio.Event()
    webhook_service.register_waker(wake)
    try:
        while True:
            try:
                wake.clear()
                if await deliver_due(db, policy, clients) > 0:
                    continue
            except Exception:
                log.exception("sending webhooks failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), interval)
    finally:
        webhook_service.unregister_waker(wake)


async def delivery_worker(runtime: "Runtime") -> None:
    """Background job: `webhook_lanes` loops sending due deliveries. While one lane waits
    for its round's answers another claims and records, and a slow endpoint holds up only
    the lane whose round it is in."""
    settings = runtime.settings
    policy = Policy.of(settings)
    clients = Clients(policy)
    lanes = [
        asyncio.create_task(
            _lane(runtime.db, policy, clients, getattr(settings, "webhook_poll_interval", 0.5)),
            name=f"webhook-lane-{n}",
        )
        for n in range(max(1, getattr(settings, "webhook_lanes", 2)))
    ]
    try:
        await asyncio.gather(*lanes)
    finally:
        for lane in lanes:
            lane.cancel()
        for lane in lanes:
            await settle(lane)
        await clients.aclose()


async def prune_log(db: "Database", *, keep: timedelta, now: datetime | None = None) -> int:
    """Delete finished deliveries (and their attempts) that finished before `keep` ago, and
    the ERP's message ids past the same age; returns how many deliveries went."""
    cutoff = (now or utcnow()) - keep
    async with db.transaction() as session:
        old = (
            sa_select(col(WebhookDelivery.id))
            .where(
                col(WebhookDelivery.status) != DeliveryStatus.pending,
                col(WebhookDelivery.finished_at) < cutoff,
            )
            .scalar_subquery()
        )
        await session.exec(delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(old)))
        result = await session.exec(
            delete(WebhookDelivery).where(
                col(WebhookDelivery.status) != DeliveryStatus.pending,
                col(WebhookDelivery.finished_at) < cutoff,
            )
        )
        await session.exec(
            delete(ErpInboundMessage).where(col(ErpInboundMessage.received_at) < cutoff)
        )
        return result.rowcount or 0


async def log_pruner(runtime: "Runtime") -> None:
    """Background job: prune the delivery log every hour."""
    keep = timedelta(days=getattr(runtime.settings, "webhook_log_keep_days", 30.0))
    while True:
        try:
            removed = await prune_log(runtime.db, keep=keep)
            if removed:
                log.info("webhook log: %d finished deliveries removed", removed)
        except Exception:
            log.exception("pruning the webhook log failed; trying again later")
        await asyncio.sleep(3600)


async def webhook_gauges(rt: "Runtime") -> None:
    """For /metrics: deliveries per endpoint that are being retried after a failed attempt
    (`state="retrying"`) or gave up (`state="failed"`, kept until pruned), and how many
    endpoints are disabled."""
    from shared import metrics

    status, endpoint = col(WebhookDelivery.status), col(WebhookDelivery.endpoint_id)
    failing = (
        select(endpoint, status, sa_func.count())
        .where(
            or_(
                status == DeliveryStatus.failed,
                (status == DeliveryStatus.pending) & (col(WebhookDelivery.round_attempts) > 0),
            )
        )
        .group_by(endpoint, status)
    )
    disabled = select(sa_func.count()).where(col(WebhookEndpoint.active).is_(False))
    async with rt.db.reader() as session:
        rows = (await session.exec(failing)).all()
        metrics.WEBHOOK_ENDPOINTS_DISABLED.set((await session.exec(disabled)).one())
    metrics.WEBHOOK_FAILING.clear()
    for endpoint_id, state, count in rows:
        label = "failed" if state == DeliveryStatus.failed else "retrying"
        metrics.WEBHOOK_FAILING.labels(str(endpoint_id), label).set(count)
