"""The advisor's at-risk list: open repair orders projected to miss their promise, with the
projected finish, and recording the call and the new promise. The list follows the
workshop live: on each `changed` event of the staff app's `/live` feed the page reloads
its list."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import page_items
from services.staff.i18n import field_errors, problem_text
from services.staff.web import Form, Viewer, needs, render

Advisor = Annotated[Viewer, Depends(needs("advisor", "manager"))]


def install(app: FastAPI) -> None:
    routes: list[tuple[str, Callable[..., Any], str]] = [
        ("/advisor/at-risk", page, "GET"),
        ("/advisor/at-risk/list", listing, "GET"),
        ("/advisor/repair-orders/{order_id}/promise", new_promise, "POST"),
    ]
    for path, endpoint, method in routes:
        app.add_api_route(path, endpoint, methods=[method], include_in_schema=False)


def _row(seen: Viewer, order: dict[str, Any]) -> dict[str, Any]:
    promised = seen.local(order.get("promised_at"))
    projected = seen.local(order.get("projected_finish_at"))
    suggestion = None
    if projected:
        # The projection rounded up to the next quarter hour, as one would promise it.
        minutes = (15 - projected.minute % 15) % 15
        suggestion = (projected + timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    late = int((projected - promised).total_seconds() // 60) if projected and promised else None
    return {
        "order": order,
        "promised": promised,
        "projected": projected,
        "late_minutes": late,
        "suggestion": suggestion,
        "told": seen.local(order.get("customer_told_at")),
    }


async def _rows(seen: Viewer) -> tuple[list[dict[str, Any]], str | None]:
    answer = await seen.api.get("workorders", "/repair-orders/at-risk", limit=50)
    if not answer.ok:
        return [], problem_text(answer, seen.lang)
    return [_row(seen, o) for o in page_items(answer.body)], None


async def page(request: Request, seen: Advisor) -> Response:
    rows, problem = await _rows(seen)
    return render(
        request,
        "at_risk.html",
        lang=seen.lang,
        viewer=seen,
        rows=rows,
        problem=problem,
        nav="at_risk",
        forms={},
    )


async def listing(request: Request, seen: Advisor) -> Response:
    rows, problem = await _rows(seen)
    return render(
        request,
        "_at_risk_list.html",
        lang=seen.lang,
        viewer=seen,
        rows=rows,
        problem=problem,
        forms={},
    )


async def new_promise(request: Request, order_id: str, seen: Advisor, form: Form) -> Response:
    text = form.get("promised_at", "")
    try:
        promised: str = datetime.fromisoformat(text).replace(tzinfo=seen.tz).isoformat()
    except ValueError:
        promised = text
    body = {"promised_at": promised, "told_at": datetime.now(seen.tz).isoformat()}
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/repair-orders/{order_id}/promise",
        json=body,
        idempotency_key=form.get("idempotency_key"),
        if_match=form.get("etag"),
    )
    rows, problem = await _rows(seen)
    forms = {}
    if not answer.ok:
        errors = field_errors(answer, seen.lang)
        forms[order_id] = {
            "values": form,
            "errors": errors,
            "message": None if errors else problem_text(answer, seen.lang),
        }
    return render(
        request,
        "_at_risk_list.html",
        lang=seen.lang,
        viewer=seen,
        rows=rows,
        problem=problem,
        forms=forms,
        recorded=answer.ok,
    )
