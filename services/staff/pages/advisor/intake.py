"""The walk-around (环车检查) of an intake, with the customer at the car: damage marks
tapped on a car outline, a photo per mark from the tablet's camera, fuel or charge level,
the checklist, the valuables reminder, concerns in the customer's words and the
customer's signature on the screen. Photos and the signature are kept by records; the
intake is changed with its ETag, and a 412 shows what someone else changed."""

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from services.staff.api import Answer, Api, gather
from services.staff.i18n import field_errors, labels, problem_text
from services.staff.web import Form, Viewer, needs, redirect, render

Advisor = Annotated[Viewer, Depends(needs("advisor", "manager"))]

CHECKLIST = (
    "lights",
    "tyre_front_left",
    "tyre_front_right",
    "tyre_rear_left",
    "tyre_rear_right",
    "spare_tyre",
    "wipers",
    "battery",
    "engine_oil",
    "coolant",
    "brake_fluid",
    "washer_fluid",
    "windscreen",
    "horn",
)
STATES = ("ok", "attention", "urgent")
KINDS = ("scratch", "dent", "crack", "chip", "other")
# The car outline's tap zones (top view, front up): position name and its rectangle.
ZONES: tuple[tuple[str, int, int, int, int], ...] = (
    ("front_bumper", 60, 8, 120, 33),
    ("bonnet", 60, 45, 120, 70),
    ("windscreen", 60, 117, 120, 31),
    ("roof", 60, 150, 120, 84),
    ("rear_window", 60, 238, 120, 32),
    ("boot", 60, 274, 120, 56),
    ("rear_bumper", 60, 334, 120, 32),
    ("front_left_wing", 10, 45, 46, 70),
    ("front_left_door", 10, 120, 46, 80),
    ("rear_left_door", 10, 204, 46, 80),
    ("rear_left_wing", 10, 288, 46, 70),
    ("front_right_wing", 184, 45, 46, 70),
    ("front_right_door", 184, 120, 46, 80),
    ("rear_right_door", 184, 204, 46, 80),
    ("rear_right_wing", 184, 288, 46, 70),
)
SEEN_FIELDS = (
    "fuel_level_pct",
    "charge_level_pct",
    "checklist",
    "damage_marks",
    "concerns",
    "valuables_acknowledged_at",
    "signature_file_id",
    "status",
)


def install(app: FastAPI) -> None:
    routes: list[tuple[str, Callable[..., Any], str]] = [
        ("/advisor/intakes/{intake_id}", page, "GET"),
        ("/advisor/intakes/{intake_id}/walkaround", save, "POST"),
        ("/advisor/intakes/{intake_id}/complete", complete, "POST"),
        ("/advisor/files/{file_id}", file_proxy, "GET"),
        ("/advisor/print/intakes/{intake_id}/sheet.pdf", intake_sheet, "GET"),
        ("/advisor/print/estimates/{estimate_id}/estimate.pdf", estimate_pdf, "GET"),
    ]
    for path, endpoint, method in routes:
        app.add_api_route(path, endpoint, methods=[method], include_in_schema=False)


def _seen(intake: dict[str, Any]) -> str:
    """What the page showed, carried in the form, so a 412 can say what changed."""
    kept = {k: intake.get(k) for k in SEEN_FIELDS}
    return base64.urlsafe_b64encode(json.dumps(kept, ensure_ascii=False).encode()).decode()


def _unseen(value: str) -> dict[str, Any]:
    try:
        return dict(json.loads(base64.urlsafe_b64decode(value.encode())))
    except (ValueError, binascii.Error):
        return {}


def _values_of(intake: dict[str, Any]) -> dict[str, Any]:
    """The form's fields for an intake as the service has it."""
    return {
        "fuel_level_pct": intake.get("fuel_level_pct"),
        "charge_level_pct": intake.get("charge_level_pct"),
        "checklist": {c["item"]: c for c in intake.get("checklist") or []},
        "damage_marks": list(intake.get("damage_marks") or []),
        "concerns": "\n".join(intake.get("concerns") or []),
        "valuables": bool(intake.get("valuables_acknowledged_at")),
        "signature_file_id": intake.get("signature_file_id"),
    }


def _values_from(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields as the advisor left them."""
    marks = []
    for i in range(int(form.get("marks", "0") or 0)):
        if form.get(f"mark_{i}_remove"):
            continue
        mark = {
            "position": form.get(f"mark_{i}_position", ""),
            "kind": form.get(f"mark_{i}_kind", "scratch"),
            "note": form.get(f"mark_{i}_note", ""),
            "photo_file_id": form.get(f"mark_{i}_photo_file_id") or None,
        }
        marks.append(mark)
    if form.get("add_mark"):
        marks.append(
            {"position": form["add_mark"], "kind": "scratch", "note": "", "photo_file_id": None}
        )
    checklist = {}
    for item in CHECKLIST:
        state = form.get(f"check_{item}")
        if state in STATES:
            checklist[item] = {"item": item, "state": state, "note": form.get(f"note_{item}", "")}
    return {
        "fuel_level_pct": _int(form.get("fuel_level_pct")),
        "charge_level_pct": _int(form.get("charge_level_pct")),
        "checklist": checklist,
        "damage_marks": marks,
        "concerns": form.get("concerns", ""),
        "valuables": form.get("valuables") == "on",
        "signature_file_id": form.get("signature_file_id") or None,
    }


def _mark(mark: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in mark.items() if v not in (None, "")}
    return kept | {"note": mark.get("note") or ""}


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


async def _context(seen: Viewer, intake: dict[str, Any]) -> dict[str, Any]:
    vehicle, customer = await gather(
        seen.api.get("reception", f"/vehicles/{intake['vehicle_id']}"),
        seen.api.get("reception", f"/customers/{intake['customer_id']}"),
    )
    return {
        "intake": intake,
        "vehicle": vehicle.body,
        "customer": customer.body,
        "opened": seen.local(intake["opened_at"]),
        "checklist_items": CHECKLIST,
        "states": STATES,
        "kinds": KINDS,
        "zones": ZONES,
        "seen": _seen(intake),
        "nav": "today",
    }


async def page(request: Request, intake_id: str, seen: Advisor) -> Response:
    answer = await seen.api.get("reception", f"/intakes/{intake_id}")
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
    context = await _context(seen, answer.body)
    return render(
        request,
        "intake.html",
        lang=seen.lang,
        viewer=seen,
        values=_values_of(answer.body),
        errors={},
        etag=answer.etag,
        **context,
    )


async def _keep(api: Api, upload: UploadFile | None, data: bytes | None, name: str) -> Answer:
    """A photo or a signature, handed to records; its id goes on the intake."""
    content = data if data is not None else await upload.read() if upload else b""
    filename = name if data is not None else (upload.filename if upload else name) or name
    content_type = "image/png" if data is not None else (upload.content_type if upload else "")
    return await api.call(
        "records", "POST", "/files", files={"file": (filename, content, content_type)}
    )


async def save(request: Request, intake_id: str, seen: Advisor, form: Form) -> Response:
    values = _values_from(form)
    raw = await request.form()
    uploads: list[Any] = []
    for i, mark in enumerate(values["damage_marks"]):
        upload = raw.get(f"mark_{i}_photo")
        if isinstance(upload, UploadFile) and upload.filename:
            uploads.append((mark, "photo_file_id", _keep(seen.api, upload, None, "photo.jpg")))
    signature = form.get("signature_png", "")
    if signature.startswith("data:image/png;base64,"):
        png = base64.b64decode(signature.split(",", 1)[1])
        uploads.append((values, "signature_file_id", _keep(seen.api, None, png, "signature.png")))
    kept = await gather(*(call for _, _, call in uploads))
    errors: dict[str, str] = {}
    for (target, key, _), answer in zip(uploads, kept, strict=True):
        if answer.ok:
            target[key] = answer.body["id"]
        else:
            errors["photos" if key == "photo_file_id" else "signature"] = problem_text(
                answer, seen.lang
            )
    body: dict[str, Any] = {
        "checklist": list(values["checklist"].values()),
        "damage_marks": [_mark(m) for m in values["damage_marks"]],
        "concerns": [c.strip() for c in values["concerns"].splitlines() if c.strip()],
        "valuables_acknowledged": values["valuables"],
    }
    for level in ("fuel_level_pct", "charge_level_pct"):
        if values[level] is not None:
            body[level] = values[level]
    if values["signature_file_id"]:
        body["signature_file_id"] = values["signature_file_id"]
    answer = await seen.api.call(
        "reception", "PATCH", f"/intakes/{intake_id}", json=body, if_match=form.get("etag")
    )
    message = None
    changes: list[str] = []
    current = answer.body if answer.ok else None
    etag = answer.etag
    if answer.status == 412:
        fresh = await seen.api.get("reception", f"/intakes/{intake_id}")
        current, etag = fresh.body, fresh.etag
        changes = _changes(_unseen(form.get("seen", "")), current, seen.lang)
    elif not answer.ok:
        errors.update(field_errors(answer, seen.lang))
        message = None if errors else problem_text(answer, seen.lang)
        fresh = await seen.api.get("reception", f"/intakes/{intake_id}")
        current, etag = fresh.body, form.get("etag")
    assert current is not None
    context = await _context(seen, current)
    if answer.status == 412:
        # What someone else saved is shown; the advisor's entries stay in the form to
        # save again over it.
        context["seen"] = _seen(current)
    shown = _values_of(current) if answer.ok else values
    return render(
        request,
        "_walkaround.html",
        lang=seen.lang,
        viewer=seen,
        values=shown,
        errors=errors,
        message=message,
        changes=changes,
        etag=etag,
        saved=answer.ok,
        **context,
        status_code=200 if answer.ok else (412 if answer.status == 412 else 422),
    )


def _changes(before: dict[str, Any], now: dict[str, Any], lang: str) -> list[str]:
    t = labels(lang)
    said = []
    for key in SEEN_FIELDS:
        if before.get(key) != now.get(key):
            value = now.get(key)
            if key == "damage_marks":
                value = "、".join(
                    f"{t.get('zone_' + m['position'], m['position'])}" for m in value or []
                )
            elif key == "checklist":
                value = "、".join(
                    f"{t.get('item_' + c['item'], c['item'])} "
                    f"{t.get('state_' + c['state'], c['state'])}"
                    for c in value or []
                )
            elif key == "concerns":
                value = "；".join(value or [])
            elif key in ("fuel_level_pct", "charge_level_pct") and value is not None:
                value = f"{value}%"
            said.append(t["changed_field"].format(field=t.get("f_" + key, key), now=value or "—"))
    return said


async def complete(request: Request, intake_id: str, seen: Advisor, form: Form) -> Response:
    answer = await seen.api.call(
        "reception", "POST", f"/intakes/{intake_id}/complete", if_match=form.get("etag")
    )
    if answer.ok:
        return redirect(f"/advisor/intakes/{intake_id}", request)
    return render(
        request,
        "error_fragment.html",
        lang=seen.lang,
        viewer=seen,
        message_key="error_generic",
        fmt={"detail": problem_text(answer, seen.lang)},
        status_code=422,
        headers={"HX-Retarget": "#complete-message", "HX-Reswap": "innerHTML"},
    )


async def file_proxy(request: Request, file_id: str, seen: Advisor) -> Response:
    """A photo records keeps, shown on the page with the user's token."""
    http = request.app.state.http
    response = await http.get(
        f"{request.app.state.api_bases['records']}/files/{file_id}/content",
        headers={"Authorization": f"Bearer {seen.session.token}"},
    )
    return Response(
        response.content,
        status_code=response.status_code,
        media_type=response.headers.get("content-type", "application/octet-stream"),
        headers={"Cache-Control": "private, max-age=3600"},
    )


async def _pdf(request: Request, seen: Viewer, service: str, path: str) -> Response:
    """A service's printed document, fetched with the user's token, in the page's
    language unless the link names one."""
    lang = request.query_params.get("lang") or seen.lang
    http = request.app.state.http
    response = await http.get(
        f"{request.app.state.api_bases[service]}{path}",
        params={"lang": lang},
        headers={"Authorization": f"Bearer {seen.session.token}"},
    )
    if response.status_code != 200:
        return render(
            request,
            "error.html",
            lang=seen.lang,
            viewer=seen,
            status_code=404,
            message_key="not_found",
            fmt={},
        )
    return Response(
        response.content,
        media_type="application/pdf",
        headers={"Content-Disposition": "inline", "Cache-Control": "private, no-store"},
    )


async def intake_sheet(request: Request, intake_id: str, seen: Advisor) -> Response:
    return await _pdf(request, seen, "reception", f"/intakes/{intake_id}/sheet.pdf")


async def estimate_pdf(request: Request, estimate_id: str, seen: Advisor) -> Response:
    return await _pdf(request, seen, "reception", f"/estimates/{estimate_id}/estimate.pdf")
