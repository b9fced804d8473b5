"""The service advisor's pages: the day's appointments and arrivals, checking a car in."""

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import gather, page_items
from services.staff.i18n import field_errors, problem_text
from services.staff.web import Form, Viewer, needs, redirect, render

Advisor = Annotated[Viewer, Depends(needs("advisor", "manager"))]


def install(app: FastAPI) -> None:
    app.add_api_route("/advisor", today, methods=["GET"], include_in_schema=False)
    app.add_api_route("/advisor/day", day_part, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        "/advisor/appointments/{appointment_id}/arrive",
        arrive_form,
        methods=["GET"],
        include_in_schema=False,
    )
    app.add_api_route(
        "/advisor/appointments/{appointment_id}/arrive",
        arrive,
        methods=["POST"],
        include_in_schema=False,
    )


async def _by_id(seen: Viewer, path: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Objects read one by one, in parallel (the page's few vehicles and customers)."""
    ordered = sorted(ids)
    answers = await gather(*(seen.api.get("reception", f"{path}/{i}") for i in ordered))
    return {i: a.body for i, a in zip(ordered, answers, strict=True) if a.ok}


def _row(seen: Viewer, item: dict[str, Any]) -> dict[str, Any]:
    starts = seen.local(item["starts_at"])
    return {
        "id": item["id"],
        "time": starts.strftime("%H:%M") if starts else "",
        "plate": item.get("plate") or (item.get("vin") or "")[-6:],
        "model": " ".join(x for x in (item.get("make"), item.get("model")) if x),
        "customer": item.get("customer_name") or "",
        "mobile": item.get("customer_mobile") or "",
        "concerns": item.get("concerns") or [],
        "planned_hours": item.get("planned_hours"),
        "status": item["status"],
        "version": item.get("version", 1),
        "vehicle_id": item["vehicle_id"],
    }


async def _rows(seen: Viewer, day: date) -> tuple[list[dict[str, Any]], str | None]:
    # One request: reception lists each appointment with its car and customer.
    answer = await seen.api.get("reception", "/appointments", day=day.isoformat(), limit=200)
    if not answer.ok:
        return [], problem_text(answer, seen.lang)
    return [_row(seen, item) for item in page_items(answer.body)], None


async def _day(seen: Viewer, shown: date) -> dict[str, Any]:
    rows, problem = await _rows(seen, shown)
    counts = {
        "booked_count": len([r for r in rows if r["status"] in ("booked", "arrived")]),
        "arrived_count": len([r for r in rows if r["status"] == "arrived"]),
        "waiting_count": len([r for r in rows if r["status"] == "booked"]),
    }
    return {"day": shown, "rows": rows, "counts": counts, "problem": problem}


async def today(request: Request, seen: Advisor, day: date | None = None) -> Response:
    shown = day or seen.today()
    return render(
        request,
        "today.html",
        lang=seen.lang,
        viewer=seen,
        **await _day(seen, shown),
        is_today=shown == seen.today(),
        prev_day=shown - timedelta(days=1),
        next_day=shown + timedelta(days=1),
        nav="today",
    )


async def day_part(request: Request, seen: Advisor, day: date | None = None) -> Response:
    """The day's counts and list again, as the live feed asks (an open form is kept by
    the page: its cell is `hx-preserve`)."""
    return render(
        request, "_day.html", lang=seen.lang, viewer=seen, **await _day(seen, day or seen.today())
    )


async def arrive_form(request: Request, appointment_id: str, seen: Advisor) -> Response:
    answer = await seen.api.get("reception", f"/appointments/{appointment_id}")
    return render(
        request,
        "_arrive_form.html",
        lang=seen.lang,
        viewer=seen,
        appointment=answer.body,
        values={},
        errors={},
    )


async def arrive(request: Request, appointment_id: str, seen: Advisor, form: Form) -> Response:
    """Check the car in: an intake opened from the appointment marks it arrived."""
    appointment = await seen.api.get("reception", f"/appointments/{appointment_id}")
    odometer = form.get("odometer_km", "").strip()
    body: dict[str, Any] = {
        "vehicle_id": appointment.body["vehicle_id"],
        "appointment_id": appointment_id,
        "odometer_km": int(odometer) if odometer.isdigit() else odometer,
    }
    if form.get("odometer_override_reason"):
        body["odometer_override_reason"] = form["odometer_override_reason"]
    answer = await seen.api.call(
        "reception", "POST", "/intakes", json=body, idempotency_key=form.get("idempotency_key")
    )
    if answer.ok:
        return redirect(f"/advisor/intakes/{answer.body['id']}", request)
    errors = field_errors(answer, seen.lang)
    message = None if errors else problem_text(answer, seen.lang)
    return render(
        request,
        "_arrive_form.html",
        lang=seen.lang,
        viewer=seen,
        appointment=appointment.body,
        values=form,
        errors=errors,
        message=message,
        status_code=answer.status if answer.status in (409, 422) else 422,
    )
