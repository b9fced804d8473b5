"""The QC inspector's page: the jobs finished and waiting for QC, the checklist, pass, or
fail with the reason (the job goes back to its technician with it), the road test."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import gather, page_items
from services.staff.pages.floor.common import job_row, refused, what_changed
from services.staff.web import Form, Viewer, needs, render, settings_of

Inspector = Annotated[Viewer, Depends(needs("qc"))]

CHECKLIST = ("qc_torque", "qc_noise", "qc_leaks", "qc_clean")


def install(app: FastAPI) -> None:
    app.add_api_route("/qc", waiting, methods=["GET"], include_in_schema=False)
    app.add_api_route("/qc/jobs/{job_id}", verdict, methods=["POST"], include_in_schema=False)


async def _waiting(seen: Viewer) -> tuple[list[dict[str, Any]], str | None]:
    listed = await seen.api.get("workorders", "/repair-orders", status="qc", limit=200)
    if not listed.ok:
        return [], refused(listed, seen)[1]
    ids = [o["id"] for o in page_items(listed.body)]
    orders = await gather(*(seen.api.get("workorders", f"/repair-orders/{i}") for i in ids))
    return [
        job_row(seen, job, answer.body)
        for answer in orders
        if answer.ok
        for job in answer.body.get("jobs", [])
        if job["status"] == "done"
    ], None


def _page(request: Request, seen: Viewer, forms: dict[str, Any], **extra: Any) -> Response:
    return render(
        request,
        "qc.html",
        lang=seen.lang,
        viewer=seen,
        checklist=CHECKLIST,
        forms=forms,
        nav="qc",
        names=_names(request),
        **extra,
    )


async def waiting(request: Request, seen: Inspector) -> Response:
    rows, problem = await _waiting(seen)
    return _page(request, seen, {}, rows=rows, problem=problem)


def _names(request: Request) -> dict[str, str]:
    return {s.sub: s.name for s in settings_of(request).demo_staff}


async def verdict(request: Request, job_id: str, seen: Inspector, form: Form) -> Response:
    """Pass or fail, with the version the inspector saw (If-Match)."""
    passed = form.get("verdict") == "pass"
    body = {
        "passed": passed,
        "checklist": [{"item": seen.t[item], "ok": form.get(item) == "on"} for item in CHECKLIST],
        "reason": form.get("reason", "").strip() or None,
        "road_test": form.get("road_test") == "on",
    }
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/jobs/{job_id}/qc",
        json=body,
        idempotency_key=form.get("idempotency_key"),
        if_match=f'"{form.get("version", "")}"',
    )
    forms: dict[str, Any] = {}
    saved = None
    if answer.ok:
        saved = seen.t["qc_passed_ok" if passed else "qc_failed_ok"]
    else:
        errors, message = refused(answer, seen)
        changed: list[str] = []
        if answer.status == 412:
            now = await seen.api.get("workorders", f"/jobs/{job_id}")
            changed = what_changed(
                seen,
                form,
                now.body or {},
                {"status": "status"},
                lambda _, value: seen.t.get(f"job_{value}", value),
            )
            message = None
        forms[job_id] = {
            "values": {**form, "idempotency_key": "" if changed else form.get("idempotency_key")},
            "errors": errors,
            "message": message,
            "changed": changed,
        }
    rows, problem = await _waiting(seen)
    if job_id in forms and not any(r["id"] == job_id for r in rows):
        problem = problem or forms[job_id]["message"] or seen.t["changed"]
    return _page(request, seen, forms, rows=rows, problem=problem, saved=saved)
