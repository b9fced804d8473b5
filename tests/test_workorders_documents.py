"""Discounts at settlement (rounding, the manager's limit, what the settled event carries)
and the repair order and invoice as PDFs in Chinese and English, with counted reprints."""

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from services.workorders.config import Settings
from services.workorders.invoicing import apply_discounts
from services.workorders.main import create_app
from services.workorders.schemas import Discount
from shared.auth import issue_dev_token
from shared.contracts.workorders import InvoiceLine
from shared.pdf import pdf_text
from tests.harness import JWT_SECRET, NatsServer, auth
from tests.test_bad_input import assert_problem
from tests.test_workorders_api import CASHIER, Workorders, labour, part
from tests.test_workorders_payments import work_to_ready

MANAGER = auth("manager")


def line(net: str, pay_type: str = "customer") -> InvoiceLine:
    return InvoiceLine(line_id=uuid.uuid4(), kind="labour", net=Decimal(net), pay_type=pay_type)


# --- the discount rules ---------------------------------------------------------------


def test_a_line_percentage_is_rounded_half_up_to_the_fen():
    lines = [line("33.33"), line("100")]
    result, largest = apply_discounts(
        lines, [Discount(line_id=lines[0].line_id, percent=Decimal("15"), reason="r")]
    )
    assert result[0].discount == Decimal("5.00")  # 4.9995 → 5.00
    assert result[0].net == Decimal("28.33") and result[1].net == Decimal("100")
    assert largest == Decimal("5.00") * 100 / Decimal("33.33")
    assert lines[0].net == Decimal("33.33")  # the input is left alone


def test_an_order_discount_spreads_over_customer_lines_and_adds_up_exactly():
    lines = [line("10"), line("10"), line("10"), line("500", "warranty")]
    result, largest = apply_discounts(lines, [Discount(amount=Decimal("10"), reason="r")])
    # 3.33 each; the fen left over goes to the line that lost most to rounding (the first)
    assert [r.discount for r in result] == [
        Decimal("3.34"),
        Decimal("3.33"),
        Decimal("3.33"),
        Decimal("0"),
    ]
    assert sum(r.discount for r in result) == Decimal("10.00")
    assert result[3].net == Decimal("500")  # warranty lines are not the customer's to discount
    assert largest == Decimal("10") * 100 / Decimal("30")


@given(
    nets=st.lists(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2),
        min_size=1,
        max_size=8,
    ),
    percent=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100"), places=2),
)
def test_an_order_discount_never_makes_a_line_negative_or_loses_a_fen(
    nets: list[Decimal], percent: Decimal
):
    lines = [line(str(n)) for n in nets]
    result, _ = apply_discounts(lines, [Discount(percent=percent, reason="r")])
    granted = (sum(nets) * percent / 100).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    assert sum(r.discount for r in result) == granted
    assert all(r.net >= 0 for r in result)
    assert sum(r.net for r in result) == sum(nets) - granted


def test_discounts_that_cannot_apply_are_refused_naming_the_field():
    lines = [line("100")]
    cases = [
        [Discount(line_id=uuid.uuid4(), amount=Decimal("1"), reason="r")],
        [Discount(line_id=lines[0].line_id, amount=Decimal("101"), reason="r")],
        [
            Discount(line_id=lines[0].line_id, amount=Decimal("1"), reason="r"),
            Discount(line_id=lines[0].line_id, amount=Decimal("1"), reason="r"),
        ],
        [Discount(amount=Decimal("1"), reason="r"), Discount(amount=Decimal("1"), reason="r")],
        [Discount(amount=Decimal("100.01"), reason="r")],
    ]
    from shared.problems import InvalidInput

    for discounts in cases:
        with pytest.raises(InvalidInput) as caught:
            apply_discounts(lines, discounts)
        assert "discounts" in str(caught.value)


# --- settlement through the API -------------------------------------------------------


@pytest_asyncio.fixture
async def wo(database_url: str, nats_server: NatsServer) -> AsyncIterator[Workorders]:
    app = create_app(
        Settings(database_url=database_url, nats_url=nats_server.url, dealer_name="上海浦东4S店")
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        yield Workorders(client, app.state.runtime.db, nats_server.url)


async def post_settlement(
    wo: Workorders, order: dict[str, Any], body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    current = await wo.order(order["id"])
    return await wo.client.post(
        f"/repair-orders/{order['id']}/settlement",
        headers={**headers, "If-Match": current["etag"]},
        json=body,
    )


@pytest.mark.asyncio
@pytest.mark.store
async def test_discounts_at_settlement_and_the_managers_limit(wo: Workorders):
    labour_line = labour("BRK-010", "1.5", "450")
    pads = part("BP-4411", "380", op_code="BRK-010")
    order = await work_to_ready(wo, [labour_line, pads])
    # Customer net 830; 15 % of it is above the cashier's 10 %.
    big = {
        "discounts": [{"percent": "15", "reason": "老客户 / long-standing customer"}],
        "payments": [{"method": "card", "amount": "797.22"}],
    }
    assert_problem(await post_settlement(wo, order, big, CASHIER), 403)
    assert (await wo.order(order["id"]))["status"] == "ready"
    assert await wo.events("workorders.repair_order.settled.v1") == []

    bad = [
        {"discounts": [{"percent": "5", "amount": "1", "reason": "x"}], "payments": []},
        {"discounts": [{"percent": "5"}], "payments": []},
        {"discounts": [{"line_id": str(uuid.uuid4()), "percent": "5", "reason": "x"}]},
        {"discounts": [{"percent": "120", "reason": "x"}]},
    ]
    for body in bad:
        problem = assert_problem(await post_settlement(wo, order, body, CASHIER), 422)
        assert any(e["field"].startswith("discounts") for e in problem["errors"]), problem
    assert (await wo.order(order["id"]))["status"] == "ready"

    # A line discount of 50 on the labour, then 15 % of the rest by the manager:
    # net 400 + 380 = 780, 15 % = 117.00 spread 60.00 / 57.00; tax 13 % of 663 = 86.19.
    body = {
        "discounts": [
            {"line_id": str(labour_line.line_id), "amount": "50", "reason": "等待补偿 / wait"},
            {"percent": "15", "reason": "老客户 / long-standing customer"},
        ],
        "payments": [{"method": "card", "amount": "749.19"}],
    }
    r = await post_settlement(wo, order, body, MANAGER)
    assert r.status_code == 200, r.text
    [settled] = await wo.events("workorders.repair_order.settled.v1")
    lines = {line["line_id"]: line for line in settled["lines"]}
    labour_out = lines[str(labour_line.line_id)]
    pads_out = lines[str(pads.line_id)]
    assert (labour_out["net"], labour_out["discount"]) == ("340.00", "110.00")
    assert (pads_out["net"], pads_out["discount"]) == ("323.00", "57.00")
    assert (
        "wait" in labour_out["discount_reason"] and "long-standing" in pads_out["discount_reason"]
    )
    assert settled["discount_total"] == "167.00"
    assert settled["net_total"] == "663.00" and settled["tax_total"] == "86.19"
    assert settled["customer_due"] == "749.19"


# --- documents ------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.store
async def test_repair_order_and_invoice_pdfs_with_counted_copies(wo: Workorders):
    order = await work_to_ready(wo)
    c = wo.client
    r = await c.get(f"/repair-orders/{order['id']}/repair-order.pdf", headers=auth("advisor"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = pdf_text(r.content)
    assert "维修工单" in text and order["number"] in text and "沪A12345" in text
    assert "BRK-010" in text and "王芳" in text and "上海浦东4S店" in text
    r = await c.get(
        f"/repair-orders/{order['id']}/repair-order.pdf", params={"lang": "en"}, headers=CASHIER
    )
    assert "Repair order" in pdf_text(r.content) and "Flat rate h" in pdf_text(r.content)
    assert_problem(
        await c.get(f"/repair-orders/{order['id']}/repair-order.pdf", headers=auth("screen")),
        403,
    )
    assert_problem(
        await c.get(
            f"/repair-orders/{order['id']}/repair-order.pdf",
            params={"lang": "de"},
            headers=CASHIER,
        ),
        422,
        None,
    )

    invoice_pdf = f"/repair-orders/{order['id']}/invoice.pdf"
    prints = f"/repair-orders/{order['id']}/invoice/prints"
    assert_problem(await c.post(prints, headers=CASHIER), 409)  # not settled yet
    assert_problem(await c.get(invoice_pdf, headers=CASHIER), 409)  # no invoice yet
    r = await post_settlement(
        wo,
        order,
        {
            "discounts": [{"amount": "8.50", "reason": "会员 / member"}],
            "payments": [{"method": "wechat", "amount": "498.90"}],
        },
        CASHIER,
    )
    assert r.status_code == 200, r.text
    etag = (await wo.order(order["id"]))["etag"]
    # Read before any print: a preview, never the original, and reading counts no print.
    r = await c.get(invoice_pdf, headers=auth("advisor"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert "preview" in r.headers["content-disposition"]
    preview = pdf_text(r.content)
    assert "结算单" in preview and "预览" in preview and "副本" not in preview
    assert "INV-" in preview and "¥498.90" in preview
    preview_en = pdf_text(
        (await c.get(invoice_pdf, params={"lang": "en"}, headers=CASHIER)).content
    )
    assert "PREVIEW" in preview_en and "not the original" in preview_en
    assert_problem(await c.get(invoice_pdf, params={"print": 1}, headers=CASHIER), 422, "print")
    assert (await wo.order(order["id"]))["invoice_prints"] == 0
    assert (await c.get(prints, headers=CASHIER)).json()["items"] == []

    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await c.post(prints, headers={**CASHIER, **key})
    again = await c.post(prints, headers={**CASHIER, **key})  # a retry, not a second print
    assert first.status_code == 201 and again.json() == first.json()
    assert (first.json()["printed"], first.json()["is_copy"]) == (1, False)
    original = pdf_text((await c.get(invoice_pdf, headers=CASHIER)).content)
    assert "结算单" in original and "副本" not in original and "预览" not in original
    assert "INV-" in original and "¥498.90" in original and "会员" in original

    second = await c.post(prints, headers=CASHIER)
    assert (second.json()["printed"], second.json()["is_copy"]) == (2, True)
    copy_zh = pdf_text((await c.get(invoice_pdf, headers=CASHIER)).content)
    assert "副本" in copy_zh
    copy_en = pdf_text((await c.get(invoice_pdf, params={"lang": "en"}, headers=CASHIER)).content)
    assert "COPY" in copy_en and "Invoice" in copy_en
    reprint_1 = (await c.get(invoice_pdf, params={"print": 1}, headers=CASHIER)).content
    assert "副本" not in pdf_text(reprint_1)
    assert_problem(await c.get(invoice_pdf, params={"print": 3}, headers=CASHIER), 422, "print")
    assert (await wo.order(order["id"]))["invoice_prints"] == 2
    # Printing does not change the order's ETag under the advisor's tablet.
    assert (await wo.order(order["id"]))["etag"] == etag

    # Every print is logged: who, when, which copy; on the order and on its own.
    qian = issue_dev_token(JWT_SECRET, role="manager", branch="BR01", sub="mgr-qian", name="钱经理")
    manager = {"Authorization": f"Bearer {qian}"}
    third = await c.post(prints, headers=manager)
    assert third.status_code == 201, third.text
    log = (await wo.order(order["id"]))["invoice_print_log"]
    assert [(p["printed"], p["is_copy"]) for p in log] == [(1, False), (2, True), (3, True)]
    assert log[0] == first.json() and log[1] == second.json() and log[2] == third.json()
    assert (log[2]["printed_by"], log[2]["printed_by_name"]) == ("mgr-qian", "钱经理")
    assert log[0]["printed_at"] <= log[1]["printed_at"] <= log[2]["printed_at"]
    listed = await c.get(prints, headers=auth("advisor"))
    assert listed.status_code == 200 and listed.json() == {"items": log, "next_cursor": None}
    assert_problem(await c.get(prints, headers=auth("technician")), 403)
    assert_problem(await c.get(prints, headers=auth("cashier", "BR02")), 404)
