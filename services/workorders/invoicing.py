"""The invoice of a repair order: its lines as the customer agreed them, discounts given at
settlement, tax once per pay type, and what each payer owes. Settlement and the cashier's
preview price an order here and nowhere else, so the preview is what settling bills."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel

from services.workorders.models import Job, RepairOrder
from services.workorders.payments import invoice_number_of
from services.workorders.schemas import Discount
from services.workorders.states import JobStatus, RepairOrderStatus
from shared.contracts import EstimateLine
from shared.contracts.workorders import InvoiceLine, PayTypeTotal
from shared.problems import Conflict, InvalidInput

CENT = Decimal("0.01")


def invoice_lines(order: RepairOrder, jobs: list[Job]) -> list[InvoiceLine]:
    """The lines the customer agreed to, as reception priced them: quantity (a labour
    line's flat-rate hours), rate, the discount agreed on the estimate, and the net that
    reception rounded once (quantity x rate - discount, half up to the fen)."""
    lines: list[InvoiceLine] = []
    raw: list[dict[str, Any]] = []
    for job in jobs:
        if job.status == JobStatus.cancelled:
            continue
        raw += [job.line, *job.parts]
    raw += order.other_lines
    for data in raw:
        line = EstimateLine.model_validate(data)
        lines.append(
            InvoiceLine(
                line_id=line.line_id,
                kind=line.kind,
                description=line.description,
                op_code=line.op_code,
                part_number=line.part_number,
                # A labour line sells its flat-rate hours at the labour rate.
                quantity=line.flat_rate_hours if line.kind == "labour" else line.quantity,
                unit_price=line.labour_rate if line.kind == "labour" else line.unit_price,
                agreed_discount=line.discount,
                discount=line.discount,
                net=line.net,
                tax_rate=line.tax_rate,
                pay_type=line.pay_type,
            )
        )
    return lines


def totals_by_pay_type(lines: list[InvoiceLine]) -> list[PayTypeTotal]:
    """Tax is rounded once per pay type, half up to the fen, on the sum of its lines."""
    groups: dict[str, tuple[Decimal, Decimal]] = {}
    for line in lines:
        net, tax = groups.get(line.pay_type, (Decimal("0"), Decimal("0")))
        groups[line.pay_type] = (net + line.net, tax + line.net * line.tax_rate)
    result = []
    for pay_type in sorted(groups):
        net, tax = groups[pay_type]
        net = net.quantize(CENT, rounding=ROUND_HALF_UP)
        tax = tax.quantize(CENT, rounding=ROUND_HALF_UP)
        result.append(PayTypeTotal(pay_type=pay_type, net=net, tax=tax, gross=net + tax))
    return result


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def apply_discounts(
    lines: list[InvoiceLine], discounts: list[Discount]
) -> tuple[list[InvoiceLine], Decimal]:
    """Take settlement discounts off the lines' net (and add them to the line's discount,
    which already holds the one agreed on the estimate); returns the lines and the largest
    settlement discount as a percentage of what it applied to (for the manager's limit).

    Line discounts come first, each rounded half up to the fen. An order discount then
    applies to the customer-paid lines' net after them: a percentage is rounded half up
    once on that sum, and the amount is spread over those lines in proportion to their
    net, each share rounded down to the fen and the fen left over given one each to the
    lines that lost most to rounding (largest remainder), so the lines add up to exactly
    the discount granted and no line goes below zero. Tax is then computed on
    the discounted net, once per pay type, as without discounts."""
    by_id = {line.line_id: line.model_copy() for line in lines}
    result = [by_id[line.line_id] for line in lines]
    largest = Decimal("0")
    seen: set[uuid.UUID] = set()
    for index, discount in enumerate(discounts):
        if discount.line_id is None:
            continue
        field = f"discounts.{index}"
        line = by_id.get(discount.line_id)
        if line is None:
            raise InvalidInput(field, f"line {discount.line_id} is not on the invoice")
        if discount.line_id in seen:
            raise InvalidInput(field, "one discount per line")
        seen.add(discount.line_id)
        base = line.net
        off = _cents(base * discount.percent / 100) if discount.percent else discount.amount
        assert off is not None
        if off > base:
            raise InvalidInput(field, f"the discount {off} exceeds the line's net {base}")
        line.net, line.discount = base - off, line.discount + off
        line.discount_reason = discount.reason
        if base:
            largest = max(largest, off * 100 / base)
    whole = [d for d in discounts if d.line_id is None]
    if len(whole) > 1:
        raise InvalidInput("discounts", "at most one discount on the whole order")
    if whole:
        discount = whole[0]
        customer = [line for line in result if line.pay_type == "customer" and line.net > 0]
        base = sum((line.net for line in customer), Decimal("0"))
        off = _cents(base * discount.percent / 100) if discount.percent else discount.amount
        assert off is not None
        if off > base:
            raise InvalidInput("discounts", f"the discount {off} exceeds the customer's net {base}")
        exact = [off * line.net / base for line in customer] if base else []
        shares = [share.quantize(CENT, rounding=ROUND_DOWN) for share in exact]
        # The fen left over go one each to the lines that lost most to rounding down, so no
        # line's share passes its net and the shares add up to the discount exactly.
        left = int((off - sum(shares, Decimal("0"))) / CENT)
        by_loss = sorted(range(len(shares)), key=lambda i: (shares[i] - exact[i], i))
        for i in by_loss[:left]:
            shares[i] += CENT
        for line, share in zip(customer, shares, strict=True):
            line.net -= share
            line.discount += share
            line.discount_reason = "; ".join(
                r for r in (line.discount_reason, discount.reason) if r
            )
        if base:
            largest = max(largest, off * 100 / base)
    return result, largest


def invoice_number(order: RepairOrder) -> str:
    """The invoice's number follows the order's: RO-2026-000123 → INV-2026-000123."""
    return invoice_number_of(order.number)


@dataclass(frozen=True)
class PricedInvoice:
    """An order priced for its invoice: lines after every discount, totals per payer."""

    lines: list[InvoiceLine]
    totals: list[PayTypeTotal]
    # The largest settlement discount, in percent of what it applied to (the manager's limit).
    largest_discount_percent: Decimal

    @property
    def net_total(self) -> Decimal:
        return sum((t.net for t in self.totals), Decimal("0"))

    @property
    def tax_total(self) -> Decimal:
        return sum((t.tax for t in self.totals), Decimal("0"))

    @property
    def gross_total(self) -> Decimal:
        return sum((t.gross for t in self.totals), Decimal("0"))

    @property
    def customer_due(self) -> Decimal:
        return sum((t.gross for t in self.totals if t.pay_type == "customer"), Decimal("0"))

    @property
    def discount_total(self) -> Decimal:
        return sum((line.discount for line in self.lines), Decimal("0"))


def price(order: RepairOrder, jobs: list[Job], discounts: Sequence[Discount] = ()) -> PricedInvoice:
    """The order's invoice as settlement would write it with these discounts."""
    lines, largest = apply_discounts(invoice_lines(order, jobs), list(discounts))
    return PricedInvoice(lines, totals_by_pay_type(lines), largest)


# --- the cashier's preview ------------------------------------------------------------


class InvoicePreview(BaseModel):
    """What settlement would bill now, before any discount granted at the desk: the
    lines, and per payer (customer, warranty, internal) net, tax and gross, the gross being
    what that payer owes."""

    repair_order_id: uuid.UUID
    number: str
    status: RepairOrderStatus
    invoice_number: str
    currency: str
    lines: list[InvoiceLine]
    totals: list[PayTypeTotal]
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal
    discount_total: Decimal
    customer_due: Decimal


BILLED = (RepairOrderStatus.settled, RepairOrderStatus.delivered)


def preview(order: RepairOrder, jobs: list[Job]) -> InvoicePreview:
    if order.status in BILLED:
        raise Conflict("the order is settled: its invoice is on the order (`invoice`)")
    if order.status == RepairOrderStatus.cancelled:
        raise Conflict("the order is cancelled: there is nothing to bill")
    priced = price(order, jobs)
    return InvoicePreview(
        repair_order_id=order.id,
        number=order.number,
        status=order.status,
        invoice_number=invoice_number(order),
        currency=order.currency,
        lines=priced.lines,
        totals=priced.totals,
        net_total=priced.net_total,
        tax_total=priced.tax_total,
        gross_total=priced.gross_total,
        discount_total=priced.discount_total,
        customer_due=priced.customer_due,
    )
