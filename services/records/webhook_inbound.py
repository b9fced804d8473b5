"""Inbound from the ERP: signed messages (Standard Webhooks, the ERP source's secret)
carrying parts price lists and payment confirmations.

The signature is the ERP's credential: no bearer token is needed or looked at. A message
is refused (401) unless its `webhook-timestamp` is within the replay window and one of the
source's secrets (two during a rotation) signed `id.timestamp.body`. A `webhook-id` seen
before is answered as a duplicate and changes nothing; a payment id seen before likewise.
"""

import uuid
from datetime import datetime
from typing import Any, TypeVar

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.records.webhook_models import (
    ErpInboundMessage,
    ErpInvoice,
    ErpPayment,
    ErpSource,
    PartPrice,
    PartPriceList,
    PartPricePublic,
    PaymentIn,
    PriceListIn,
    PriceListPublic,
)
from services.records.webhook_secrets import key_of, unseal
from shared.auth import User
from shared.contracts.records import PaymentConfirmed
from shared.events import utcnow
from shared.outbox import add_event
from shared.pagination import after, page
from shared.problems import Conflict, DomainError, NotFound

M = TypeVar("M", bound=BaseModel)


class BadSignature(DomainError):
    status, slug, title = 401, "bad-signature", "Webhook signature not accepted"


class Signed:
    """A verified inbound message: who sent it, its id and its parsed body."""

    def __init__(self, source: ErpSource, message_id: str, payload: Any):
        self.source, self.message_id, self.payload = source, message_id, payload

    def parse(self, model: type[M]) -> M:
        try:
            return model.model_validate(self.payload)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            ) from exc


async def verify(
    request: Request, session: AsyncSession, source_id: uuid.UUID, tolerance: float
) -> Signed:
    body = await request.body()
    source = await session.get(ErpSource, source_id)
    if source is None or not source.active:
        raise BadSignature("unknown or inactive ERP source")
    headers = {k.lower(): v for k, v in request.headers.items()}
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    if not (msg_id and stamp and headers.get("webhook-signature")):
        raise BadSignature("webhook-id, webhook-timestamp and webhook-signature are required")
    if len(msg_id) > 100:
        raise BadSignature("webhook-id is longer than 100 characters")
    try:
        sent_at = float(stamp)
    except ValueError as exc:
        raise BadSignature("webhook-timestamp is not a number of seconds") from exc
    now = utcnow()
    if abs(now.timestamp() - sent_at) > tolerance:
        raise BadSignature(f"webhook-timestamp is outside the replay window of {tolerance:g} s")
    key = key_of(session)
    for secret in source.secrets(now):
        try:
            Webhook(unseal(secret, key)).verify(body, headers, json_parse=False)
        except (WebhookVerificationError, ValueError):
            continue
        break
    else:
        raise BadSignature("no signature matches the ERP source's secret")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": "JSON", "input": ""}]
        ) from exc
    return Signed(source, msg_id, payload)


async def first_time(session: AsyncSession, signed: Signed, kind: str) -> bool:
    """Record the message id; False when this source sent it before."""
    key = (signed.source.id, signed.message_id)
    if await session.get(ErpInboundMessage, key) is not None:
        return False
    session.add(
        ErpInboundMessage(
            source_id=signed.source.id,
            message_id=signed.message_id,
            kind=kind,
            received_at=utcnow(),
        )
    )
    try:
        await session.flush()
    except IntegrityError as exc:  # the same message arriving at another replica right now
        raise Conflict("this message is being handled by another request; retry") from exc
    return True


async def confirm_payment(
    session: AsyncSession, signed: Signed, body: PaymentIn
) -> tuple[bool, uuid.UUID]:
    """Store the payment and publish PaymentConfirmed once per ERP payment id."""
    branch = signed.source.branch
    fresh_message = await first_time(session, signed, "payment")
    existing = (
        await session.exec(
            select(ErpPayment).where(
                ErpPayment.branch == branch, ErpPayment.erp_payment_id == body.erp_payment_id
            )
        )
    ).first()
    if existing is not None:
        return False, existing.id
    if not fresh_message:
        raise Conflict("this webhook-id was already used for another message")
    repair_order_id = body.repair_order_id
    if repair_order_id is None:
        invoice = await session.get(ErpInvoice, (branch, body.invoice_number))
        repair_order_id = invoice.repair_order_id if invoice else None
    now = utcnow()
    payment = ErpPayment(
        branch=branch,
        source_id=signed.source.id,
        erp_payment_id=body.erp_payment_id,
        invoice_number=body.invoice_number,
        repair_order_id=repair_order_id,
        amount=body.amount,
        currency=body.currency,
        method=body.method,
        paid_at=body.paid_at,
        received_at=now,
    )
    session.add(payment)
    try:
        await session.flush()
    except IntegrityError as exc:  # the same payment arriving at another replica right now
        raise Conflict("this payment is being recorded by another request; retry") from exc
    add_event(
        session,
        PaymentConfirmed(
            erp_payment_id=body.erp_payment_id,
            branch=branch,
            invoice_number=body.invoice_number,
            repair_order_id=repair_order_id,
            amount=body.amount,
            currency=body.currency,
            method=body.method,
            paid_at=body.paid_at,
            received_at=now,
        ),
        subject=repair_order_id or body.invoice_number,
    )
    return True, payment.id


async def store_price_list(
    session: AsyncSession, signed: Signed, body: PriceListIn
) -> tuple[bool, uuid.UUID]:
    """Keep the list once per ERP list id; its items become the parts' prices from
    `valid_from` until a newer list takes over."""
    await first_time(session, signed, "price_list")
    existing = (
        await session.exec(
            select(PartPriceList).where(
                PartPriceList.source_id == signed.source.id, PartPriceList.list_id == body.list_id
            )
        )
    ).first()
    if existing is not None:
        return False, existing.id
    price_list = PartPriceList(
        branch=signed.source.branch,
        source_id=signed.source.id,
        list_id=body.list_id,
        currency=body.currency,
        valid_from=body.valid_from,
        item_count=len(body.items),
        received_at=utcnow(),
    )
    session.add(price_list)
    await session.flush()
    session.add_all(
        PartPrice(
            price_list_id=price_list.id,
            part_number=item.part_number,
            branch=price_list.branch,
            description=item.description,
            unit_price=item.unit_price,
            valid_from=price_list.valid_from,
        )
        for item in body.items
    )
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("this price list is being stored by another request; retry") from exc
    return True, price_list.id


async def price_lists(
    session: AsyncSession, by: User, *, limit: int, cursor: str | None
) -> tuple[list[PriceListPublic], str | None]:
    rows = (
        await session.exec(
            select(PartPriceList)
            .where(
                PartPriceList.branch == by.branch,
                after(PartPriceList.received_at, PartPriceList.id, cursor),
            )
            .order_by(col(PartPriceList.received_at).desc(), col(PartPriceList.id).desc())
            .limit(limit + 1)
        )
    ).all()
    items, next_cursor = page(list(rows), limit, "received_at")
    return [PriceListPublic.model_validate(r.model_dump()) for r in items], next_cursor


async def part_price(
    session: AsyncSession, by: User, part_number: str, at: datetime | None
) -> PartPricePublic:
    """The part's price in force at `at` (now): from the newest list valid by then."""
    when = at or utcnow()
    row = (
        await session.exec(
            select(PartPrice, PartPriceList)
            .join(PartPriceList, col(PartPriceList.id) == col(PartPrice.price_list_id))
            .where(
                PartPrice.branch == by.branch,
                PartPrice.part_number == part_number,
                col(PartPrice.valid_from) <= when,
            )
            .order_by(col(PartPrice.valid_from).desc(), col(PartPriceList.received_at).desc())
            .limit(1)
        )
    ).first()
    if row is None:
        raise NotFound(f"no ERP price for part {part_number!r} in force")
    price, price_list = row
    return PartPricePublic(
        part_number=price.part_number,
        description=price.description,
        unit_price=price.unit_price,
        currency=price_list.currency,
        valid_from=price.valid_from,
        price_list_id=price_list.id,
        list_id=price_list.list_id,
    )


async def payments(
    session: AsyncSession, by: User, *, limit: int, cursor: str | None
) -> tuple[list[ErpPayment], str | None]:
    rows = (
        await session.exec(
            select(ErpPayment)
            .where(
                ErpPayment.branch == by.branch,
                after(ErpPayment.received_at, ErpPayment.id, cursor),
            )
            .order_by(col(ErpPayment.received_at).desc(), col(ErpPayment.id).desc())
            .limit(limit + 1)
        )
    ).all()
    return page(list(rows), limit, "received_at")
