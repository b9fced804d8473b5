"""Estimate prices: line nets, tax per pay type and totals, in Decimal, rounded at two places.

The rounding rule, in full: a line's net (hours x rate, or quantity x unit price, minus its
discount) is rounded once to 0.01 with ROUND_HALF_UP. Tax is computed per pay type on the
sum of that pay type's rounded line nets and rounded once to 0.01 with ROUND_HALF_UP. Every
total is a plain sum of those rounded amounts, so the printed lines always add up.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

CENT = Decimal("0.01")
PAY_TYPES = ("customer", "warranty", "internal")


def round_money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


class PricedLine(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def flat_rate_hours(self) -> Decimal: ...
    @property
    def labour_rate(self) -> Decimal: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def unit_price(self) -> Decimal: ...
    @property
    def discount(self) -> Decimal: ...
    @property
    def pay_type(self) -> str: ...


def gross(line: PricedLine) -> Decimal:
    if line.kind == "labour":
        return line.flat_rate_hours * line.labour_rate
    return line.quantity * line.unit_price


def line_net(line: PricedLine) -> Decimal:
    """The line's amount before tax: the first and only rounding of the line."""
    return round_money(gross(line) - line.discount)


@dataclass(frozen=True)
class PayTypeTotal:
    pay_type: str
    net: Decimal
    tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.net + self.tax


@dataclass(frozen=True)
class Totals:
    by_pay_type: list[PayTypeTotal]

    @property
    def net(self) -> Decimal:
        return sum((t.net for t in self.by_pay_type), Decimal("0.00"))

    @property
    def tax(self) -> Decimal:
        return sum((t.tax for t in self.by_pay_type), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.net + self.tax


def totals(lines: Iterable[PricedLine], tax_rate: Decimal) -> Totals:
    """Tax once per pay type, on the sum of that pay type's rounded line nets."""
    nets: dict[str, Decimal] = {}
    for line in lines:
        nets[line.pay_type] = nets.get(line.pay_type, Decimal("0.00")) + line_net(line)
    return Totals(
        [
            PayTypeTotal(pay_type, nets[pay_type], round_money(nets[pay_type] * tax_rate))
            for pay_type in PAY_TYPES
            if pay_type in nets
        ]
    )
