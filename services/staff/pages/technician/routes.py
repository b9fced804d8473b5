"""The technician's workshop tablet: my jobs with their cars, clocking on and off (finished,
waiting for parts, a break), and reporting extra work found on the car. The list follows
the workshop live (the board's stream, relayed)."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import page_items
from services.staff.i18n import field_errors, problem_text
from services.staff.web import Form, Viewer, needs, render

Technician = Annotated[Viewer, Depends(needs("technician"))]
REASONS = ("finished", "waiting_parts", "break")


def install(app: FastAPI) -> None:
    routes: list[tuple[str, Callable[..., Any], str]] = [
        ("/technician", page, "GET"),
        ("/technician/jobs", listing, "GET"),
        ("/technician/jobs/{job_id}/clock-on", clock_on, "POST"),
        ("/technician/jobs/{job_id}/clock-off", clock_off, "POST"),
        ("/technician/jobs/{job_id}/extra-work", extra_work, "POST"),
    ]
    for path, endpoint, method in routes:
        app.add_api_route(path, endpoint, methods=[method], include_in_schema=False)


async def _jobs(seen: Viewer) -> tuple[list[dict[str, Any]], str | None]:
    answer = await seen.api.get("workorders", "/jobs/mine", limit=50)
    if not answer.ok:
        return [], problem_text(answer, seen.lang)
    jobs = page_items(answer.body)
    for job in jobs:
        job["promised"] = seen.local(job.get("promised_at"))
    return jobs, None


async def _list(
    request: Request, seen: Viewer, *, full: bool, status_code: int = 200, **extra: Any
) -> Response:
    jobs, problem = await _jobs(seen)
    return render(
        request,
        "technician.html" if full else "_jobs.html",
        lang=seen.lang,
        viewer=seen,
        jobs=jobs,
        problem=problem,
        reasons=REASONS,
        forms=extra.pop("forms", {}),
        status_code=status_code,
        **extra,
    )


async def page(request: Request, seen: Technician) -> Response:
    return await _list(request, seen, full=True)


async def listing(request: Request, seen: Technician) -> Response:
    return await _list(request, seen, full=False)


async def _answered(request: Request, seen: Viewer, job_id: str, answer: Any) -> Response:
    if answer.ok:
        return await _list(request, seen, full=False)
    message = problem_text(answer, seen.lang)
    return await _list(
        request, seen, full=False, forms={job_id: {"message": message}}, status_code=200
    )


async def clock_on(request: Request, job_id: str, seen: Technician, form: Form) -> Response:
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/jobs/{job_id}/clock-on",
        idempotency_key=form.get("idempotency_key"),
    )
    return await _answered(request, seen, job_id, answer)


async def clock_off(request: Request, job_id: str, seen: Technician, form: Form) -> Response:
    reason = form.get("reason", "finished")
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/jobs/{job_id}/clock-off",
        json={"reason": reason},
        idempotency_key=form.get("idempotency_key"),
    )
    return await _answered(request, seen, job_id, answer)


async def extra_work(request: Request, job_id: str, seen: Technician, form: Form) -> Response:
    """What the technician found, proposed without a price: the advisor prices it and asks."""
    lines: list[dict[str, Any]] = []
    if form.get("op_code") or form.get("flat_rate_hours"):
        lines.append(
            {
                "kind": "labour",
                "op_code": form.get("op_code", ""),
                "flat_rate_hours": form.get("flat_rate_hours") or "0",
                "description": form.get("description", ""),
            }
        )
    if form.get("part_number"):
        lines.append(
            {
                "kind": "part",
                "part_number": form["part_number"],
                "quantity": form.get("quantity") or "1",
            }
        )
    body = {"job_id": job_id, "findings": form.get("findings", ""), "proposed_lines": lines}
    answer = await seen.api.call(
        "workorders",
        "POST",
        f"/repair-orders/{form.get('repair_order_id')}/extra-work",
        json=body,
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return await _list(request, seen, full=False, reported=job_id)
    errors = {
        name.split(".")[-1]: message for name, message in field_errors(answer, seen.lang).items()
    }
    state = {
        "values": form,
        "errors": errors,
        "message": None if errors else problem_text(answer, seen.lang),
    }
    return await _list(request, seen, full=False, forms={job_id: state}, open_job=job_id)
