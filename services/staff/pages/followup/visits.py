"""The follow-up agent's visits: the work list (today, overdue, open), one visit with the
call script, its call attempts and the next one, the survey filled in as the customer
answers, ending the visit without a survey, and a complaint opened from the call."""

import asyncio
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.staff.api import Answer, gather, page_items
from services.staff.pages.followup.common import CATEGORIES, Agent, refused, when
from services.staff.web import Form, Viewer, redirect, render, settings_of

VIEWS = ("today", "overdue", "open")
CALL_RESULTS = ("reached", "no_answer", "call_back", "wrong_number")
OUTCOMES = ("declined_survey", "contact_refused")
DIMENSIONS = ("reliability", "responsiveness", "assurance", "empathy", "tangibles")


def install(app: FastAPI) -> None:
    add = app.add_api_route
    add("/followup", work_list, methods=["GET"], include_in_schema=False)
    add("/followup/visits/{visit_id}", visit_page, methods=["GET"], include_in_schema=False)
    add("/followup/visits/{visit_id}/calls", call, methods=["POST"], include_in_schema=False)
    add("/followup/visits/{visit_id}/outcome", outcome, methods=["POST"], include_in_schema=False)
    add("/followup/visits/{visit_id}/survey", survey, methods=["POST"], include_in_schema=False)
    add(
        "/followup/visits/{visit_id}/complaints",
        open_complaint,
        methods=["POST"],
        include_in_schema=False,
    )


def visit_row(seen: Viewer, visit: dict[str, Any]) -> dict[str, Any]:
    due = seen.local(visit["due_at"])
    return {
        **visit,
        "plate_shown": visit.get("plate") or (visit.get("vin") or "")[-6:],
        "due": when(seen, visit["due_at"]),
        "expires": when(seen, visit["expires_at"]),
        "delivered": when(seen, visit["delivered_at"]),
        "last_attempt": when(seen, visit.get("last_attempt_at")),
        "late": visit["status"] == "open" and due is not None and due < datetime.now(seen.tz),
    }


async def work_list(request: Request, seen: Agent, view: str = "today") -> Response:
    view = view if view in VIEWS else "today"
    listed = await seen.api.get("followup", "/visits", view=view, limit=100)
    rows = [visit_row(seen, v) for v in page_items(listed.body)] if listed.ok else []
    return render(
        request,
        "followup_visits.html",
        lang=seen.lang,
        viewer=seen,
        nav="visits",
        view=view,
        views=VIEWS,
        rows=rows,
        problem=None if listed.ok else refused(listed, seen)[1],
    )


async def _visit_page(
    request: Request,
    seen: Agent,
    visit_id: str,
    forms: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    visit_answer, calls = await gather(
        seen.api.get("followup", f"/visits/{visit_id}"),
        seen.api.get("followup", f"/visits/{visit_id}/calls"),
    )
    if not visit_answer.ok:
        return _gone(request, seen, visit_answer)
    visit = visit_row(seen, visit_answer.body)
    order, answers = await asyncio.gather(
        seen.api.get("followup", f"/delivered-orders/{visit['repair_order_id']}"),
        _survey(seen, visit),
    )
    t = seen.t
    script = t["fu_script_text"].format(
        customer=visit.get("customer_name") or "—",
        agent=seen.session.name,
        plate=visit["plate_shown"],
        delivered=(seen.local(visit["delivered_at"]) or datetime.now()).strftime("%m-%d"),
        number=visit["repair_order_number"],
    )
    attempts = [
        {**c, "called": when(seen, c["called_at"]), "call_back": when(seen, c.get("call_back_at"))}
        for c in (page_items(calls.body) if calls.ok else [])
    ]
    return render(
        request,
        "followup_visit.html",
        lang=seen.lang,
        viewer=seen,
        nav="visits",
        visit=visit,
        script=script,
        calls=attempts,
        order=order.body if order.ok else None,
        answers=answers,
        forms=forms or {},
        saved=_saved(seen, request.query_params.get("saved", "")),
        results=CALL_RESULTS,
        outcomes=OUTCOMES,
        dimensions=DIMENSIONS,
        categories=CATEGORIES,
        names={m.sub: m.name for m in settings_of(request).demo_staff},
        status_code=status_code,
    )


async def _survey(seen: Viewer, visit: dict[str, Any]) -> dict[str, Any] | None:
    if visit.get("outcome") != "surveyed":
        return None
    answer = await seen.api.get("followup", f"/visits/{visit['id']}/survey")
    return answer.body if answer.ok else None


def _saved(seen: Viewer, what: str) -> str | None:
    t = seen.t
    if what.startswith("call:") and what[5:] in CALL_RESULTS:
        return t["fu_call_saved"].format(result=t[f"fu_result_{what[5:]}"])
    return {"survey": t["fu_survey_saved"], "outcome": t["fu_visit_closed"]}.get(what)


def _gone(request: Request, seen: Viewer, answer: Answer) -> Response:
    return render(
        request,
        "error.html",
        lang=seen.lang,
        viewer=seen,
        status_code=answer.status if answer.status in (403, 404) else 502,
        message_key="not_found" if answer.status == 404 else "forbidden",
        fmt={},
    )


async def visit_page(request: Request, visit_id: str, seen: Agent) -> Response:
    return await _visit_page(request, seen, visit_id)


def _failed(form: dict[str, str], answer: Answer, seen: Viewer) -> dict[str, Any]:
    errors, message = refused(answer, seen)
    return {"values": form, "errors": errors, "message": message}


def _local_instant(seen: Viewer, value: str) -> str | None:
    """A `datetime-local` field read in the branch's zone, sent with its offset."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=seen.tz).isoformat()
    except ValueError:
        return value  # the service names the field


async def call(request: Request, visit_id: str, seen: Agent, form: Form) -> Response:
    result = form.get("result", "")
    body: dict[str, Any] = {"result": result, "note": form.get("note", "")}
    if result == "call_back":
        body["call_back_at"] = _local_instant(seen, form.get("call_back_at", ""))
    answer = await seen.api.call(
        "followup",
        "POST",
        f"/visits/{visit_id}/calls",
        json=body,
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return redirect(f"/followup/visits/{visit_id}?saved=call:{result}", request)
    return await _visit_page(request, seen, visit_id, {"call": _failed(form, answer, seen)}, 422)


async def outcome(request: Request, visit_id: str, seen: Agent, form: Form) -> Response:
    answer = await seen.api.call(
        "followup",
        "POST",
        f"/visits/{visit_id}/outcome",
        json={"outcome": form.get("outcome", ""), "note": form.get("note", "")},
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return redirect(f"/followup/visits/{visit_id}?saved=outcome", request)
    forms = {"outcome": _failed(form, answer, seen)}
    return await _visit_page(request, seen, visit_id, forms, 422)


def _score(value: str) -> int | str | None:
    value = value.strip()
    if not value:
        return None
    return int(value) if value.isdigit() else value


async def survey(request: Request, visit_id: str, seen: Agent, form: Form) -> Response:
    scores = {
        dim: {kind: _score(form.get(f"{dim}_{kind}", "")) for kind in ("expectation", "perception")}
        for dim in DIMENSIONS
    }
    any_given = any(v is not None for dim in scores.values() for v in dim.values())
    body: dict[str, Any] = {
        "overall": _score(form.get("overall", "")),
        "nps": _score(form.get("nps", "")),
        "servqual": scores if any_given else None,
        "comments": form.get("comments", ""),
        "concern": form.get("concern") or "other",
    }
    answer = await seen.api.call(
        "followup",
        "POST",
        f"/visits/{visit_id}/survey",
        json=body,
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return redirect(f"/followup/visits/{visit_id}?saved=survey", request)
    failed = _failed(form, answer, seen)
    # SERVQUAL's errors name `servqual.<dimension>.<kind>`: the form's field is `<dim>_<kind>`.
    for name, message in list(failed["errors"].items()):
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "servqual":
            failed["errors"][f"{parts[1]}_{parts[2]}"] = message
    return await _visit_page(request, seen, visit_id, {"survey": failed}, 422)


async def open_complaint(request: Request, visit_id: str, seen: Agent, form: Form) -> Response:
    visit = await seen.api.get("followup", f"/visits/{visit_id}")
    if not visit.ok:
        return _gone(request, seen, visit)
    answer = await seen.api.call(
        "followup",
        "POST",
        "/complaints",
        json={
            "source": "call",
            "severity": form.get("severity", ""),
            "category": form.get("category", ""),
            "description": form.get("description", ""),
            "repair_order_id": visit.body["repair_order_id"],
            "customer_id": visit.body["customer_id"],
        },
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return redirect(f"/followup/complaints/{answer.body['id']}?saved=opened", request)
    forms = {"complaint": _failed(form, answer, seen)}
    return await _visit_page(request, seen, visit_id, forms, 422)
