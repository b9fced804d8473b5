"""The estimate of an intake: canned jobs, labour, parts and fees with totals per payer
(priced by reception, shown again after every change), and the customer's consent line
by line, in person with a signature or through the approval link shown as a QR code."""

import base64
import io
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import Answer, gather, page_items
from services.staff.i18n import field_errors, labels, problem_text
from services.staff.web import Form, Viewer, needs, redirect, render

Advisor = Annotated[Viewer, Depends(needs("advisor", "manager"))]
PAY_TYPES = ("customer", "warranty", "internal")
LINE_FIELDS = (
    "line_id",
    "kind",
    "description",
    "op_code",
    "op_group",
    "job_kind",
    "flat_rate_hours",
    "labour_rate",
    "part_number",
    "quantity",
    "unit_price",
    "discount",
    "pay_type",
)


def install(app: FastAPI) -> None:
    routes: list[tuple[str, Callable[..., Any], str]] = [
        ("/advisor/intakes/{intake_id}/estimate", page, "GET"),
        ("/advisor/intakes/{intake_id}/estimate", create, "POST"),
        ("/advisor/estimates/{estimate_id}/canned-jobs", add_canned_job, "POST"),
        ("/advisor/estimates/{estimate_id}/lines", add_line, "POST"),
        ("/advisor/estimates/{estimate_id}/lines/{line_id}/price", price_line, "POST"),
        ("/advisor/estimates/{estimate_id}/promise", new_promise, "POST"),
        ("/advisor/extra-work", extra_work, "GET"),
        ("/advisor/extra-work/list", extra_work_list, "GET"),
        ("/advisor/estimates/{estimate_id}/consents", consent, "POST"),
        ("/advisor/estimates/{estimate_id}/approval-link", approval_link, "POST"),
    ]
    for path, endpoint, method in routes:
        app.add_api_route(path, endpoint, methods=[method], include_in_schema=False)


async def _render(
    request: Request,
    seen: Viewer,
    intake_id: str,
    *,
    estimate: Answer | None = None,
    fragment: bool = False,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    calls = [
        seen.api.get("reception", f"/intakes/{intake_id}"),
        seen.api.get("reception", "/canned-jobs", limit=200),
    ]
    if estimate is None:
        calls.append(seen.api.get("reception", f"/intakes/{intake_id}/estimate"))
    answers = await gather(*calls)
    intake, canned = answers[0], answers[1]
    estimate = estimate if estimate is not None else answers[2]
    vehicle, customer = await gather(
        seen.api.get("reception", f"/vehicles/{intake.body['vehicle_id']}"),
        seen.api.get("reception", f"/customers/{intake.body['customer_id']}"),
    )
    body = estimate.body if estimate.ok else None
    context = {
        "intake": intake.body,
        "vehicle": vehicle.body,
        "customer": customer.body,
        "estimate": body,
        "etag": estimate.etag if estimate.ok else None,
        "canned_jobs": page_items(canned.body) if canned.ok else [],
        "pay_types": PAY_TYPES,
        "promised": seen.local(body["promised_at"]) if body and body.get("promised_at") else None,
        "unanswered": [ln for ln in (body or {}).get("lines", []) if not ln.get("answer")],
        "nav": "today",
        "errors": {},
        "values": {},
        **extra,
    }
    template = "_estimate.html" if fragment else "estimate.html"
    return render(
        request, template, lang=seen.lang, viewer=seen, status_code=status_code, **context
    )


async def page(request: Request, intake_id: str, seen: Advisor) -> Response:
    return await _render(request, seen, intake_id)


def _instant(text: str, seen: Viewer) -> str:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=seen.tz).isoformat()
    except ValueError:
        return text


async def create(request: Request, intake_id: str, seen: Advisor, form: Form) -> Response:
    body = {
        "intake_id": intake_id,
        "promised_at": _instant(form.get("promised_at", ""), seen),
        "lines": [],
        "note": form.get("note", ""),
    }
    answer = await seen.api.call(
        "reception", "POST", "/estimates", json=body, idempotency_key=form.get("idempotency_key")
    )
    if answer.ok:
        return redirect(f"/advisor/intakes/{intake_id}/estimate", request)
    return await _render(
        request,
        seen,
        intake_id,
        values=form,
        errors=field_errors(answer, seen.lang),
        message=problem_text(answer, seen.lang),
        status_code=422,
    )


async def _after_change(
    request: Request,
    seen: Viewer,
    form: dict[str, str],
    answer: Answer,
    estimate_id: str,
    errors: dict[str, str] | None = None,
) -> Response:
    """The estimate as it now is (new totals), or the problem next to its field; a 412
    shows the estimate someone else changed, with what changed."""
    intake_id = form.get("intake_id", "")
    if answer.ok:
        return await _render(request, seen, intake_id, estimate=answer, fragment=True, saved=True)
    fresh = await seen.api.get("reception", f"/estimates/{estimate_id}")
    changes: list[str] = []
    errors = field_errors(answer, seen.lang) if errors is None else errors
    if answer.status == 412 and fresh.ok:
        t = labels(seen.lang)
        changes = [
            t["estimate_changed"].format(
                revision=fresh.body["revision"], total=fresh.body["totals"]["total"]
            )
        ]
    return await _render(
        request,
        seen,
        intake_id,
        estimate=fresh,
        fragment=True,
        values=form,
        errors=errors,
        changes=changes,
        message=None if changes or errors else problem_text(answer, seen.lang),
        status_code=answer.status if answer.status in (409, 412, 422) else 422,
    )


async def add_canned_job(request: Request, estimate_id: str, seen: Advisor, form: Form) -> Response:
    answer = await seen.api.call(
        "reception",
        "POST",
        f"/estimates/{estimate_id}/canned-jobs",
        json={"op_code": form.get("op_code", ""), "pay_type": form.get("pay_type", "customer")},
        idempotency_key=form.get("idempotency_key"),
        if_match=form.get("etag"),
    )
    return await _after_change(request, seen, form, answer, estimate_id)


def _kept(line: dict[str, Any]) -> dict[str, Any]:
    return {k: line[k] for k in LINE_FIELDS if line.get(k) is not None}


async def add_line(request: Request, estimate_id: str, seen: Advisor, form: Form) -> Response:
    """A labour, parts or fee line: the whole revision again with the new line (PUT)."""
    current = await seen.api.get("reception", f"/estimates/{estimate_id}")
    kind = form.get("kind", "labour")
    line: dict[str, Any] = {
        "kind": kind,
        "pay_type": form.get("pay_type", "customer"),
        "description": form.get("description", ""),
    }
    for key in (
        "op_code",
        "flat_rate_hours",
        "labour_rate",
        "part_number",
        "quantity",
        "unit_price",
        "discount",
    ):
        if form.get(key):
            line[key] = form[key]
    body = {
        "promised_at": current.body["promised_at"],
        "note": current.body.get("note", ""),
        "lines": [_kept(ln) for ln in current.body["lines"]] + [line],
    }
    answer = await seen.api.call(
        "reception", "PUT", f"/estimates/{estimate_id}", json=body, if_match=form.get("etag")
    )
    errors = None
    if not answer.ok:
        # The new line is the last: "lines.3.unit_price" is this form's "unit_price".
        index = len(body["lines"]) - 1
        errors = {
            name.removeprefix(f"lines.{index}."): message
            for name, message in field_errors(answer, seen.lang).items()
        }
    return await _after_change(request, seen, form, answer, estimate_id, errors)


async def price_line(
    request: Request, estimate_id: str, line_id: str, seen: Advisor, form: Form
) -> Response:
    """Price a line the workshop proposed without a price: the revision again, that line
    with its labour rate or unit price."""
    current = await seen.api.get("reception", f"/estimates/{estimate_id}")
    lines = [_kept(ln) for ln in current.body["lines"]]
    index = next((i for i, ln in enumerate(lines) if str(ln["line_id"]) == line_id), None)
    if index is None:
        return await _after_change(request, seen, form, current, estimate_id)
    key = "labour_rate" if lines[index]["kind"] == "labour" else "unit_price"
    lines[index][key] = form.get("price", "")
    body = {
        "promised_at": current.body["promised_at"],
        "note": current.body.get("note", ""),
        "lines": lines,
    }
    answer = await seen.api.call(
        "reception", "PUT", f"/estimates/{estimate_id}", json=body, if_match=form.get("etag")
    )
    errors = None
    if not answer.ok:
        found = field_errors(answer, seen.lang)
        errors = {"price": found.get(f"lines.{index}.{key}") or problem_text(answer, seen.lang)}
    return await _after_change(request, seen, form, answer, estimate_id, errors)


async def new_promise(request: Request, estimate_id: str, seen: Advisor, form: Form) -> Response:
    """A new promised time: the revision again with every line as it is."""
    current = await seen.api.get("reception", f"/estimates/{estimate_id}")
    body = {
        "promised_at": _instant(form.get("promised_at", ""), seen),
        "note": current.body.get("note", ""),
        "lines": [_kept(ln) for ln in current.body["lines"]],
    }
    answer = await seen.api.call(
        "reception", "PUT", f"/estimates/{estimate_id}", json=body, if_match=form.get("etag")
    )
    return await _after_change(request, seen, form, answer, estimate_id)


async def _extra_work(seen: Viewer) -> dict[str, Any]:
    """Work found in the workshop, waiting for the customer's answer."""
    answer = await seen.api.get("reception", "/estimates/extra-work", limit=50)
    estimates = page_items(answer.body) if answer.ok else []
    vehicles = await gather(
        *(seen.api.get("reception", f"/vehicles/{e['vehicle_id']}") for e in estimates)
    )
    customers = await gather(
        *(seen.api.get("reception", f"/customers/{e['customer_id']}") for e in estimates)
    )
    rows = [
        {
            "estimate": e,
            "vehicle": v.body if v.ok else {},
            "customer": c.body if c.ok else {},
            "lines": [ln for ln in e["lines"] if ln.get("extra_work_id") and not ln.get("answer")],
        }
        for e, v, c in zip(estimates, vehicles, customers, strict=True)
    ]
    return {"rows": rows, "problem": None if answer.ok else problem_text(answer, seen.lang)}


async def extra_work(request: Request, seen: Advisor) -> Response:
    view = await _extra_work(seen)
    return render(request, "extra_work.html", lang=seen.lang, viewer=seen, nav="extra_work", **view)


async def extra_work_list(request: Request, seen: Advisor) -> Response:
    """The list again, as the live feed asks."""
    view = await _extra_work(seen)
    return render(request, "_extra_work_list.html", lang=seen.lang, viewer=seen, **view)


async def consent(request: Request, estimate_id: str, seen: Advisor, form: Form) -> Response:
    """The customer's answers given at the desk, with their signature on the screen."""
    decisions = [
        {"line_id": key.removeprefix("decision_"), "decision": value}
        for key, value in form.items()
        if key.startswith("decision_") and value in ("approved", "declined")
    ]
    signature_id = None
    png = form.get("signature_png", "")
    if png.startswith("data:image/png;base64,"):
        kept = await seen.api.call(
            "records",
            "POST",
            "/files",
            files={
                "file": (
                    "consent-signature.png",
                    base64.b64decode(png.split(",", 1)[1]),
                    "image/png",
                )
            },
        )
        if kept.ok:
            signature_id = kept.body["id"]
    body = {
        "decisions": decisions,
        "by": form.get("by", ""),
        "channel": "in_person",
        "signature_file_id": signature_id,
    }
    answer = await seen.api.call(
        "reception",
        "POST",
        f"/estimates/{estimate_id}/consents",
        json=body,
        idempotency_key=form.get("idempotency_key"),
        if_match=form.get("etag"),
    )
    errors = None
    if not answer.ok and not decisions:
        errors = {"decisions": labels(seen.lang)["answer_a_line"]}
    elif not answer.ok and signature_id is None:
        errors = {"signature": labels(seen.lang)["sign_first"]}
    return await _after_change(request, seen, form, answer, estimate_id, errors)


def _qr_svg(url: str) -> str:
    import qrcode
    from qrcode.image.svg import SvgPathImage

    image = qrcode.make(url, image_factory=SvgPathImage, box_size=12, border=2)
    out = io.BytesIO()
    image.save(out)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()


async def approval_link(request: Request, estimate_id: str, seen: Advisor, form: Form) -> Response:
    answer = await seen.api.call(
        "reception",
        "POST",
        f"/estimates/{estimate_id}/approval-links",
        json={},
        idempotency_key=form.get("idempotency_key") or uuid.uuid4().hex,
    )
    if not answer.ok:
        return await _after_change(request, seen, form, answer, estimate_id)
    expires = seen.local(answer.body["expires_at"])
    return render(
        request,
        "_approval_link.html",
        lang=seen.lang,
        viewer=seen,
        url=answer.body["url"],
        qr=_qr_svg(answer.body["url"]),
        expires=expires,
    )
