"""The advisor's end of the visit: the cars to hand over, an order's hand-over checklist
(workorders' delivery, with the order's version as If-Match), and the repair order and
invoice printed from workorders' PDFs with the user's token."""

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import gather, page_items
from services.staff.i18n import field_errors, problem_text
from services.staff.pages.advisor import labels as _labels  # noqa: F401  (joins the catalog)
from services.staff.pages.advisor.intake import _pdf
from services.staff.web import Form, Viewer, needs, redirect, render

Advisor = Annotated[Viewer, Depends(needs("advisor", "manager"))]

CHECKLIST = (
    "work_explained",
    "charges_explained",
    "old_parts_offered",
    "car_cleaned",
    "valuables_returned",
    "keys_returned",
)
# A first service interval to offer; the advisor writes what the maker's book says.
NEXT_SERVICE_DAYS, NEXT_SERVICE_KM = 180, 10000


def install(app: FastAPI) -> None:
    route = app.add_api_route
    route("/advisor/delivery", waiting, methods=["GET"], include_in_schema=False)
    route("/advisor/orders/{order_id}", order_page, methods=["GET"], include_in_schema=False)
    route("/advisor/orders/{order_id}/delivery", deliver, methods=["POST"], include_in_schema=False)
    route(
        "/advisor/print/orders/{order_id}/repair-order.pdf",
        repair_order_pdf,
        methods=["GET"],
        include_in_schema=False,
    )
    route(
        "/advisor/print/orders/{order_id}/invoice.pdf",
        invoice_pdf,
        methods=["GET"],
        include_in_schema=False,
    )


async def waiting(request: Request, seen: Advisor) -> Response:
    """Settled cars first (the customer can take them), then those still with the cashier."""
    settled, ready = await gather(
        seen.api.get("workorders", "/repair-orders", status="settled", limit=200),
        seen.api.get("workorders", "/repair-orders", status="ready", limit=200),
    )
    problem = next((problem_text(a, seen.lang) for a in (settled, ready) if not a.ok), None)
    rows = [
        *(page_items(settled.body) if settled.ok else []),
        *(page_items(ready.body) if ready.ok else []),
    ]
    return render(
        request,
        "delivery.html",
        lang=seen.lang,
        viewer=seen,
        rows=rows,
        problem=problem,
        nav="delivery",
    )


async def _order_view(
    request: Request,
    seen: Viewer,
    order_id: str,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    answer = await seen.api.get("workorders", f"/repair-orders/{order_id}")
    if not answer.ok:
        return render(
            request,
            "error.html",
            lang=seen.lang,
            viewer=seen,
            status_code=404,
            message_key="not_found",
            fmt={},
        )
    order = answer.body
    values = (form or {}).get("values") or {
        "next_service_on": (seen.today() + timedelta(days=NEXT_SERVICE_DAYS)).isoformat(),
        "next_service_km": str(order["odometer_km"] + NEXT_SERVICE_KM),
    }
    return render(
        request,
        "handover.html",
        lang=seen.lang,
        viewer=seen,
        order=order,
        jobs=[j for j in order.get("jobs", []) if j["status"] != "cancelled"],
        delivered_at=seen.local(order.get("delivered_at")),
        checklist=CHECKLIST,
        values=values,
        errors=(form or {}).get("errors") or {},
        message=(form or {}).get("message"),
        nav="delivery",
        status_code=status_code,
    )


async def order_page(request: Request, order_id: str, seen: Advisor) -> Response:
    return await _order_view(request, seen, order_id)


async def deliver(request: Request, order_id: str, seen: Advisor, form: Form) -> Response:
    """Hand the car over with the checklist as ticked, on the order the advisor saw."""
    body: dict[str, Any] = {item: form.get(item) == "on" for item in CHECKLIST}
    body["declined_work_told"] = form.get("declined_work_told") == "on"
    for name in ("next_service_on", "next_service_km", "note"):
        value = form.get(name, "").strip()
        if value:
            body[name] = int(value) if name == "next_service_km" and value.isdigit() else value
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/repair-orders/{order_id}/delivery",
        json=body,
        idempotency_key=form.get("idempotency_key"),
        if_match=f'"{form.get("version", "")}"',
    )
    if answer.ok:
        return redirect(f"/advisor/orders/{order_id}?delivered=1", request)
    errors = field_errors(answer, seen.lang)
    message = None if errors else problem_text(answer, seen.lang)
    if answer.status == 412:
        message, errors = seen.t["changed"], {}
    # A refusal keeps the advisor's ticks; a changed order gets a new key for its new state.
    key = "" if answer.status == 412 else form.get("idempotency_key")
    values = {**form, "idempotency_key": key}
    return await _order_view(
        request,
        seen,
        order_id,
        {"values": values, "errors": errors, "message": message},
        status_code=answer.status if answer.status in (409, 412, 422) else 422,
    )


async def repair_order_pdf(request: Request, order_id: str, seen: Advisor) -> Response:
    return await _pdf(request, seen, "workorders", f"/repair-orders/{order_id}/repair-order.pdf")


async def invoice_pdf(request: Request, order_id: str, seen: Advisor) -> Response:
    return await _pdf(request, seen, "workorders", f"/repair-orders/{order_id}/invoice.pdf")
