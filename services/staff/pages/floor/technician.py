"""The technician's page on the phone: my jobs in order, clock on, pause with a reason,
clock off when finished, today's finished jobs below; live as the foreman dispatches."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from services.staff.api import gather, page_items
from services.staff.pages.floor.common import job_row, refused
from services.staff.web import Form, Viewer, needs, render

Technician = Annotated[Viewer, Depends(needs("technician"))]

PAUSE_REASONS = ("break", "waiting_parts", "end_of_shift", "other")


def install(app: FastAPI) -> None:
    route = app.add_api_route
    route("/tech", my_jobs, methods=["GET"], include_in_schema=False)
    route("/tech/jobs", jobs_fragment, methods=["GET"], include_in_schema=False)
    route("/tech/jobs/{job_id}/clock", clock, methods=["POST"], include_in_schema=False)


def _order_of(job: dict[str, Any]) -> dict[str, Any]:
    """The order's part of a `MyJob` as `job_row` reads it."""
    return {"number": job.get("repair_order_number"), "plate": job.get("plate"), "vin": job["vin"]}


async def _mine(seen: Viewer) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """The technician's open jobs by planned start, and those finished today (workorders'
    `GET /jobs/mine`, the second with `finished_on`)."""
    today = seen.today().isoformat()
    open_, finished = await gather(
        seen.api.get("workorders", "/jobs/mine", limit=200),
        seen.api.get("workorders", "/jobs/mine", finished_on=today, limit=200),
    )
    problem = next((refused(a, seen)[1] for a in (open_, finished) if not a.ok), None)
    rows = [job_row(seen, j, _order_of(j)) for j in page_items(open_.body)] if open_.ok else []
    done = (
        [job_row(seen, j, _order_of(j)) for j in page_items(finished.body)] if finished.ok else []
    )
    # A job sent back by QC shows why: the last failed verdict's reason.
    sent_back = [r for r in rows if r["rework_count"]]
    verdicts = await gather(*(seen.api.get("workorders", f"/jobs/{r['id']}/qc") for r in sent_back))
    for row, answer in zip(sent_back, verdicts, strict=True):
        failed = [v for v in page_items(answer.body) if not v["passed"]] if answer.ok else []
        row["qc_reason"] = failed[0]["reason"] if failed else None
    far = datetime.max.replace(tzinfo=seen.tz)
    rows.sort(key=lambda r: (r["planned_start_at"] or far, r["id"]))
    return rows, done, problem


async def my_jobs(request: Request, seen: Technician) -> Response:
    rows, finished, problem = await _mine(seen)
    return render(
        request,
        "my_jobs.html",
        lang=seen.lang,
        viewer=seen,
        rows=rows,
        finished=finished,
        problem=problem,
        reasons=PAUSE_REASONS,
        forms={},
        nav="my_jobs",
    )


async def jobs_fragment(request: Request, seen: Technician) -> Response:
    rows, finished, problem = await _mine(seen)
    return render(
        request,
        "_my_jobs.html",
        lang=seen.lang,
        viewer=seen,
        rows=rows,
        finished=finished,
        problem=problem,
        reasons=PAUSE_REASONS,
        forms={},
    )


async def clock(request: Request, job_id: str, seen: Technician, form: Form) -> Response:
    """Clock on, or off: `finished`, or paused with the reason chosen."""
    action = form.get("action", "")
    if action == "on":
        answer = await seen.api.call(
            "workorders",
            "POST",
            f"/jobs/{job_id}/clock-on",
            idempotency_key=form.get("idempotency_key"),
        )
    else:
        reason = "finished" if action == "finish" else form.get("reason", "")
        answer = await seen.api.call(
            "workorders",
            "POST",
            f"/jobs/{job_id}/clock-off",
            json={"reason": reason},
            idempotency_key=form.get("idempotency_key"),
        )
    forms: dict[str, Any] = {}
    if not answer.ok:
        errors, message = refused(answer, seen)
        forms[job_id] = {"values": form, "errors": errors, "message": message}
    rows, finished, problem = await _mine(seen)
    return render(
        request,
        "_my_jobs.html",
        lang=seen.lang,
        viewer=seen,
        rows=rows,
        finished=finished,
        problem=problem,
        reasons=PAUSE_REASONS,
        forms=forms,
    )
