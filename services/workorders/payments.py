"""Payments the dealer's ERP confirmed (`records.erp.payment_confirmed.v1`): matched to the
settled repair order by invoice number (or the order id when the ERP knows it), kept once
per `erp_payment_id`, and kept as unmatched for the cashier when no order fits."""

import logging
import uuid
from decimal import Decimal

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.workorders.models import ErpPayment, RepairOrder
from shared.auth import User
from shared.contracts import PaymentConfirmed
from shared.events import utcnow
from shared.pagination import after, page

log = logging.getLogger(__name__)


def invoice_number_of(order_number: str) -> str:
    """An order's invoice is numbered after it: RO-2026-000123 → INV-2026-000123."""
    return "INV-" + order_number.removeprefix("RO-")


async def _matching_order(session: AsyncSession, event: PaymentConfirmed) -> RepairOrder | None:
    """The settled order the payment is for, held to the end of the transaction.

    The order the invoice number is made from is locked even before it is settled: a
    settlement committing meanwhile is waited for and then seen here, and one starting
    after waits for this payment and adopts it; two payments of one order take turns, so
    the second counts the first towards the due."""
    if event.repair_order_id is not None:
        order = await session.get(RepairOrder, event.repair_order_id, with_for_update=True)
        if order is not None and order.branch == event.branch:
            return order
    number = "RO-" + event.invoice_number.removeprefix("INV-")
    query = (
        select(RepairOrder)
        .where(
            RepairOrder.branch == event.branch,
            or_(
                col(RepairOrder.invoice_number) == event.invoice_number,
                col(RepairOrder.number) == number,
            ),
        )
        .with_for_update()
    )
    orders = (await session.exec(query)).all()
    return next((o for o in orders if o.invoice_number == event.invoice_number), None)


async def payments_of(session: AsyncSession, order_id: uuid.UUID) -> list[ErpPayment]:
    query = (
        select(ErpPayment)
        .where(ErpPayment.repair_order_id == order_id)
        .order_by(col(ErpPayment.paid_at), col(ErpPayment.erp_payment_id))
    )
    return list((await session.exec(query)).all())


def confirmed_total(order: RepairOrder, payments: list[ErpPayment]) -> Decimal:
    """What the ERP confirmed in the order's currency (another currency is listed, not
    counted: converting is the ERP's business)."""
    return sum((Decimal(p.amount) for p in payments if p.currency == order.currency), Decimal("0"))


async def refresh_paid(session: AsyncSession, order: RepairOrder) -> None:
    """Mark the order paid once confirmed payments cover what the customer owes."""
    if order.invoice is None or order.paid_at is not None:
        return
    payments = await payments_of(session, order.id)
    due = Decimal(str(order.invoice.get("customer_due", "0")))
    running = Decimal("0")
    for payment in payments:
        if payment.currency != order.currency:
            continue
        running += Decimal(payment.amount)
        if running >= due:
            order.paid_at = payment.paid_at
            return


async def record_erp_payment(session: AsyncSession, event: PaymentConfirmed) -> ErpPayment:
    existing = await session.get(ErpPayment, event.erp_payment_id)
    if existing is not None:
        return existing  # the ERP (or its webhook) sent it again
    order = await _matching_order(session, event)
    payment = ErpPayment(
        erp_payment_id=event.erp_payment_id,
        branch=event.branch,
        invoice_number=event.invoice_number,
        repair_order_id=order.id if order is not None else None,
        amount=str(event.amount),
        currency=event.currency,
        method=event.method,
        paid_at=event.paid_at,
        received_at=event.received_at,
        recorded_at=utcnow(),
    )
    session.add(payment)
    await session.flush()
    if order is None:
        log.warning(
            "ERP payment %s for unknown invoice %s kept as unmatched",
            event.erp_payment_id,
            event.invoice_number,
        )
    else:
        await refresh_paid(session, order)
    return payment


async def adopt_unmatched(session: AsyncSession, order: RepairOrder) -> None:
    """At settlement: payments that arrived for this invoice number before it existed."""
    query = select(ErpPayment).where(
        ErpPayment.branch == order.branch,
        ErpPayment.invoice_number == order.invoice_number,
        col(ErpPayment.repair_order_id).is_(None),
    )
    for payment in (await session.exec(query)).all():
        payment.repair_order_id = order.id
    await session.flush()
    await refresh_paid(session, order)


async def unmatched(
    session: AsyncSession, by: User, *, limit: int, cursor: str | None
) -> tuple[list[ErpPayment], str | None]:
    """The cashier's list, newest first, a page at a time (keyed by the ERP's own id)."""
    query = (
        select(ErpPayment)
        .where(
            ErpPayment.branch == by.branch,
            col(ErpPayment.repair_order_id).is_(None),
            after(ErpPayment.recorded_at, ErpPayment.erp_payment_id, cursor, key=str),
        )
        .order_by(col(ErpPayment.recorded_at).desc(), col(ErpPayment.erp_payment_id).desc())
        .limit(limit + 1)
    )
    rows = list((await session.exec(query)).all())
    return page(rows, limit, "recorded_at", key="erp_payment_id")
