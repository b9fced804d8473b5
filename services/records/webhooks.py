"""Entry point of records' webhooks part: its router, background jobs and start-up steps.

Outbound: endpoints an admin or manager registers, deliveries with their log, replay and
ping. Inbound: the ERP's signed price lists and payment confirmations.
"""

import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.records import (
    webhook_handlers,
    webhook_inbound,
    webhook_secrets,
    webhook_service,
    webhook_worker,
)
from services.records.webhook_models import (
    DeliveryDetail,
    DeliveryPublic,
    DeliveryStatus,
    EndpointCreate,
    EndpointPublic,
    EndpointUpdate,
    EndpointWithSecret,
    ErpPaymentPublic,
    ErpSourceCreate,
    ErpSourcePublic,
    ErpSourceUpdate,
    ErpSourceWithSecret,
    EventType,
    InboundAnswer,
    PartPricePublic,
    PaymentIn,
    PriceListIn,
    PriceListPublic,
    SecretRotation,
)
from shared.auth import Role, User, require
from shared.concurrency import IfMatch, set_etag
from shared.idempotency import IdempotencyDep
from shared.pagination import Cursor, Limit, Page, whole
from shared.problems import InvalidInput
from shared.service import ReadSessionDep, SessionDep
from shared.types import Instant

if TYPE_CHECKING:
    from shared.service import Runtime

__all__ = ["BACKGROUND", "GAUGES", "STARTUP", "router", "webhook_handlers"]

router = APIRouter()
BACKGROUND: list[Callable[["Runtime"], Coroutine[Any, Any, None]]] = [
    webhook_worker.delivery_worker,
    webhook_worker.log_pruner,
]
STARTUP: list[Callable[["Runtime"], Coroutine[Any, Any, None]]] = [webhook_secrets.install_key]
GAUGES: list[Callable[["Runtime"], Coroutine[Any, Any, None]]] = [webhook_worker.webhook_gauges]

# Only an admin or a manager manages endpoints and reads their logs (they carry the ERP's
# business data and its secrets).
Manager = Annotated[User, Depends(require(Role.admin, Role.manager))]
PriceReader = Annotated[
    User,
    Depends(require(Role.admin, Role.manager, Role.records_clerk, Role.advisor, Role.cashier)),
]

EVENT_TYPES = {
    EventType.invoice_settled: "a settled invoice: lines, totals per pay type, tax, payments",
    EventType.parts_used: "the part lines of a settled invoice",
    EventType.customer_registered: "a customer registered at reception",
    EventType.vehicle_registered: "a vehicle registered at reception",
}


def _target_rules(request: Request) -> dict[str, bool]:
    settings = request.app.state.settings
    return {
        "allow_private": bool(settings.webhook_allow_private_targets),
        "allow_http": bool(settings.webhook_allow_http),
    }


class EventTypePublic(BaseModel):
    type: str
    description: str


@router.get(
    "/webhooks/event-types",
    response_model=Page[EventTypePublic],
    tags=["webhooks"],
    summary="What an endpoint can subscribe to (one page)",
)
async def event_types(user: Manager) -> Any:
    return whole([EventTypePublic(type=t.value, description=d) for t, d in EVENT_TYPES.items()])


@router.post(
    "/webhooks/endpoints",
    status_code=status.HTTP_201_CREATED,
    response_model=EndpointWithSecret,
    tags=["webhooks"],
    summary="Register an ERP endpoint; the answer carries its secret (whsec_…)",
)
async def create_endpoint(
    body: EndpointCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    user: Manager,
    idempotency: IdempotencyDep,
):
    async def work() -> EndpointPublic:
        endpoint = await webhook_service.create_endpoint(
            session, body, user, **_target_rules(request)
        )
        response.headers["ETag"] = endpoint.etag
        return endpoint

    return await idempotency(session).run(work, EndpointWithSecret, response=response)


@router.get(
    "/webhooks/endpoints",
    response_model=Page[EndpointPublic],
    tags=["webhooks"],
    summary="The branch's endpoints, newest first",
)
async def list_endpoints(
    session: ReadSessionDep, user: Manager, limit: Limit = 50, cursor: Cursor = None
):
    items, next_cursor = await webhook_service.list_endpoints(
        session, user, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/webhooks/endpoints/{endpoint_id}", response_model=EndpointPublic, tags=["webhooks"])
async def get_endpoint(
    endpoint_id: uuid.UUID, response: Response, session: ReadSessionDep, user: Manager
):
    endpoint = await webhook_service.get_endpoint(session, endpoint_id, user)
    set_etag(response, endpoint.version)
    return webhook_service.endpoint_public(endpoint)


@router.get(
    "/webhooks/endpoints/{endpoint_id}/secret",
    response_model=EndpointWithSecret,
    tags=["webhooks"],
    summary="The endpoint with its current secret",
)
async def get_endpoint_secret(
    endpoint_id: uuid.UUID, response: Response, session: ReadSessionDep, user: Manager
):
    endpoint = await webhook_service.get_endpoint(session, endpoint_id, user)
    set_etag(response, endpoint.version)
    return webhook_service.endpoint_with_secret(session, endpoint)


@router.patch(
    "/webhooks/endpoints/{endpoint_id}",
    response_model=EndpointPublic,
    tags=["webhooks"],
    summary="Change URL, event types, description or active (re-enable); If-Match required",
)
async def update_endpoint(
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    request: Request,
    response: Response,
    session: SessionDep,
    user: Manager,
    if_match: IfMatch = None,
):
    result = await webhook_service.update_endpoint(
        session, endpoint_id, body, user, if_match, **_target_rules(request)
    )
    response.headers["ETag"] = result.etag
    return result


@router.post(
    "/webhooks/endpoints/{endpoint_id}/rotate-secret",
    response_model=EndpointWithSecret,
    tags=["webhooks"],
    summary="A new secret; the old one keeps signing beside it for overlap_seconds",
)
async def rotate_secret(
    endpoint_id: uuid.UUID,
    response: Response,
    session: SessionDep,
    user: Manager,
    idempotency: IdempotencyDep,
    body: SecretRotation | None = None,
    if_match: IfMatch = None,
):
    rotation = body or SecretRotation()

    async def work() -> EndpointPublic:
        endpoint = await webhook_service.rotate_secret(
            session, endpoint_id, rotation.overlap_seconds, user, if_match
        )
        response.headers["ETag"] = endpoint.etag
        return endpoint

    return await idempotency(session).run(
        work, EndpointWithSecret, status_code=200, response=response
    )


@router.post(
    "/webhooks/endpoints/{endpoint_id}/ping",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryPublic,
    tags=["webhooks"],
    summary="Send a webhook.ping message now (one attempt, no retries)",
)
async def ping(
    endpoint_id: uuid.UUID, session: SessionDep, user: Manager, idempotency: IdempotencyDep
):
    return await idempotency(session).run(
        lambda: webhook_service.ping(session, endpoint_id, user), DeliveryPublic, 202
    )


@router.get(
    "/webhooks/endpoints/{endpoint_id}/deliveries",
    response_model=Page[DeliveryPublic],
    tags=["webhooks"],
    summary="The endpoint's delivery log, newest first",
)
async def list_deliveries(
    endpoint_id: uuid.UUID,
    session: ReadSessionDep,
    user: Manager,
    limit: Limit = 50,
    cursor: Cursor = None,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    event_type: Annotated[str | None, Query(max_length=60)] = None,
):
    items, next_cursor = await webhook_service.list_deliveries(
        session,
        endpoint_id,
        user,
        status=delivery_status,
        event_type=event_type,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/webhooks/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    tags=["webhooks"],
    summary="One delivery: the request body sent and every attempt",
)
async def get_delivery(delivery_id: uuid.UUID, session: ReadSessionDep, user: Manager):
    return await webhook_service.delivery_detail(session, delivery_id, user)


@router.post(
    "/webhooks/deliveries/{delivery_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryPublic,
    tags=["webhooks"],
    summary="Send a finished delivery again (same webhook-id, fresh retry schedule)",
)
async def replay(
    delivery_id: uuid.UUID, session: SessionDep, user: Manager, idempotency: IdempotencyDep
):
    return await idempotency(session).run(
        lambda: webhook_service.replay(session, delivery_id, user), DeliveryPublic, 202
    )


# --- ERP sources and the inbound endpoints ------------------------------------------


@router.post(
    "/webhooks/erp-sources",
    status_code=status.HTTP_201_CREATED,
    response_model=ErpSourceWithSecret,
    tags=["webhooks"],
    summary="Register an ERP that may call the inbound endpoints; the answer carries its secret",
)
async def create_source(
    body: ErpSourceCreate, session: SessionDep, user: Manager, idempotency: IdempotencyDep
):
    return await idempotency(session).run(
        lambda: webhook_service.create_source(session, body.name, user), ErpSourceWithSecret
    )


@router.get(
    "/webhooks/erp-sources",
    response_model=Page[ErpSourcePublic],
    tags=["webhooks"],
    summary="The branch's ERP sources, newest first",
)
async def list_sources(
    session: ReadSessionDep, user: Manager, limit: Limit = 50, cursor: Cursor = None
):
    items, next_cursor = await webhook_service.list_sources(
        session, user, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.patch(
    "/webhooks/erp-sources/{source_id}",
    response_model=ErpSourcePublic,
    tags=["webhooks"],
    summary="Rename an ERP source, or switch it off (its requests get 401) and on",
)
async def update_source(
    source_id: uuid.UUID, body: ErpSourceUpdate, session: SessionDep, user: Manager
):
    return await webhook_service.update_source(session, source_id, body, user)


@router.post(
    "/webhooks/erp-sources/{source_id}/rotate-secret",
    response_model=ErpSourceWithSecret,
    tags=["webhooks"],
    summary="A new inbound secret; the old one is accepted for overlap_seconds",
)
async def rotate_source_secret(
    source_id: uuid.UUID,
    session: SessionDep,
    user: Manager,
    idempotency: IdempotencyDep,
    body: SecretRotation | None = None,
):
    rotation = body or SecretRotation()
    return await idempotency(session).run(
        lambda: webhook_service.rotate_source_secret(
            session, source_id, rotation.overlap_seconds, user
        ),
        ErpSourceWithSecret,
        status_code=200,
    )


def _tolerance(request: Request) -> float:
    return float(request.app.state.settings.webhook_inbound_tolerance_seconds)


def _answer(created: bool, row_id: uuid.UUID) -> JSONResponse:
    body = InboundAnswer(status="accepted" if created else "duplicate", id=row_id)
    return JSONResponse(body.model_dump(mode="json"), status_code=201 if created else 200)


# Signed by the ERP (Standard Webhooks headers), not a bearer token.
INBOUND_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": InboundAnswer, "description": "A duplicate: already accepted"},
    401: {"description": "Missing, stale or wrong webhook signature"},
}


@router.post(
    "/erp/{source_id}/payments",
    status_code=status.HTTP_201_CREATED,
    response_model=InboundAnswer,
    tags=["erp inbound"],
    summary="ERP: a payment confirmation (signed; 201 accepted, 200 duplicate)",
    responses=INBOUND_RESPONSES,
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": PaymentIn.model_json_schema()}},
            "required": True,
        }
    },
)
async def inbound_payment(source_id: uuid.UUID, request: Request, session: SessionDep):
    signed = await webhook_inbound.verify(request, session, source_id, _tolerance(request))
    created, row_id = await webhook_inbound.confirm_payment(
        session, signed, signed.parse(PaymentIn)
    )
    return _answer(created, row_id)


@router.post(
    "/erp/{source_id}/price-lists",
    status_code=status.HTTP_201_CREATED,
    response_model=InboundAnswer,
    tags=["erp inbound"],
    summary="ERP: a parts price list (signed; 201 accepted, 200 duplicate)",
    responses=INBOUND_RESPONSES,
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": PriceListIn.model_json_schema()}},
            "required": True,
        }
    },
)
async def inbound_price_list(source_id: uuid.UUID, request: Request, session: SessionDep):
    signed = await webhook_inbound.verify(request, session, source_id, _tolerance(request))
    created, row_id = await webhook_inbound.store_price_list(
        session, signed, signed.parse(PriceListIn)
    )
    return _answer(created, row_id)


@router.get(
    "/erp/price-lists",
    response_model=Page[PriceListPublic],
    tags=["erp inbound"],
    summary="Price lists the branch's ERP sent, newest first",
)
async def price_lists(
    session: ReadSessionDep, user: PriceReader, limit: Limit = 50, cursor: Cursor = None
):
    items, next_cursor = await webhook_inbound.price_lists(
        session, user, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/erp/part-prices/{part_number}",
    response_model=PartPricePublic,
    tags=["erp inbound"],
    summary="A part's ERP price in force now (or at `at`)",
)
async def part_price(
    part_number: Annotated[str, Path(max_length=40)],
    session: ReadSessionDep,
    user: PriceReader,
    at: Instant | None = None,
):
    if at is not None and at.tzinfo is None:
        raise InvalidInput("at", "needs a time zone offset")
    return await webhook_inbound.part_price(session, user, part_number, at)


@router.get(
    "/erp/payments",
    response_model=Page[ErpPaymentPublic],
    tags=["erp inbound"],
    summary="Payments the branch's ERP confirmed, newest first",
)
async def erp_payments(
    session: ReadSessionDep, user: PriceReader, limit: Limit = 50, cursor: Cursor = None
):
    items, next_cursor = await webhook_inbound.payments(session, user, limit=limit, cursor=cursor)
    return Page(
        items=[ErpPaymentPublic.model_validate(p.model_dump()) for p in items],
        next_cursor=next_cursor,
    )
