"""The foreman's dispatch (派工): the day's jobs per technician and per bay, what is not
dispatched yet, and dispatching or reassigning a job with its ETag. The day follows the
workshop live (the board's stream, relayed)."""

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import gather
from services.staff.i18n import field_errors, problem_text
from services.staff.web import Form, Viewer, needs, render, settings_of

Foreman = Annotated[Viewer, Depends(needs("foreman", "manager"))]


def install(app: FastAPI) -> None:
    routes: list[tuple[str, Callable[..., Any], str]] = [
        ("/foreman", page, "GET"),
        ("/foreman/day", day_fragment, "GET"),
        ("/foreman/jobs/{job_id}/assignment", assign, "POST"),
    ]
    for path, endpoint, method in routes:
        app.add_api_route(path, endpoint, methods=[method], include_in_schema=False)


async def _day(request: Request, seen: Viewer, on: date | None) -> dict[str, Any]:
    shown = on or seen.today()
    answer = await seen.api.get("workorders", "/dispatch/day", on=shown.isoformat())
    if not answer.ok:
        return {"on": shown, "problem": problem_text(answer, seen.lang), "board": None}
    board = answer.body
    jobs = [j for lane in board["technicians"] for j in lane["jobs"]] + board["unassigned"]
    order_ids = sorted({j["repair_order_id"] for j in jobs})
    orders = await gather(*(seen.api.get("workorders", f"/repair-orders/{i}") for i in order_ids))
    cars = {i: o.body for i, o in zip(order_ids, orders, strict=True) if o.ok}
    technicians = sorted(
        {lane["key"] for lane in board["technicians"]}
        | {s.sub for s in settings_of(request).demo_staff if s.role == "technician"}
    )
    names = {s.sub: s.name for s in settings_of(request).demo_staff}
    return {
        "on": shown,
        "board": board,
        "cars": cars,
        "technicians": technicians,
        "names": names,
        "problem": None,
    }


async def page(request: Request, seen: Foreman, on: date | None = None) -> Response:
    context = await _day(request, seen, on)
    return render(request, "foreman.html", lang=seen.lang, viewer=seen, forms={}, **context)


async def day_fragment(request: Request, seen: Foreman, on: date | None = None) -> Response:
    context = await _day(request, seen, on)
    return render(request, "_dispatch.html", lang=seen.lang, viewer=seen, forms={}, **context)


async def assign(request: Request, job_id: str, seen: Foreman, form: Form) -> Response:
    body: dict[str, Any] = {
        "technician_id": form.get("technician_id", ""),
        "bay": form.get("bay", ""),
    }
    if form.get("planned_start_at"):
        try:
            planned = datetime.fromisoformat(form["planned_start_at"]).replace(tzinfo=seen.tz)
            body["planned_start_at"] = planned.isoformat()
        except ValueError:
            body["planned_start_at"] = form["planned_start_at"]
    answer = await seen.api.call(
        "workorders", "PUT", f"/jobs/{job_id}/assignment", json=body, if_match=form.get("etag")
    )
    on = date.fromisoformat(form["on"]) if form.get("on") else None
    context = await _day(request, seen, on)
    forms = {}
    if not answer.ok:
        errors = field_errors(answer, seen.lang)
        forms[job_id] = {
            "values": form,
            "errors": errors,
            "message": None if errors else problem_text(answer, seen.lang),
        }
    return render(
        request,
        "_dispatch.html",
        lang=seen.lang,
        viewer=seen,
        forms=forms,
        assigned=job_id if answer.ok else None,
        **context,
    )
