"""The foreman's orders between the bays and the cashier: an order whose jobs are all
finished goes to QC, one whose jobs all passed QC is released to settle and hand over
(workorders' order transitions, with the order's version as If-Match)."""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import gather, page_items
from services.staff.i18n import problem_text
from services.staff.pages.advisor import labels as _labels  # noqa: F401  (joins the catalog)
from services.staff.web import Form, Viewer, needs, redirect, render

Foreman = Annotated[Viewer, Depends(needs("foreman", "manager"))]

_FINISHED = {"done", "qc_passed"}
_MOVED = {"qc": "moved_to_qc", "ready": "moved_to_ready"}


def install(app: FastAPI) -> None:
    route = app.add_api_route
    route("/foreman/orders", orders, methods=["GET"], include_in_schema=False)
    route("/foreman/orders/{order_id}/move", move, methods=["POST"], include_in_schema=False)


def _row(order: dict[str, Any]) -> dict[str, Any]:
    jobs = [j for j in order.get("jobs", []) if j["status"] != "cancelled"]
    statuses = [j["status"] for j in jobs]
    move = None
    if jobs and order["status"] == "in_progress" and set(statuses) <= _FINISHED:
        move = "qc"
    elif jobs and order["status"] == "qc" and set(statuses) == {"qc_passed"}:
        move = "ready"
    return {**order, "live_jobs": jobs, "move": move}


async def orders(request: Request, seen: Foreman) -> Response:
    working, in_qc = await gather(
        seen.api.get("workorders", "/repair-orders", status="in_progress", limit=200),
        seen.api.get("workorders", "/repair-orders", status="qc", limit=200),
    )
    problem = next((problem_text(a, seen.lang) for a in (working, in_qc) if not a.ok), None)
    ids = [o["id"] for answer in (in_qc, working) if answer.ok for o in page_items(answer.body)]
    # The list names the orders; each one's jobs come with the order itself.
    details = await gather(*(seen.api.get("workorders", f"/repair-orders/{i}") for i in ids))
    rows = sorted((_row(d.body) for d in details if d.ok), key=lambda r: r["move"] is None)
    return render(
        request,
        "orders_flow.html",
        lang=seen.lang,
        viewer=seen,
        rows=rows,
        problem=problem,
        nav="orders_flow",
    )


async def move(request: Request, order_id: str, seen: Foreman, form: Form) -> Response:
    to = form.get("to", "")
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/repair-orders/{order_id}/transitions",
        json={"to": to},
        idempotency_key=form.get("idempotency_key"),
        if_match=f'"{form.get("version", "")}"',
    )
    if answer.ok:
        return redirect(f"/foreman/orders?note={quote(seen.t[_MOVED.get(to, 'saved')])}", request)
    text = seen.t["changed"] if answer.status == 412 else problem_text(answer, seen.lang)
    return redirect(f"/foreman/orders?problem={quote(text)}", request)
