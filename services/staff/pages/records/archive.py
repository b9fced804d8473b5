"""The archive (档案): a vehicle found by its VIN, its history and the printed history
(PDF, Chinese or English), its owner's file; the customer's data exported, and erased on
their request after a confirmation step that says what will go."""

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.staff.api import Answer, page_items
from services.staff.pages.records.common import Desk, download, refused
from services.staff.web import Form, Viewer, render

CHANNELS = ("in_person", "letter", "email", "phone", "app")
# What a timeline row shows of an entry's summary: the few fields that say what happened.
_SHOWN = (
    "number",
    "plate",
    "vin",
    "name",
    "odometer_km",
    "concerns",
    "findings",
    "outcome",
    "invoice_number",
    "gross_total",
    "severity",
    "overall",
    "reason",
)


def install(app: FastAPI) -> None:
    route = app.add_api_route
    route("/records/archive", find, methods=["GET"], include_in_schema=False)
    route(
        "/records/archive/vehicles/{vehicle_id}", vehicle, methods=["GET"], include_in_schema=False
    )
    route(
        "/records/archive/vehicles/{vehicle_id}/history.pdf",
        history_pdf,
        methods=["GET"],
        include_in_schema=False,
    )
    route(
        "/records/archive/customers/{customer_id}",
        customer,
        methods=["GET"],
        include_in_schema=False,
    )
    route(
        "/records/archive/customers/{customer_id}/export.json",
        export,
        methods=["GET"],
        include_in_schema=False,
    )
    route(
        "/records/archive/customers/{customer_id}/erasure",
        erasure_check,
        methods=["POST"],
        include_in_schema=False,
    )
    route(
        "/records/archive/customers/{customer_id}/erasure/confirm",
        erasure_confirm,
        methods=["POST"],
        include_in_schema=False,
    )


def _said(value: Any) -> str:
    if isinstance(value, list):
        return "、".join(_said(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _entries(seen: Viewer, body: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for entry in body.get("entries") or []:
        summary = entry.get("summary") or {}
        rows.append(
            {
                **entry,
                "at": seen.local(entry.get("occurred_at")),
                "what": "；".join(
                    f"{_said(summary[k])}" for k in _SHOWN if summary.get(k) not in (None, "", [])
                ),
            }
        )
    return rows


def _error(request: Request, seen: Viewer, answer: Answer) -> Response:
    return render(
        request,
        "error.html",
        lang=seen.lang,
        viewer=seen,
        status_code=403 if answer.status == 403 else 404,
        message_key="forbidden" if answer.status == 403 else "not_found",
        fmt={},
    )


async def find(request: Request, seen: Desk, vin: str = "") -> Response:
    vin = vin.strip().upper()
    found: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    if vin:
        answer = await seen.api.get("records", "/vehicles", vin=vin)
        if answer.ok:
            found = page_items(answer.body)
        else:
            errors, message = refused(answer, seen)
            if not errors:
                errors = {"vin": message or ""}
    return render(
        request,
        "records_archive.html",
        lang=seen.lang,
        viewer=seen,
        nav="archive",
        vin=vin,
        found=found,
        errors=errors,
        status_code=422 if errors else 200,
    )


async def vehicle(request: Request, vehicle_id: str, seen: Desk, cursor: str = "") -> Response:
    answer = await seen.api.get(
        "records", f"/vehicles/{vehicle_id}/timeline", limit=100, cursor=cursor
    )
    if not answer.ok:
        return _error(request, seen, answer)
    body = answer.body
    entries = _entries(seen, body)
    owners = list(dict.fromkeys(e["customer_id"] for e in entries if e.get("customer_id")))
    return render(
        request,
        "records_vehicle.html",
        lang=seen.lang,
        viewer=seen,
        nav="archive",
        card=body,
        entries=entries,
        owners=owners,
        next_cursor=body.get("next_cursor"),
    )


async def history_pdf(request: Request, vehicle_id: str, seen: Desk, lang: str = "") -> Response:
    chosen = lang if lang in ("zh-CN", "en") else seen.lang
    return await download(request, seen, f"/vehicles/{vehicle_id}/history.pdf", {"lang": chosen})


async def _customer_page(
    request: Request,
    seen: Viewer,
    customer_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    status_code: int = 200,
    cursor: str = "",
) -> Response:
    answer = await seen.api.get(
        "records", f"/customers/{customer_id}/timeline", limit=100, cursor=cursor
    )
    if not answer.ok:
        return _error(request, seen, answer)
    body = answer.body
    entries = _entries(seen, body)
    vehicles = list(dict.fromkeys(e["vehicle_id"] for e in entries if e.get("vehicle_id")))
    return render(
        request,
        "records_customer.html",
        lang=seen.lang,
        viewer=seen,
        nav="archive",
        customer_id=customer_id,
        card=body,
        entries=entries,
        vehicles=vehicles,
        next_cursor=body.get("next_cursor"),
        channels=CHANNELS,
        values=values or {},
        errors=errors or {},
        problem=problem,
        status_code=status_code,
    )


async def customer(request: Request, customer_id: str, seen: Desk, cursor: str = "") -> Response:
    return await _customer_page(request, seen, customer_id, cursor=cursor)


async def export(request: Request, customer_id: str, seen: Desk) -> Response:
    response = await download(request, seen, f"/customers/{customer_id}/export")
    if response.status_code == 200:
        # Saved as a file, not shown: it is the customer's whole record.
        response.headers["Content-Disposition"] = (
            f'attachment; filename="customer-{customer_id}.json"'
        )
    return response


def _request_of(form: dict[str, str]) -> dict[str, str]:
    return {
        "requested_by": form.get("requested_by", "").strip(),
        "request_channel": form.get("request_channel", "in_person"),
        "reason": form.get("reason", "").strip(),
    }


async def erasure_check(request: Request, customer_id: str, seen: Desk, form: Form) -> Response:
    """The confirmation step: nothing is erased yet. What the request says is checked here
    as records would (who asked is required), and what the erasure will touch is counted
    from the customer's export."""
    asked = _request_of(form)
    if not asked["requested_by"]:
        return await _customer_page(
            request,
            seen,
            customer_id,
            values=form,
            errors={"requested_by": seen.t["field_required"]},
            status_code=422,
        )
    answer = await seen.api.get("records", f"/customers/{customer_id}/export")
    if not answer.ok:
        return _error(request, seen, answer)
    data = answer.body
    return render(
        request,
        "records_erasure.html",
        lang=seen.lang,
        viewer=seen,
        nav="archive",
        customer_id=customer_id,
        name=(data.get("customer") or {}).get("name") or "",
        asked=asked,
        counts={
            "entries": len(data.get("timeline") or []),
            "vehicles": len(data.get("vehicles") or []),
            "files": sum(1 for f in data.get("files") or [] if f.get("stored")),
        },
        erased=bool(data.get("erasures")),
        done=None,
    )


async def erasure_confirm(request: Request, customer_id: str, seen: Desk, form: Form) -> Response:
    asked = _request_of(form)
    answer = await seen.api.call(
        "records",
        "POST",
        f"/customers/{customer_id}/erasure",
        json=asked,
        idempotency_key=form.get("idempotency_key"),
    )
    if not answer.ok:
        errors, message = refused(answer, seen)
        return await _customer_page(
            request,
            seen,
            customer_id,
            values=form,
            errors=errors,
            problem=message,
            status_code=answer.status if answer.status in (409, 422) else 422,
        )
    done = {**answer.body, "at": seen.local(answer.body.get("erased_at"))}
    return render(
        request,
        "records_erasure.html",
        lang=seen.lang,
        viewer=seen,
        nav="archive",
        customer_id=customer_id,
        name="",
        asked=asked,
        counts={},
        erased=True,
        done=done,
    )
