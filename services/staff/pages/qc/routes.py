"""The QC inspector's tablet (质检): finished jobs waiting for inspection, with their cars,
passed or failed with a checklist, the road test and, for a fail, the reason (a fail
sends the job back to its technician as rework). Follows the workshop live."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import page_items
from services.staff.i18n import field_errors, problem_text
from services.staff.web import Form, Viewer, needs, render

Inspector = Annotated[Viewer, Depends(needs("qc"))]
CHECKS = ("torque_checked", "no_noise", "no_leaks", "area_clean")


def install(app: FastAPI) -> None:
    routes: list[tuple[str, Callable[..., Any], str]] = [
        ("/qc", page, "GET"),
        ("/qc/jobs", listing, "GET"),
        ("/qc/jobs/{job_id}", verdict, "POST"),
    ]
    for path, endpoint, method in routes:
        app.add_api_route(path, endpoint, methods=[method], include_in_schema=False)


async def _render(
    request: Request, seen: Viewer, template: str, forms: dict[str, Any], **extra: Any
) -> Response:
    answer = await seen.api.get("workorders", "/jobs/awaiting-qc", limit=50)
    jobs = page_items(answer.body) if answer.ok else []
    return render(
        request,
        template,
        lang=seen.lang,
        viewer=seen,
        jobs=jobs,
        checks=CHECKS,
        forms=forms,
        problem=None if answer.ok else problem_text(answer, seen.lang),
        **extra,
    )


async def page(request: Request, seen: Inspector) -> Response:
    return await _render(request, seen, "qc.html", {})


async def listing(request: Request, seen: Inspector) -> Response:
    return await _render(request, seen, "_qc_jobs.html", {})


async def verdict(request: Request, job_id: str, seen: Inspector, form: Form) -> Response:
    passed = form.get("verdict") == "passed"
    body: dict[str, Any] = {
        "passed": passed,
        "road_test": form.get("road_test") == "on",
        "checklist": [{"item": c, "ok": form.get(f"check_{c}") == "on"} for c in CHECKS],
    }
    if form.get("reason", "").strip():
        body["reason"] = form["reason"].strip()
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/jobs/{job_id}/qc",
        json=body,
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return await _render(request, seen, "_qc_jobs.html", {}, judged=passed)
    errors = field_errors(answer, seen.lang)
    state = {
        "values": form,
        "errors": errors,
        "message": None if errors else problem_text(answer, seen.lang),
    }
    return await _render(request, seen, "_qc_jobs.html", {job_id: state})
