"""The invoice as the customer agreed it: every line with its quantity, rate, discount and
net, adding up line by line and to the totals, in the order's invoice, the settled event
the ERP books and the printed invoice; and the cashier's preview of it before settling,
priced by the same code."""

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from shared.contracts import EstimateLine
from shared.pdf import pdf_text
from tests.test_workorders_api import CASHIER, Workorders, labour, part
from tests.test_workorders_documents import post_settlement, wo  # noqa: F401 (fixture)
from tests.test_workorders_payments import work_to_ready

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

CENT = Decimal("0.01")


def agreed_lines() -> list[EstimateLine]:
    """Priced as reception prices them: net = quantity x rate - discount, rounded once."""
    return [
        # 1.2 h at 300.00, 20.00 off agreed at reception: 340.00
        labour("BRK-010", "1.2", "340.00", discount=Decimal("20")),
        # 2 x 45.50, 1.00 off: 90.00
        part("BP-4411", "90.00", op_code="BRK-010").model_copy(
            update={
                "quantity": Decimal("2"),
                "unit_price": Decimal("45.50"),
                "discount": Decimal("1"),
            }
        ),
        # 1.5 L at 45.3333 a litre: 67.99995, rounded once to 68.00
        part("OIL-5W30", "68.00").model_copy(
            update={"quantity": Decimal("1.5"), "unit_price": Decimal("45.3333")}
        ),
        # a warranty job, billed to the maker at its rate
        labour("REC-77", "0.5", "150.00", pay_type="warranty", job_kind="recall"),
    ]


def assert_adds_up(invoice: dict[str, Any]) -> None:
    lines = invoice["lines"]
    for line in lines:
        quantity, rate = Decimal(line["quantity"]), Decimal(line["unit_price"])
        discount, net = Decimal(line["discount"]), Decimal(line["net"])
        assert (quantity * rate - discount).quantize(CENT, ROUND_HALF_UP) == net, line
    for total in invoice["totals"]:
        nets = [Decimal(line["net"]) for line in lines if line["pay_type"] == total["pay_type"]]
        assert sum(nets) == Decimal(total["net"]), total
        assert Decimal(total["net"]) + Decimal(total["tax"]) == Decimal(total["gross"])
    assert sum(Decimal(line["net"]) for line in lines) == Decimal(invoice["net_total"])
    discounts = sum(Decimal(line["discount"]) for line in lines)
    assert discounts == Decimal(invoice["discount_total"])


async def test_every_invoice_line_carries_what_the_customer_agreed_to(wo: Workorders):  # noqa: F811
    brakes, pads, oil, recall = agreed_lines()
    order = await work_to_ready(wo, [brakes, pads, oil, recall])
    # A settlement discount on the labour comes on top of the one agreed at reception.
    # Customer net 340 + 90 + 68 - 10 = 488.00, tax 63.44; warranty 150.00, tax 19.50.
    r = await post_settlement(
        wo,
        order,
        {
            "discounts": [{"line_id": str(brakes.line_id), "amount": "10", "reason": "等待补偿"}],
            "payments": [{"method": "card", "amount": "551.44"}],
        },
        CASHIER,
    )
    assert r.status_code == 200, r.text
    invoice = r.json()["invoice"]
    [settled] = await wo.events("workorders.repair_order.settled.v1")
    for billed in (invoice, settled):
        assert_adds_up(billed)
        lines = {line["line_id"]: line for line in billed["lines"]}
        labour_line = lines[str(brakes.line_id)]
        assert (labour_line["quantity"], labour_line["unit_price"]) == ("1.2", "300")
        assert (labour_line["discount"], labour_line["agreed_discount"]) == ("30", "20")
        assert labour_line["net"] == "330.00"
        pads_line = lines[str(pads.line_id)]
        assert (pads_line["quantity"], pads_line["unit_price"]) == ("2", "45.50")
        assert (pads_line["discount"], pads_line["net"]) == ("1", "90.00")
        assert lines[str(recall.line_id)]["unit_price"] == "300"
        assert billed["discount_total"] == "31"
        assert billed["customer_due"] == "551.44"

    r = await wo.client.post(f"/repair-orders/{order['id']}/invoice/prints", headers=CASHIER)
    assert r.status_code == 201, r.text
    r = await wo.client.get(
        f"/repair-orders/{order['id']}/invoice.pdf", params={"lang": "en"}, headers=CASHIER
    )
    text = pdf_text(r.content)
    assert "¥300.00" in text and "¥30.00" in text and "¥330.00" in text, text
    assert "¥31.00" in text  # the discounts, agreed and granted
    assert "¥45.3333" in text  # the price per litre as agreed, not rounded to the fen
