"""The manager's other pages: open complaints by severity and age, technician productivity
(records' report, drilling down to the jobs and clock segments), scheduled reports with
their last runs and files, and the orders waiting to be settled, where a discount above the
cashier's limit is approved on the cashier's own page."""

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.staff.api import gather
from services.staff.pages.floor.common import refused
from services.staff.pages.manager.common import Manager, chosen_period, items, soft, trouble
from services.staff.pages.manager.figures import (
    AGES,
    PERIODS,
    age_bucket,
    age_words,
    percent,
    period_params,
)
from services.staff.web import Form, redirect, render, settings_of

REPORT_FORMATS = ("pdf", "xlsx", "csv", "json")


def install(app: FastAPI) -> None:
    route = app.add_api_route
    route("/manager/complaints", complaints, methods=["GET"], include_in_schema=False)
    route("/manager/technicians", technicians, methods=["GET"], include_in_schema=False)
    route("/manager/reports", reports, methods=["GET"], include_in_schema=False)
    route("/manager/reports/schedules", add_schedule, methods=["POST"], include_in_schema=False)
    route(
        "/manager/reports/schedules/{schedule_id}/stop",
        stop_schedule,
        methods=["POST"],
        include_in_schema=False,
    )
    route(
        "/manager/reports/runs/{run_id}/files/{fmt}",
        report_file,
        methods=["GET"],
        include_in_schema=False,
    )
    route("/manager/approvals", approvals, methods=["GET"], include_in_schema=False)


async def complaints(
    request: Request, seen: Manager, severity: str | None = None, age: str | None = None
) -> Response:
    bucket_asked = int(age) if age and age.isdigit() and int(age) < len(AGES) else None
    open_cases, working = await gather(
        soft(seen.api.get("followup", "/complaints", status="open", limit=200)),
        soft(seen.api.get("followup", "/complaints", status="in_progress", limit=200)),
    )
    now = datetime.now(UTC)
    t = seen.t
    rows = []
    for case in items(open_cases) + items(working):
        opened = datetime.fromisoformat(case["opened_at"])
        bucket = age_bucket(opened, now)
        if severity in ("major", "minor") and case.get("severity") != severity:
            continue
        if bucket_asked is not None and bucket != bucket_asked:
            continue
        due = seen.local(case.get("due_at"))
        rows.append(
            {
                "id": case["id"],
                "severity": case.get("severity"),
                "status": case.get("status"),
                "category": t.get(f"cat_{case.get('category')}", case.get("category") or ""),
                "number": case.get("repair_order_number") or "—",
                "description": case.get("description") or "",
                "owner": case.get("escalated_to") or case.get("owner") or "",
                "opened_at": opened,
                "opened": f"{seen.local(opened):%m-%d %H:%M}",
                "age": age_words(opened, now, t),
                "due": f"{due:%m-%d %H:%M}" if due else "",
                "overdue": bool(case.get("overdue")),
            }
        )
    rows.sort(key=lambda r: (r["severity"] != "major", r["opened_at"]))
    return render(
        request,
        "manager_complaints.html",
        lang=seen.lang,
        viewer=seen,
        nav="complaints",
        rows=rows,
        severity=severity if severity in ("major", "minor") else None,
        age=bucket_asked,
        ages=AGES,
        problem=trouble(open_cases, seen) or trouble(working, seen),
    )


def _names(request: Request) -> dict[str, str]:
    return {s.sub: s.name for s in settings_of(request).demo_staff}


async def technicians(
    request: Request, seen: Manager, period: str | None = None, on: str | None = None
) -> Response:
    kind, day = chosen_period(seen, period, on)
    report = await soft(
        seen.api.get("records", "/reports/kpis", lang=seen.lang, **period_params(kind, day))
    )
    names = _names(request)
    query = f"period={kind}&on={day.isoformat()}"
    rows = []
    for r in (report.body or {}).get("technicians", []) if report.ok else []:
        tech = r["technician_id"]
        rows.append(
            {
                **r,
                "name": names.get(tech, tech),
                "efficiency_shown": percent(r.get("efficiency")),
                "utilisation_shown": percent(r.get("utilisation")),
                # Bars on 0–150 % (efficiency above 100 % is common) and 0–100 %.
                "efficiency_px": round(min(r.get("efficiency") or 0, 1.5) / 1.5 * 200),
                "utilisation_px": round(min(r.get("utilisation") or 0, 1.0) * 200),
                "efficiency_drill": f"/manager/kpis/technician_efficiency?{query}"
                f"&technician={quote(tech)}",
                "utilisation_drill": f"/manager/kpis/technician_utilisation?{query}"
                f"&technician={quote(tech)}",
            }
        )
    return render(
        request,
        "manager_technicians.html",
        lang=seen.lang,
        viewer=seen,
        nav="technicians",
        period=kind,
        periods=PERIODS,
        on=day.isoformat(),
        rows=rows,
        problem=trouble(report, seen),
    )


async def reports(request: Request, seen: Manager, added: int = 0) -> Response:
    return await _reports_page(request, seen, added=bool(added))


async def _reports_page(
    request: Request,
    seen: Any,
    *,
    added: bool = False,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    schedules, runs = await gather(
        soft(seen.api.get("records", "/reports/schedules", limit=100)),
        soft(seen.api.get("records", "/reports/runs", limit=200)),
    )
    run_rows = [_run(seen, r) for r in items(runs)]
    last: dict[str, dict[str, Any]] = {}
    for run in run_rows:  # newest due first: the first seen is the last run
        last.setdefault(run["schedule_id"], run)
    rows = [
        {
            "id": s["id"],
            "frequency": s["frequency"],
            "hour": f"{s['hour']:02d}:00",
            "language": s["language"],
            "active": s["active"],
            "last": last.get(s["id"]),
        }
        for s in items(schedules)
    ]
    return render(
        request,
        "manager_reports.html",
        lang=seen.lang,
        viewer=seen,
        nav="reports",
        rows=rows,
        runs=run_rows[:20],
        added=added,
        problem=trouble(schedules, seen) or trouble(runs, seen),
        form=form or {"values": {}, "errors": {}, "message": None},
        status_code=status_code,
    )


def _run(seen: Any, run: dict[str, Any]) -> dict[str, Any]:
    generated = seen.local(run.get("generated_at"))
    period = (
        run["from_on"] if run["from_on"] == run["to_on"] else (f"{run['from_on']} – {run['to_on']}")
    )
    return {
        "id": run["id"],
        "schedule_id": run["schedule_id"],
        "frequency": run["frequency"],
        "period": period,
        "status": run["status"],
        "made_up": run.get("made_up"),
        "generated": f"{generated:%Y-%m-%d %H:%M}" if generated else "",
        "files": [f for f in REPORT_FORMATS if f in (run.get("files") or [])],
    }


async def add_schedule(request: Request, seen: Manager, form: Form) -> Response:
    body: dict[str, Any] = {
        "frequency": form.get("frequency", ""),
        "language": form.get("language") or seen.lang,
    }
    if form.get("hour", "").strip():
        body["hour"] = form["hour"].strip()
    answer = await seen.api.call(
        "records",
        "POST",
        "/reports/schedules",
        json=body,
        idempotency_key=form.get("idempotency_key"),
    )
    if answer.ok:
        return redirect("/manager/reports?added=1", request)
    errors, message = refused(answer, seen)
    return await _reports_page(
        request,
        seen,
        form={"values": form, "errors": errors, "message": message},
        status_code=answer.status if answer.status in (403, 409, 422) else 200,
    )


async def stop_schedule(
    request: Request, schedule_id: uuid.UUID, seen: Manager, form: Form
) -> Response:
    """Stop a schedule (records keeps its reports)."""
    answer = await seen.api.call("records", "DELETE", f"/reports/schedules/{schedule_id}")
    if answer.ok:
        return redirect("/manager/reports", request)
    errors, message = refused(answer, seen)
    return await _reports_page(
        request,
        seen,
        form={"values": {}, "errors": errors, "message": message},
        status_code=answer.status if answer.status in (403, 404, 409) else 200,
    )


async def report_file(request: Request, run_id: uuid.UUID, fmt: str, seen: Manager) -> Response:
    """A kept report, fetched from records with the manager's token."""
    if fmt not in REPORT_FORMATS:
        return Response(status_code=404)
    http = request.app.state.http
    url = request.app.state.api_bases["records"] + f"/reports/runs/{run_id}/files/{fmt}"
    upstream = await http.get(url, headers={"Authorization": f"Bearer {seen.api.token}"})
    headers = {"Cache-Control": "no-store"}
    if "content-disposition" in upstream.headers:
        headers["Content-Disposition"] = upstream.headers["content-disposition"]
    return Response(
        upstream.content,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type", "application/octet-stream"),
        headers=headers,
    )


async def approvals(request: Request, seen: Manager) -> Response:
    ready = await soft(seen.api.get("workorders", "/repair-orders", status="ready", limit=200))
    return render(
        request,
        "manager_approvals.html",
        lang=seen.lang,
        viewer=seen,
        nav="approvals",
        rows=items(ready),
        problem=trouble(ready, seen),
    )
