"""ERP webhooks' use cases: endpoints and their secrets, queueing messages, the delivery log,
replay and ping. Functions change rows and flush; the caller's transaction commits."""

import asyncio
import base64
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.records.webhook_models import (
    PING,
    AttemptPublic,
    DeliveryDetail,
    DeliveryPublic,
    DeliveryStatus,
    EndpointCreate,
    EndpointPublic,
    EndpointUpdate,
    EndpointWithSecret,
    ErpSource,
    ErpSourcePublic,
    ErpSourceUpdate,
    ErpSourceWithSecret,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from services.records.webhook_secrets import key_of, seal, unseal
from services.records.webhook_targets import validate_for_registration
from shared import audit
from shared.auth import User
from shared.concurrency import check_if_match, etag
from shared.events import utcnow
from shared.pagination import after, page
from shared.problems import Conflict, NotFound

MESSAGE_NAMESPACE = uuid.UUID("6f1f3f52-8d0e-4b59-9c55-3b1d9a7f0e21")

# Workers of this process wait on these; a transaction that queued deliveries wakes them.
_wakers: set[asyncio.Event] = set()


def register_waker(wake: asyncio.Event) -> None:
    _wakers.add(wake)


def unregister_waker(wake: asyncio.Event) -> None:
    _wakers.discard(wake)


def _wake_after_commit(session: AsyncSession) -> None:
    if session.info.get("webhook_wake_hooked"):
        return
    session.info["webhook_wake_hooked"] = True

    def wake(_session: Any) -> None:
        _session.info.pop("webhook_wake_hooked", None)
        for waker in list(_wakers):
            waker.set()

    sa_event.listen(session.sync_session, "after_commit", wake, once=True)


def new_secret() -> str:
    """`whsec_` and 32 random bytes in base64, as the Standard Webhooks libraries expect."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def message_id(source_event_id: str, event_type: str) -> str:
    """The `webhook-id` of one event's message: the same on every retry and endpoint."""
    return "msg_" + uuid.uuid5(MESSAGE_NAMESPACE, f"{source_event_id}:{event_type}").hex


def render(event_type: str, occurred_at: datetime, data: dict[str, Any]) -> str:
    """The Standard Webhooks payload: type, timestamp, data."""
    return orjson.dumps(
        {"type": event_type, "timestamp": occurred_at.isoformat(), "data": data}
    ).decode()


# --- endpoints ---------------------------------------------------------------------


def endpoint_public(endpoint: WebhookEndpoint, *, secret: str | None = None) -> EndpointPublic:
    """The endpoint as shown; with `secret` (in clear) when the caller may see it."""
    data = endpoint.model_dump() | {"etag": etag(endpoint.version)}
    if secret is not None:
        return EndpointWithSecret.model_validate(data | {"secret": secret})
    return EndpointPublic.model_validate(data)


def endpoint_with_secret(session: AsyncSession, endpoint: WebhookEndpoint) -> EndpointPublic:
    return endpoint_public(endpoint, secret=unseal(endpoint.secret, key_of(session)))


async def create_endpoint(
    session: AsyncSession,
    body: EndpointCreate,
    by: User,
    *,
    allow_private: bool,
    allow_http: bool,
) -> EndpointPublic:
    url = await validate_for_registration(
        body.url, allow_private=allow_private, allow_http=allow_http
    )
    now = utcnow()
    secret = new_secret()
    endpoint = WebhookEndpoint(
        branch=by.branch,
        url=url,
        description=body.description,
        event_types=[str(t) for t in body.event_types],
        secret=seal(secret, key_of(session)),
        active=body.active,
        created_by=by.id,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    audit.record(
        session,
        action="webhook_endpoint.created",
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        branch=endpoint.branch,
        actor=by,
        at=now,
        changes=_settings_of(endpoint),
    )
    await session.flush()
    return endpoint_public(endpoint, secret=secret)


def _settings_of(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the audit shows of an endpoint's settings (never its secret)."""
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "active": endpoint.active,
    }


async def get_endpoint(session: AsyncSession, endpoint_id: uuid.UUID, by: User) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.branch != by.branch:
        raise NotFound(f"no webhook endpoint {endpoint_id} in your branch")
    return endpoint


async def list_endpoints(
    session: AsyncSession, by: User, *, limit: int, cursor: str | None
) -> tuple[list[EndpointPublic], str | None]:
    rows = await session.exec(
        select(WebhookEndpoint)
        .where(
            WebhookEndpoint.branch == by.branch,
            after(WebhookEndpoint.created_at, WebhookEndpoint.id, cursor),
        )
        .order_by(col(WebhookEndpoint.created_at).desc(), col(WebhookEndpoint.id).desc())
        .limit(limit + 1)
    )
    items, next_cursor = page(list(rows.all()), limit, "created_at")
    return [endpoint_public(e) for e in items], next_cursor


async def update_endpoint(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    by: User,
    if_match: str | None,
    *,
    allow_private: bool,
    allow_http: bool,
) -> EndpointPublic:
    endpoint = await get_endpoint(session, endpoint_id, by)
    check_if_match(if_match, endpoint.version)
    before = _settings_of(endpoint)
    if body.url is not None:
        endpoint.url = await validate_for_registration(
            body.url, allow_private=allow_private, allow_http=allow_http
        )
    if body.event_types is not None:
        endpoint.event_types = sorted({str(t) for t in body.event_types})
    if body.description is not None:
        endpoint.description = body.description
    if body.active is not None:
        if body.active and not endpoint.active:
            # Re-enabled: what was queued while it was off goes out now.
            endpoint.disabled_reason = endpoint.disabled_at = endpoint.throttled_until = None
            _wake_after_commit(session)
        endpoint.active = body.active
    endpoint.updated_at = utcnow()
    session.add(endpoint)
    audit.record(
        session,
        action="webhook_endpoint.changed",
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        branch=endpoint.branch,
        actor=by,
        at=endpoint.updated_at,
        before=before,
        after=_settings_of(endpoint),
    )
    await session.flush()
    return endpoint_public(endpoint)


async def rotate_secret(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    overlap_seconds: int,
    by: User,
    if_match: str | None,
) -> EndpointPublic:
    endpoint = await get_endpoint(session, endpoint_id, by)
    check_if_match(if_match, endpoint.version)
    now = utcnow()
    endpoint.previous_secret = endpoint.secret if overlap_seconds > 0 else None
    endpoint.previous_secret_until = (
        now + timedelta(seconds=overlap_seconds) if overlap_seconds > 0 else None
    )
    secret = new_secret()
    endpoint.secret = seal(secret, key_of(session))
    endpoint.updated_at = now
    session.add(endpoint)
    audit.record(
        session,
        action="webhook_endpoint.secret_rotated",
        object_type="webhook_endpoint",
        object_id=endpoint.id,
        branch=endpoint.branch,
        actor=by,
        at=now,
        changes={"overlap_seconds": overlap_seconds},
    )
    await session.flush()
    return endpoint_public(endpoint, secret=secret)


# --- queueing ----------------------------------------------------------------------


async def enqueue(
    session: AsyncSession,
    *,
    branch: str,
    event_type: str,
    occurred_at: datetime,
    data: dict[str, Any],
    source_event_id: str,
) -> int:
    """A delivery for every active endpoint of the branch that wants `event_type`, in the
    caller's transaction; returns how many were written. A message already queued for an
    endpoint is not queued again (the insert skips it)."""
    # A consumer handles a batch of events in one transaction: the branch's endpoints are
    # read once per transaction.
    cache: dict[str, list[WebhookEndpoint]] = session.info.setdefault("webhook_endpoints", {})
    endpoints = cache.get(branch)
    if endpoints is None:
        endpoints = cache[branch] = list(
            (
                await session.exec(
                    select(WebhookEndpoint).where(
                        WebhookEndpoint.branch == branch, col(WebhookEndpoint.active).is_(True)
                    )
                )
            ).all()
        )
    wanted = [e for e in endpoints if event_type in e.event_types]
    if not wanted:
        return 0
    msg_id = message_id(source_event_id, event_type)
    body = render(event_type, occurred_at, data)
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "endpoint_id": endpoint.id,
            "branch": branch,
            "message_id": msg_id,
            "event_type": event_type,
            "source_event_id": source_event_id,
            "body": body,
            "status": DeliveryStatus.pending.value,
            "attempts": 0,
            "round_attempts": 0,
            "trigger": "event",
            "next_attempt_at": now,
            "created_at": now,
        }
        for endpoint in wanted
    ]
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    upsert: Any = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.exec(
        upsert(WebhookDelivery).on_conflict_do_nothing(
            index_elements=["endpoint_id", "message_id"]
        ),
        params=rows,
    )
    _wake_after_commit(session)
    return len(rows)


async def ping(session: AsyncSession, endpoint_id: uuid.UUID, by: User) -> DeliveryPublic:
    """A test message to the endpoint, sent at once and not retried."""
    endpoint = await get_endpoint(session, endpoint_id, by)
    if not endpoint.active:
        raise Conflict("the endpoint is disabled; enable it before pinging it")
    now = utcnow()
    delivery = WebhookDelivery(
        endpoint_id=endpoint.id,
        branch=endpoint.branch,
        message_id="msg_" + uuid.uuid4().hex,
        event_type=PING,
        body=render(PING, now, {"endpoint_id": str(endpoint.id), "sent_by": by.name}),
        trigger="ping",
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    await session.flush()
    _wake_after_commit(session)
    return delivery_public(delivery)


async def replay(session: AsyncSession, delivery_id: uuid.UUID, by: User) -> DeliveryPublic:
    """Send a delivery again, with the same `webhook-id`, on a fresh retry schedule."""
    delivery = await get_delivery(session, delivery_id, by)
    if delivery.status == DeliveryStatus.pending:
        raise Conflict("the delivery is still pending; it will be sent on its schedule")
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    assert endpoint is not None
    if not endpoint.active:
        raise Conflict("the endpoint is disabled; enable it before replaying to it")
    delivery.status = DeliveryStatus.pending
    delivery.trigger = "replay"
    delivery.round_attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.finished_at = None
    session.add(delivery)
    await session.flush()
    _wake_after_commit(session)
    return delivery_public(delivery)


# --- the delivery log --------------------------------------------------------------


def delivery_public(delivery: WebhookDelivery) -> DeliveryPublic:
    data = delivery.model_dump()
    if delivery.status != DeliveryStatus.pending:
        data["next_attempt_at"] = None
    return DeliveryPublic.model_validate(data)


async def get_delivery(session: AsyncSession, delivery_id: uuid.UUID, by: User) -> WebhookDelivery:
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.branch != by.branch:
        raise NotFound(f"no webhook delivery {delivery_id} in your branch")
    return delivery


async def delivery_detail(
    session: AsyncSession, delivery_id: uuid.UUID, by: User
) -> DeliveryDetail:
    delivery = await get_delivery(session, delivery_id, by)
    attempts = (
        await session.exec(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery.id)
            .order_by(col(WebhookAttempt.number))
        )
    ).all()
    return DeliveryDetail.model_validate(
        delivery_public(delivery).model_dump()
        | {
            "request_body": orjson.loads(delivery.body),
            "attempt_log": [AttemptPublic.model_validate(a.model_dump()) for a in attempts],
        }
    )


async def list_deliveries(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    by: User,
    *,
    status: DeliveryStatus | None,
    event_type: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[DeliveryPublic], str | None]:
    await get_endpoint(session, endpoint_id, by)
    query = select(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint_id,
        after(WebhookDelivery.created_at, WebhookDelivery.id, cursor),
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if event_type is not None:
        query = query.where(WebhookDelivery.event_type == event_type)
    rows = (
        await session.exec(
            query.order_by(
                col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc()
            ).limit(limit + 1)
        )
    ).all()
    items, next_cursor = page(list(rows), limit, "created_at")
    return [delivery_public(d) for d in items], next_cursor


# --- ERP sources (inbound) ---------------------------------------------------------


def source_public(source: ErpSource, *, secret: str | None = None) -> ErpSourcePublic:
    data = source.model_dump() | {
        "inbound_paths": [
            f"/erp/{source.id}/price-lists",
            f"/erp/{source.id}/payments",
        ]
    }
    if secret is not None:
        return ErpSourceWithSecret.model_validate(data | {"secret": secret})
    return ErpSourcePublic.model_validate(data)


async def create_source(session: AsyncSession, name: str, by: User) -> ErpSourcePublic:
    secret = new_secret()
    source = ErpSource(
        branch=by.branch,
        name=name,
        secret=seal(secret, key_of(session)),
        created_by=by.id,
        created_at=utcnow(),
    )
    session.add(source)
    _audit_source(session, source, "created", by, {"name": name, "active": source.active})
    await session.flush()
    return source_public(source, secret=secret)


def _audit_source(
    session: AsyncSession, source: ErpSource, action: str, by: User, changes: dict[str, Any]
) -> None:
    audit.record(
        session,
        action=f"erp_source.{action}",
        object_type="erp_source",
        object_id=source.id,
        branch=source.branch,
        actor=by,
        changes=changes,
    )


async def get_source(session: AsyncSession, source_id: uuid.UUID, by: User) -> ErpSource:
    source = await session.get(ErpSource, source_id)
    if source is None or source.branch != by.branch:
        raise NotFound(f"no ERP source {source_id} in your branch")
    return source


async def list_sources(
    session: AsyncSession, by: User, *, limit: int, cursor: str | None
) -> tuple[list[ErpSourcePublic], str | None]:
    rows = await session.exec(
        select(ErpSource)
        .where(ErpSource.branch == by.branch, after(ErpSource.created_at, ErpSource.id, cursor))
        .order_by(col(ErpSource.created_at).desc(), col(ErpSource.id).desc())
        .limit(limit + 1)
    )
    items, next_cursor = page(list(rows.all()), limit, "created_at")
    return [source_public(s) for s in items], next_cursor


async def update_source(
    session: AsyncSession, source_id: uuid.UUID, body: ErpSourceUpdate, by: User
) -> ErpSourcePublic:
    """Rename, or switch off (its requests are refused from then on) and on again."""
    source = await get_source(session, source_id, by)
    before = {"name": source.name, "active": source.active}
    if body.name is not None:
        source.name = body.name
    if body.active is not None:
        source.active = body.active
    session.add(source)
    after = {"name": source.name, "active": source.active}
    _audit_source(session, source, "changed", by, audit.changed(before, after))
    await session.flush()
    return source_public(source)


async def rotate_source_secret(
    session: AsyncSession, source_id: uuid.UUID, overlap_seconds: int, by: User
) -> ErpSourcePublic:
    source = await get_source(session, source_id, by)
    now = utcnow()
    source.previous_secret = source.secret if overlap_seconds > 0 else None
    source.previous_secret_until = (
        now + timedelta(seconds=overlap_seconds) if overlap_seconds > 0 else None
    )
    secret = new_secret()
    source.secret = seal(secret, key_of(session))
    session.add(source)
    _audit_source(session, source, "secret_rotated", by, {"overlap_seconds": overlap_seconds})
    await session.flush()
    return source_public(source, secret=secret)
