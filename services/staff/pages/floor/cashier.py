"""The cashier's pages: the orders ready to settle, the priced invoice preview per payer,
a discount (above the limit a manager approves on the spot), settlement by pay type, and
printing the invoice (workorders' PDF, each print recorded)."""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import page_items
from services.staff.pages.floor.common import refused, what_changed
from services.staff.web import Form, Viewer, needs, redirect, render

Cashier = Annotated[Viewer, Depends(needs("cashier", "manager"))]

METHODS = ("wechat", "alipay", "card", "cash", "transfer")


def install(app: FastAPI) -> None:
    route = app.add_api_route
    route("/cashier", ready, methods=["GET"], include_in_schema=False)
    route("/cashier/orders/{order_id}", order_page, methods=["GET"], include_in_schema=False)
    route("/cashier/orders/{order_id}/settle", settle, methods=["POST"], include_in_schema=False)
    route(
        "/cashier/orders/{order_id}/print", print_invoice, methods=["POST"], include_in_schema=False
    )
    route(
        "/cashier/orders/{order_id}/invoice.pdf",
        invoice_pdf,
        methods=["GET"],
        include_in_schema=False,
    )


async def ready(request: Request, seen: Cashier) -> Response:
    listed = await seen.api.get("workorders", "/repair-orders", status="ready", limit=200)
    rows = page_items(listed.body) if listed.ok else []
    return render(
        request,
        "cashier.html",
        lang=seen.lang,
        viewer=seen,
        rows=rows,
        problem=None if listed.ok else refused(listed, seen)[1],
        nav="cashier",
    )


async def _order_view(
    request: Request, seen: Viewer, order_id: str, form: dict[str, Any] | None = None, **extra: Any
) -> Response:
    order = await seen.api.get("workorders", f"/repair-orders/{order_id}")
    if not order.ok:
        return render(
            request,
            "error.html",
            lang=seen.lang,
            viewer=seen,
            status_code=404,
            message_key="not_found",
            fmt={},
        )
    preview = None
    if order.body["status"] == "ready":
        answer = await seen.api.get("workorders", f"/repair-orders/{order_id}/invoice-preview")
        preview = {**answer.body, "etag": answer.etag} if answer.ok else None
    return render(
        request,
        "cashier_order.html",
        lang=seen.lang,
        viewer=seen,
        order=order.body,
        invoice=order.body.get("invoice"),
        preview=preview,
        methods=METHODS,
        form=form or {"values": {}, "errors": {}},
        nav="cashier",
        here=quote(f"/cashier/orders/{order_id}", safe="/"),
        **extra,
    )


async def order_page(request: Request, order_id: str, seen: Cashier) -> Response:
    return await _order_view(request, seen, order_id)


async def settle(request: Request, order_id: str, seen: Cashier, form: Form) -> Response:
    """Settle with the preview's ETag: a discount if given, the payments by pay type."""
    discounts = []
    value = form.get("discount", "").strip()
    if value:
        kind = "percent" if form.get("discount_kind") == "percent" else "amount"
        discounts.append({kind: value, "reason": form.get("discount_reason", "")})
    payments = [
        {"method": form.get(f"method_{i}", ""), "amount": form.get(f"amount_{i}", "").strip()}
        for i in (1, 2)
        if form.get(f"amount_{i}", "").strip()
    ]
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/repair-orders/{order_id}/settlement",
        json={"payments": payments, "discounts": discounts},
        idempotency_key=form.get("idempotency_key"),
        if_match=form.get("etag"),
    )
    if answer.ok:
        return redirect(f"/cashier/orders/{order_id}?settled=1", request)
    errors, message = refused(answer, seen)
    errors = {
        ("discount" if k in ("percent", "amount", "reason", "discounts") else k): v
        for k, v in errors.items()
    }
    changed: list[str] = []
    needs_manager = answer.status == 403
    if needs_manager:
        message = seen.t["discount_needs_manager"]
    if answer.status == 412:
        now = await seen.api.get("workorders", f"/repair-orders/{order_id}")
        changed = what_changed(
            seen,
            form,
            now.body or {},
            {"status": "status"},
            lambda _, v: seen.t.get(f"order_{v}", v),
        ) or [seen.t["changed_lines"]]
        message = None
    values = {**form, "idempotency_key": "" if changed else form.get("idempotency_key")}
    return await _order_view(
        request,
        seen,
        order_id,
        {"values": values, "errors": errors, "message": message, "changed": changed},
        needs_manager=needs_manager,
    )


async def print_invoice(request: Request, order_id: str, seen: Cashier, form: Form) -> Response:
    """Record the print (a retry with the same key is the same print), then the PDF."""
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/repair-orders/{order_id}/invoice/prints",
        idempotency_key=form.get("idempotency_key"),
    )
    if not answer.ok:
        return await _order_view(request, seen, order_id, print_problem=refused(answer, seen)[1])
    printed = answer.body["printed"]
    return redirect(f"/cashier/orders/{order_id}/invoice.pdf?print={printed}", request)


async def invoice_pdf(
    request: Request, order_id: str, seen: Cashier, print: int | None = None
) -> Response:
    http = request.app.state.http
    url = request.app.state.api_bases["workorders"] + f"/repair-orders/{order_id}/invoice.pdf"
    upstream = await http.get(
        url,
        params={"lang": seen.lang, **({"print": print} if print else {})},
        headers={"Authorization": f"Bearer {seen.api.token}"},
    )
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type", "application/pdf"),
        headers={"Cache-Control": "no-store"},
    )
