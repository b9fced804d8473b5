"""The cashier's desk (结算): orders ready to settle with what each payer owes, priced by
workorders as settlement prices them, and settling one with the payment taken and an
optional discount, with the order's ETag. Follows the workshop live."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import gather, page_items
from services.staff.i18n import field_errors, problem_text
from services.staff.web import Form, Viewer, needs, render

Cashier = Annotated[Viewer, Depends(needs("cashier", "manager"))]
METHODS = ("wechat", "alipay", "card", "cash", "transfer")


def install(app: FastAPI) -> None:
    routes: list[tuple[str, Callable[..., Any], str]] = [
        ("/cashier", page, "GET"),
        ("/cashier/orders", listing, "GET"),
        ("/cashier/orders/{order_id}/settlement", settle, "POST"),
    ]
    for path, endpoint, method in routes:
        app.add_api_route(path, endpoint, methods=[method], include_in_schema=False)


async def _render(
    request: Request, seen: Viewer, template: str, forms: dict[str, Any], **extra: Any
) -> Response:
    ready = await seen.api.get("workorders", "/repair-orders", status="ready", limit=50)
    orders = page_items(ready.body) if ready.ok else []
    previews = await gather(
        *(seen.api.get("workorders", f"/repair-orders/{o['id']}/invoice-preview") for o in orders)
    )
    rows = [
        {"order": o, "preview": p.body, "etag": p.etag}
        for o, p in zip(orders, previews, strict=True)
        if p.ok
    ]
    return render(
        request,
        template,
        lang=seen.lang,
        viewer=seen,
        rows=rows,
        methods=METHODS,
        forms=forms,
        problem=None if ready.ok else problem_text(ready, seen.lang),
        **extra,
    )


async def page(request: Request, seen: Cashier) -> Response:
    return await _render(request, seen, "cashier.html", {})


async def listing(request: Request, seen: Cashier) -> Response:
    return await _render(request, seen, "_cashier_orders.html", {})


async def settle(request: Request, order_id: str, seen: Cashier, form: Form) -> Response:
    body: dict[str, Any] = {
        "payments": [{"method": form.get("method", "wechat"), "amount": form.get("amount", "")}]
    }
    if form.get("discount_percent"):
        body["discounts"] = [
            {"percent": form["discount_percent"], "reason": form.get("discount_reason", "")}
        ]
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/repair-orders/{order_id}/settlement",
        json=body,
        idempotency_key=form.get("idempotency_key"),
        if_match=form.get("etag"),
    )
    if answer.ok:
        return await _render(
            request,
            seen,
            "_cashier_orders.html",
            {},
            settled=answer.body.get("invoice_number") or answer.body.get("number"),
        )
    found = field_errors(answer, seen.lang)
    errors = {
        "amount": found.get("payments.0.amount") or found.get("payments") or "",
        "discount_percent": found.get("discounts.0.percent") or "",
        "discount_reason": found.get("discounts.0.reason") or "",
    }
    errors = {k: v for k, v in errors.items() if v}
    state = {
        "values": form,
        "errors": errors,
        "message": None if errors else problem_text(answer, seen.lang),
    }
    return await _render(request, seen, "_cashier_orders.html", {order_id: state})
