"""The advisor's desk: search by plate, VIN tail, phone or name; register a customer and
a vehicle (the VIN checked as it is typed); a vehicle's page to book it or take it in."""

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import gather, page_items
from services.staff.i18n import field_errors, labels, problem_text, say
from services.staff.pages.advisor.appointments import closed_day
from services.staff.web import Form, Viewer, needs, redirect, render

Advisor = Annotated[Viewer, Depends(needs("advisor", "manager"))]
SEARCH_KINDS = ("plate", "vin_last6", "phone", "name")


def install(app: FastAPI) -> None:
    routes: list[tuple[str, Callable[..., Any], str]] = [
        ("/advisor/desk", desk, "GET"),
        ("/advisor/desk/results", results, "GET"),
        ("/advisor/register", register_page, "GET"),
        ("/advisor/register", register, "POST"),
        ("/advisor/vin-check", vin_check, "GET"),
        ("/advisor/vehicles/{vehicle_id}", vehicle_page, "GET"),
        ("/advisor/vehicles/{vehicle_id}/book", book, "POST"),
        ("/advisor/vehicles/{vehicle_id}/walk-in", walk_in, "POST"),
    ]
    for path, endpoint, method in routes:
        app.add_api_route(path, endpoint, methods=[method], include_in_schema=False)


def guess_kind(text: str) -> str:
    """What the advisor typed: a phone number, a VIN's last six, a name or a plate."""
    if re.fullmatch(r"[0-9]{6}", text):
        return "vin_last6"  # a VIN's tail is mostly digits; no phone number is six long
    if re.fullmatch(r"\+?[0-9][0-9 -]{6,}", text):
        return "phone"
    if any("\u4e00" <= c <= "\u9fff" for c in text) and not any(c.isdigit() for c in text):
        return "name"
    if re.fullmatch(r"[A-Za-z .'-]+", text):
        return "name"
    return "plate"


async def _search(seen: Viewer, q: str, kind: str) -> tuple[list[dict[str, Any]], str | None]:
    if not q:
        return [], None
    kind = kind if kind in SEARCH_KINDS else guess_kind(q)
    answer = await seen.api.get("reception", "/search", **{kind: q}, limit=50)
    if not answer.ok:
        errors = field_errors(answer, seen.lang)
        return [], errors.get(kind) or problem_text(answer, seen.lang)
    return page_items(answer.body), None


async def desk(request: Request, seen: Advisor, q: str = "", kind: str = "") -> Response:
    hits, problem = await _search(seen, q.strip(), kind)
    return render(
        request,
        "desk.html",
        lang=seen.lang,
        viewer=seen,
        q=q,
        kind=kind,
        hits=hits,
        problem=problem,
        kinds=SEARCH_KINDS,
        nav="desk",
    )


async def results(request: Request, seen: Advisor, q: str = "", kind: str = "") -> Response:
    hits, problem = await _search(seen, q.strip(), kind)
    return render(
        request,
        "_desk_results.html",
        lang=seen.lang,
        viewer=seen,
        q=q,
        hits=hits,
        problem=problem,
    )


async def register_page(request: Request, seen: Advisor) -> Response:
    return render(
        request,
        "register.html",
        lang=seen.lang,
        viewer=seen,
        values={},
        errors={},
        nav="register",
    )


async def vin_check(request: Request, seen: Advisor, vin: str = "") -> Response:
    vin = vin.strip().upper()
    if len(vin) < 17:
        state: dict[str, Any] = {"pending": len(vin)}
    else:
        answer = await seen.api.get("reception", f"/vins/{vin}")
        if answer.ok:
            state = {"ok": answer.body}
        else:
            errors = field_errors(answer, seen.lang)
            state = {"error": errors.get("vin") or problem_text(answer, seen.lang)}
    return render(request, "_vin_check.html", lang=seen.lang, viewer=seen, state=state)


async def register(request: Request, seen: Advisor, form: Form) -> Response:
    """Register the customer, then the vehicle; a retry of the same form sends the same
    keys, and a customer already made by an earlier try is not made again."""
    errors: dict[str, str] = {}
    values = dict(form)
    message = None
    customer_id = form.get("customer_id") or ""
    if not customer_id:
        customer = {
            "name": form.get("name", ""),
            "mobile": form.get("mobile") or None,
            "language": form.get("language") or "zh-CN",
        }
        answer = await seen.api.call(
            "reception",
            "POST",
            "/customers",
            json=customer,
            idempotency_key=form.get("customer_key"),
        )
        if not answer.ok:
            errors = field_errors(answer, seen.lang)
            message = None if errors else problem_text(answer, seen.lang)
        else:
            customer_id = answer.body["id"]
            values["customer_id"] = customer_id
    if customer_id and not errors and message is None:
        vehicle = {
            "customer_id": customer_id,
            "vin": form.get("vin", ""),
            "plate": form.get("plate") or None,
            "model": form.get("model") or None,
            "colour": form.get("colour") or None,
        }
        answer = await seen.api.call(
            "reception",
            "POST",
            "/vehicles",
            json=vehicle,
            idempotency_key=form.get("vehicle_key"),
        )
        if answer.ok:
            return redirect(f"/advisor/vehicles/{answer.body['id']}", request)
        errors = field_errors(answer, seen.lang)
        if answer.status == 409:
            errors["vin"] = say(str((answer.problem or {}).get("detail", "")), seen.lang)
        message = None if errors else problem_text(answer, seen.lang)
    return render(
        request,
        "register.html",
        lang=seen.lang,
        viewer=seen,
        values=values,
        errors=errors,
        message=message,
        nav="register",
        status_code=422,
    )


async def _vehicle_view(seen: Viewer, vehicle_id: str) -> dict[str, Any] | None:
    vehicle = await seen.api.get("reception", f"/vehicles/{vehicle_id}")
    if not vehicle.ok:
        return None
    customer, readings = await gather(
        seen.api.get("reception", f"/customers/{vehicle.body['customer_id']}"),
        seen.api.get("reception", f"/vehicles/{vehicle_id}/odometer", limit=1),
    )
    last = page_items(readings.body)[0] if readings.ok and page_items(readings.body) else None
    return {"vehicle": vehicle.body, "customer": customer.body, "last_km": last and last["km"]}


async def vehicle_page(request: Request, vehicle_id: str, seen: Advisor) -> Response:
    view = await _vehicle_view(seen, vehicle_id)
    if view is None:
        return render(
            request,
            "error.html",
            lang=seen.lang,
            viewer=seen,
            status_code=404,
            message_key="not_found",
            fmt={},
        )
    return render(
        request,
        "vehicle.html",
        lang=seen.lang,
        viewer=seen,
        **view,
        book={},
        walk={},
        nav="desk",
    )


def _concerns(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


async def book(request: Request, vehicle_id: str, seen: Advisor, form: Form) -> Response:
    starts_text = form.get("starts_at", "")
    try:
        starts = datetime.fromisoformat(starts_text).replace(tzinfo=seen.tz).isoformat()
    except ValueError:
        starts = starts_text
    body = {
        "vehicle_id": vehicle_id,
        "starts_at": starts,
        "planned_hours": form.get("planned_hours") or None,
        "concerns": _concerns(form.get("concerns", "")),
    }
    answer = await seen.api.call(
        "reception",
        "POST",
        "/appointments",
        json=body,
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return redirect(f"/advisor?day={answer.body['day']}", request)
    errors = field_errors(answer, seen.lang)
    free = closed_day(seen, answer, starts_text, errors)
    free = free or (answer.problem or {}).get("next_free_slots") or []
    message = None
    if answer.status == 409:
        message = labels(seen.lang)["over_booked"]
    elif not errors:
        message = problem_text(answer, seen.lang)
    return render(
        request,
        "_book_form.html",
        lang=seen.lang,
        viewer=seen,
        vehicle={"id": vehicle_id},
        book={"values": form, "errors": errors, "message": message, "free": free},
        status_code=answer.status if answer.status in (409, 422) else 422,
    )


async def walk_in(request: Request, vehicle_id: str, seen: Advisor, form: Form) -> Response:
    odometer = form.get("odometer_km", "").strip()
    body: dict[str, Any] = {
        "vehicle_id": vehicle_id,
        "odometer_km": int(odometer) if odometer.isdigit() else odometer,
        "concerns": _concerns(form.get("concerns", "")),
    }
    if form.get("odometer_override_reason"):
        body["odometer_override_reason"] = form["odometer_override_reason"]
    answer = await seen.api.call(
        "reception", "POST", "/intakes", json=body, idempotency_key=form.get("idempotency_key")
    )
    if answer.ok:
        return redirect(f"/advisor/intakes/{answer.body['id']}", request)
    errors = field_errors(answer, seen.lang)
    return render(
        request,
        "_walk_in_form.html",
        lang=seen.lang,
        viewer=seen,
        vehicle={"id": vehicle_id},
        walk={
            "values": form,
            "errors": errors,
            "message": None if errors else problem_text(answer, seen.lang),
        },
        status_code=answer.status if answer.status in (409, 422) else 422,
    )
