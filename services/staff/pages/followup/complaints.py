"""Complaint cases: the list, opening one, and one case worked to its close (take it, act,
find the root cause, resolve, close or reopen), each change with the case's ETag, with its
whole history and the visit and repair order behind it; the cases escalated to the
manager."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.staff.api import Answer, gather, page_items
from services.staff.pages.followup.common import CATEGORIES, Agent, refused, what_changed, when
from services.staff.web import Form, Viewer, redirect, render, settings_of

STATUSES = ("open", "in_progress", "resolved", "closed")
# The moves a page offers from each status (followup's COMPLAINT_TRANSITIONS).
MOVES = {"resolved": ("closed", "in_progress"), "in_progress": ("resolved",)}
WATCHED = {
    "status": "fu_f_status",
    "owner": "fu_f_owner",
    "root_cause": "fu_f_root_cause",
    "severity": "fu_f_severity",
    "technician_id": "fu_technician",
}


def install(app: FastAPI) -> None:
    add = app.add_api_route
    add("/followup/complaints", case_list, methods=["GET"], include_in_schema=False)
    add("/followup/complaints", open_case, methods=["POST"], include_in_schema=False)
    add("/followup/escalations", escalations, methods=["GET"], include_in_schema=False)
    base = "/followup/complaints/{complaint_id}"
    add(base, case_page, methods=["GET"], include_in_schema=False)
    add(base + "/take", take, methods=["POST"], include_in_schema=False)
    add(base + "/actions", act, methods=["POST"], include_in_schema=False)
    add(base + "/cause", cause, methods=["POST"], include_in_schema=False)
    add(base + "/transitions", move, methods=["POST"], include_in_schema=False)


def _names(request: Request) -> dict[str, str]:
    return {s.sub: s.name for s in settings_of(request).demo_staff}


def case_row(seen: Viewer, case: dict[str, Any]) -> dict[str, Any]:
    return {
        **case,
        "opened": when(seen, case["opened_at"]),
        "due": when(seen, case["due_at"]),
        "escalated": when(seen, case.get("escalated_at")),
    }


async def case_list(request: Request, seen: Agent, status: str = "") -> Response:
    return await _list_page(request, seen, status, {})


async def _list_page(
    request: Request, seen: Viewer, status: str, form: dict[str, Any], status_code: int = 200
) -> Response:
    status = status if status in STATUSES else ""
    listed = await seen.api.get("followup", "/complaints", status=status, limit=100)
    return render(
        request,
        "followup_complaints.html",
        lang=seen.lang,
        viewer=seen,
        nav="complaints",
        status=status,
        statuses=STATUSES,
        rows=[case_row(seen, c) for c in page_items(listed.body)] if listed.ok else [],
        problem=None if listed.ok else refused(listed, seen)[1],
        names=_names(request),
        categories=CATEGORIES,
        form=form,
        status_code=status_code,
    )


async def open_case(request: Request, seen: Agent, form: Form) -> Response:
    answer = await seen.api.call(
        "followup",
        "POST",
        "/complaints",
        json={
            "source": form.get("source", ""),
            "severity": form.get("severity", ""),
            "category": form.get("category", ""),
            "description": form.get("description", ""),
        },
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return redirect(f"/followup/complaints/{answer.body['id']}?saved=opened", request)
    errors, message = refused(answer, seen)
    failed = {"values": form, "errors": errors, "message": message}
    return await _list_page(request, seen, "", failed, 422)


async def escalations(request: Request, seen: Agent) -> Response:
    listed = await seen.api.get("followup", "/complaints", escalated="true", limit=100)
    return render(
        request,
        "followup_escalations.html",
        lang=seen.lang,
        viewer=seen,
        nav="escalations",
        rows=[case_row(seen, c) for c in page_items(listed.body)] if listed.ok else [],
        problem=None if listed.ok else refused(listed, seen)[1],
        names=_names(request),
    )


async def _case_page(
    request: Request,
    seen: Viewer,
    complaint_id: str,
    forms: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    case_answer, history = await gather(
        seen.api.get("followup", f"/complaints/{complaint_id}"),
        seen.api.get("followup", f"/complaints/{complaint_id}/history"),
    )
    if not case_answer.ok:
        return render(
            request,
            "error.html",
            lang=seen.lang,
            viewer=seen,
            status_code=case_answer.status if case_answer.status in (403, 404) else 502,
            message_key="not_found" if case_answer.status == 404 else "forbidden",
            fmt={},
        )
    case = case_row(seen, case_answer.body)
    case["etag"] = case_answer.etag or ""
    visit, order = await _behind(seen, case)
    survey = None
    if visit and case.get("survey_id"):
        answer = await seen.api.get("followup", f"/visits/{visit['id']}/survey")
        survey = answer.body if answer.ok else None
    names = _names(request)
    entries = [
        {
            **e,
            "when": when(seen, e["at"]),
            "lines": _change_lines(seen, e, names),
            # The timer's note is for the logs (a UTC instant): the line says it already.
            "note": "" if e["kind"] == "escalated" else e.get("note", ""),
        }
        for e in (page_items(history.body) if history.ok else [])
    ]
    return render(
        request,
        "followup_complaint.html",
        lang=seen.lang,
        viewer=seen,
        nav="complaints",
        case=case,
        visit=visit,
        order=order,
        survey=survey,
        history=entries,
        forms=forms or {},
        moves=MOVES.get(case["status"], ()),
        saved=_saved(seen, request.query_params.get("saved", "")),
        names=names,
        status_code=status_code,
    )


_FIELD_LABELS = {
    "status": "fu_f_status",
    "owner": "fu_owner",
    "severity": "fu_severity",
    "category": "fu_category",
    "root_cause": "fu_root_cause",
    "technician_id": "fu_technician",
    "compensation_amount": "fu_compensation",
    "compensation_note": "fu_compensation_note",
    "due_at": "fu_deadline",
    "source": "fu_source",
}
_VALUE_KEYS = {
    "status": "fu_cs_",
    "severity": "fu_sev_",
    "category": "fu_cat_",
    "source": "fu_src_",
}


def _change_lines(seen: Viewer, entry: dict[str, Any], names: dict[str, str]) -> list[str]:
    """A history entry's changes as `field: old → new` in the user's language."""
    t = seen.t

    def shown(name: str, value: Any) -> str:
        if value is None or value == "":
            return "—"
        text = str(value)
        if name in _VALUE_KEYS:
            return t.get(_VALUE_KEYS[name] + text, text)
        if name in ("owner", "technician_id"):
            return names.get(text, text)
        if name == "due_at":
            return when(seen, text)
        return text

    lines = []
    for name, change in (entry.get("changes") or {}).items():
        label = t.get(_FIELD_LABELS.get(name, ""), name)
        if isinstance(change, list) and len(change) == 2:
            lines.append(f"{label}: {shown(name, change[0])} → {shown(name, change[1])}")
        else:
            lines.append(f"{label}: {shown(name, change)}")
    return lines


async def _behind(
    seen: Viewer, case: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The visit and the delivered repair order the case is about, if it names one."""
    order_id = case.get("repair_order_id")
    if not order_id:
        return None, None
    visits, order = await gather(
        seen.api.get("followup", "/visits", repair_order_id=order_id),
        seen.api.get("followup", f"/delivered-orders/{order_id}"),
    )
    found = page_items(visits.body) if visits.ok else []
    visit = None
    if found:
        visit = {**found[0], "due": when(seen, found[0]["due_at"])}
    return visit, (order.body if order.ok else None)


def _saved(seen: Viewer, what: str) -> str | None:
    t = seen.t
    return {
        "opened": t["fu_case_opened"],
        "taken": t["fu_taken"],
        "action": t["fu_action_saved"],
        "cause": t["fu_cause_saved"],
        "resolved": t["fu_resolved"],
        "closed": t["fu_closed"],
        "in_progress": t["fu_reopened"],
    }.get(what)


async def case_page(request: Request, complaint_id: str, seen: Agent) -> Response:
    return await _case_page(request, seen, complaint_id)


async def _refused(
    request: Request,
    seen: Viewer,
    complaint_id: str,
    which: str,
    form: dict[str, str],
    answer: Answer,
) -> Response:
    """The case again with the form's entries kept and the service's no next to the field,
    or, for a stale ETag, what changed since the page was read (and a fresh key)."""
    errors, message = refused(answer, seen)
    changed: list[str] = []
    values = dict(form)
    if answer.status == 412:
        now = await seen.api.get("followup", f"/complaints/{complaint_id}")
        changed = what_changed(seen, form, now.body or {}, WATCHED, _names(request))
        message = None if changed else seen.t["changed"]
        values["idempotency_key"] = ""
    forms = {which: {"values": values, "errors": errors, "message": message, "changed": changed}}
    if which == "move" and "root_cause" in errors:
        # The root cause is written in the cause form: the service's word goes there.
        forms["cause"] = {"values": {}, "errors": {"root_cause": errors.pop("root_cause")}}
    return await _case_page(request, seen, complaint_id, forms, answer.status)


def _etag(form: dict[str, str]) -> str:
    return form.get("etag", "")


async def take(request: Request, complaint_id: str, seen: Agent, form: Form) -> Response:
    """Make the case the user's own (if it is not) and start working it."""
    etag = _etag(form)
    if form.get("seen_owner") != seen.session.sub:
        owned = await seen.api.call(
            "followup",
            "PATCH",
            f"/complaints/{complaint_id}",
            json={"owner": seen.session.sub},
            if_match=etag,
        )
        if not owned.ok:
            return await _refused(request, seen, complaint_id, "take", form, owned)
        etag = owned.etag or etag
    answer = await seen.api.call(
        "followup",
        "POST",
        f"/complaints/{complaint_id}/transitions",
        json={"to": "in_progress", "note": form.get("note", "")},
        idempotency_key=form.get("idempotency_key"),
        if_match=etag,
    )
    if answer.ok:
        return redirect(f"/followup/complaints/{complaint_id}?saved=taken", request)
    return await _refused(request, seen, complaint_id, "take", form, answer)


async def act(request: Request, complaint_id: str, seen: Agent, form: Form) -> Response:
    answer = await seen.api.call(
        "followup",
        "POST",
        f"/complaints/{complaint_id}/actions",
        json={"action": form.get("action", "")},
        idempotency_key=form.get("idempotency_key"),
        if_match=_etag(form),
    )
    if answer.ok:
        return redirect(f"/followup/complaints/{complaint_id}?saved=action", request)
    return await _refused(request, seen, complaint_id, "action", form, answer)


async def cause(request: Request, complaint_id: str, seen: Agent, form: Form) -> Response:
    body: dict[str, Any] = {"root_cause": form.get("root_cause", "").strip() or None}
    amount = form.get("compensation_amount", "").strip()
    if amount:
        body["compensation_amount"] = amount
    note = form.get("compensation_note", "").strip()
    if note:
        body["compensation_note"] = note
    answer = await seen.api.call(
        "followup", "PATCH", f"/complaints/{complaint_id}", json=body, if_match=_etag(form)
    )
    if answer.ok:
        return redirect(f"/followup/complaints/{complaint_id}?saved=cause", request)
    return await _refused(request, seen, complaint_id, "cause", form, answer)


async def move(request: Request, complaint_id: str, seen: Agent, form: Form) -> Response:
    target = form.get("to", "")
    body: dict[str, Any] = {"to": target, "note": form.get("note", "")}
    if target == "resolved" and form.get("root_cause", "").strip():
        body["root_cause"] = form["root_cause"]
    answer = await seen.api.call(
        "followup",
        "POST",
        f"/complaints/{complaint_id}/transitions",
        json=body,
        idempotency_key=form.get("idempotency_key"),
        if_match=_etag(form),
    )
    if answer.ok:
        return redirect(f"/followup/complaints/{complaint_id}?saved={target}", request)
    return await _refused(request, seen, complaint_id, "move", form, answer)
