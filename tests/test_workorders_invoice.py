"""The invoice as the customer agreed it: every line with its quantity, rate, discount and
net, adding up line by line and to the totals, in the order's invoice, the settled event
the ERP books and the printed invoice; and the cashier's preview of it before settling,
priced by the same code."""

import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from services.workorders.config import Settings
from services.workorders.main import create_app
from shared.contracts import EstimateLine
from shared.pdf import pdf_text
from tests.harness import auth
from tests.test_bad_input import assert_problem
from tests.test_workorders_api import CASHIER, Workorders, approved, labour, part
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


async def test_the_cashier_sees_what_the_customer_owes_before_settling(wo: Workorders):  # noqa: F811
    brakes, pads, oil, recall = agreed_lines()
    # Open, with no work done yet: what the customer will owe for what they agreed to.
    order = await wo.consent(approved(lines=[brakes, pads, oil]))
    r = await wo.client.get(f"/repair-orders/{order['id']}/invoice-preview", headers=CASHIER)
    assert r.status_code == 200, r.text
    early = r.json()
    assert (early["status"], early["customer_due"]) == ("open", "562.74")  # 498.00 + 64.74

    order = await work_to_ready(wo, [brakes, pads, oil, recall])
    path = f"/repair-orders/{order['id']}/invoice-preview"
    r = await wo.client.get(path, headers=CASHIER)
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == order["etag"]
    preview = r.json()
    assert_adds_up(preview)
    assert preview["invoice_number"] == "INV-" + order["number"].removeprefix("RO-")
    payers = {t["pay_type"]: t for t in preview["totals"]}
    assert payers["customer"] == {"pay_type": "customer", "net": "498.00", "tax": "64.74",
                                  "gross": "562.74"}  # fmt: skip
    assert payers["warranty"]["gross"] == "169.50"  # what the maker owes: 150.00 + 19.50
    assert (preview["customer_due"], preview["discount_total"]) == ("562.74", "21")
    labour_line = next(line for line in preview["lines"] if line["line_id"] == str(brakes.line_id))
    assert (labour_line["quantity"], labour_line["unit_price"], labour_line["net"]) == (
        "1.2",
        "300",
        "340.00",
    )
    for role in ("advisor", "manager"):
        assert (await wo.client.get(path, headers=auth(role))).status_code == 200
    for role in ("foreman", "technician", "screen", "qc"):  # the money is the desk's
        assert_problem(await wo.client.get(path, headers=auth(role)), 403)
    assert_problem(await wo.client.get(path, headers=auth("cashier", "BR02")), 404)
    assert_problem(
        await wo.client.get(f"/repair-orders/{uuid.uuid4()}/invoice-preview", headers=CASHIER),
        404,
    )

    # Settling with the preview's ETag bills exactly what the preview showed.
    r = await wo.client.post(
        f"/repair-orders/{order['id']}/settlement",
        headers={**CASHIER, "If-Match": r.headers["ETag"]},
        json={"payments": [{"method": "wechat", "amount": preview["customer_due"]}]},
    )
    assert r.status_code == 200, r.text
    invoice = r.json()["invoice"]
    billed = {k: invoice[k] for k in ("lines", "totals", "net_total", "tax_total")}
    assert billed == {k: preview[k] for k in billed}
    assert_problem(await wo.client.get(path, headers=CASHIER), 409)  # the invoice is on the order


async def test_the_preview_is_in_the_openapi_document_with_its_model():
    document = create_app(Settings()).openapi()
    operation = document["paths"]["/repair-orders/{order_id}/invoice-preview"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/InvoicePreview")
    fields = document["components"]["schemas"]["InvoicePreview"]["properties"]
    assert {"lines", "totals", "tax_total", "customer_due"} <= set(fields)
