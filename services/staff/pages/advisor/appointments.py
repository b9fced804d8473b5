"""Moving a booked appointment from the advisor's day: a new time, a cancellation, a
no-show (reception's moves, each with the appointment's version as If-Match)."""

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import Answer
from services.staff.i18n import field_errors, problem_text
from services.staff.pages.advisor import labels as _labels  # noqa: F401  (joins the catalog)
from services.staff.web import Form, Viewer, needs, redirect, render

Advisor = Annotated[Viewer, Depends(needs("advisor", "manager"))]

_MOVES = {"cancel": "appointment_cancelled", "no-show": "appointment_no_show"}


def install(app: FastAPI) -> None:
    route = app.add_api_route
    path = "/advisor/appointments/{appointment_id}"
    route(f"{path}/reschedule", reschedule_form, methods=["GET"], include_in_schema=False)
    route(f"{path}/reschedule", reschedule, methods=["POST"], include_in_schema=False)
    route(f"{path}/cancel", cancel, methods=["POST"], include_in_schema=False)
    route(f"{path}/no-show", no_show, methods=["POST"], include_in_schema=False)


def closed_day(
    seen: Viewer, answer: Answer, typed: str, errors: dict[str, str]
) -> list[dict[str, str]]:
    """Reception's refusal of a closed day (422 naming `starts_at`, with the next open days
    that have room): said at the field in the user's words; returns the days to offer."""
    problem = answer.problem or {}
    if answer.status != 422 or "starts_at" not in errors or "next_free_days" not in problem:
        return []
    t = seen.t
    day = typed[:10] or "—"
    errors["starts_at"] = t["closed_day"].format(day=day) + " " + t["closed_day_pick"]
    slots: list[dict[str, str]] = problem.get("next_free_slots") or [
        {"day": d} for d in problem["next_free_days"]
    ]
    return slots


def _local_input(seen: Viewer, value: str | None) -> str:
    moment = seen.local(value)
    return moment.strftime("%Y-%m-%dT%H:%M") if moment else ""


async def reschedule_form(request: Request, appointment_id: str, seen: Advisor) -> Response:
    answer = await seen.api.get("reception", f"/appointments/{appointment_id}")
    appointment = answer.body if answer.ok else {"id": appointment_id, "version": ""}
    values = {"starts_at": _local_input(seen, appointment.get("starts_at"))}
    return _form(request, seen, appointment, values, {})


def _form(
    request: Request,
    seen: Viewer,
    appointment: dict[str, Any],
    values: dict[str, str],
    errors: dict[str, str],
    message: str | None = None,
    status_code: int = 200,
    free: list[dict[str, str]] | None = None,
) -> Response:
    return render(
        request,
        "_reschedule_form.html",
        lang=seen.lang,
        viewer=seen,
        appointment=appointment,
        values=values,
        errors=errors,
        message=message,
        free=free or [],
        status_code=status_code,
    )


async def reschedule(request: Request, appointment_id: str, seen: Advisor, form: Form) -> Response:
    """The new time is the branch's clock, as the advisor reads it off the wall."""
    typed = form.get("starts_at", "").strip()
    try:
        starts: str = datetime.fromisoformat(typed).replace(tzinfo=seen.tz).isoformat()
    except ValueError:
        starts = typed  # reception names the field
    answer = await seen.api.call(
        "reception",
        "POST",
        f"/appointments/{appointment_id}/reschedule",
        json={"starts_at": starts},
        if_match=f'"{form.get("version", "")}"',
    )
    if answer.ok:
        moved = seen.local(answer.body["starts_at"])
        assert moved is not None
        note = seen.t["appointment_moved"].format(when=moved.strftime("%Y-%m-%d %H:%M"))
        return redirect(f"/advisor?day={moved.date().isoformat()}&note={quote(note)}", request)
    errors = field_errors(answer, seen.lang)
    free = closed_day(seen, answer, typed, errors)
    message = None if errors.get("starts_at") else problem_text(answer, seen.lang)
    appointment = {"id": appointment_id, "version": form.get("version", "")}
    return _form(request, seen, appointment, form, errors, message, status_code=422, free=free)


async def _close(
    request: Request, appointment_id: str, seen: Viewer, form: dict[str, str], move: str
) -> Response:
    answer = await seen.api.call(
        "reception",
        "POST",
        f"/appointments/{appointment_id}/{move}",
        if_match=f'"{form.get("version", "")}"',
    )
    day = form.get("day", "")
    if answer.ok:
        note = seen.t[_MOVES[move]]
        return redirect(f"/advisor?day={day}&note={quote(note)}", request)
    problem = problem_text(answer, seen.lang)
    return redirect(f"/advisor?day={day}&problem={quote(problem)}", request)


async def cancel(request: Request, appointment_id: str, seen: Advisor, form: Form) -> Response:
    return await _close(request, appointment_id, seen, form, "cancel")


async def no_show(request: Request, appointment_id: str, seen: Advisor, form: Form) -> Response:
    return await _close(request, appointment_id, seen, form, "no-show")
