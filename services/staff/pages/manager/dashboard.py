"""The manager's dashboard: the branch's figures for a period against their targets (records'
report), each drilling down to the orders behind it; open complaints by severity and age,
orders at risk and orders waiting to be settled, all read in parallel."""

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.staff.api import gather
from services.staff.pages.manager.common import (
    Manager,
    chosen_period,
    items,
    soft,
    trouble,
)
from services.staff.pages.manager.figures import (
    AGES,
    COUNTED_WORDS,
    PERIODS,
    complaint_matrix,
    daily_chart,
    delivered_count,
    figures,
    period_params,
)
from services.staff.web import render

PAGE = 50


def install(app: FastAPI) -> None:
    route = app.add_api_route
    route("/manager", dashboard, methods=["GET"], include_in_schema=False)
    route("/manager/kpis/{kpi}", drill, methods=["GET"], include_in_schema=False)


async def dashboard(
    request: Request, seen: Manager, period: str | None = None, on: str | None = None
) -> Response:
    kind, day = chosen_period(seen, period, on)
    api = seen.api
    report, at_risk, open_cases, working_cases, ready = await gather(
        soft(api.get("records", "/reports/kpis", lang=seen.lang, **period_params(kind, day))),
        soft(api.get("workorders", "/repair-orders/at-risk", limit=200)),
        soft(api.get("followup", "/complaints", status="open", limit=200)),
        soft(api.get("followup", "/complaints", status="in_progress", limit=200)),
        soft(api.get("workorders", "/repair-orders", status="ready", limit=200)),
    )
    t = seen.t
    cases = items(open_cases) + items(working_cases)
    return render(
        request,
        "manager_dashboard.html",
        lang=seen.lang,
        viewer=seen,
        nav="dashboard",
        period=kind,
        periods=PERIODS,
        on=day.isoformat(),
        report=report.body if report.ok else None,
        report_problem=trouble(report, seen),
        figures=figures(report.body, t, kind, day) if report.ok else [],
        delivered=delivered_count(report.body) if report.ok else "",
        daily=daily_chart(report.body, t) if report.ok else None,
        at_risk=len(items(at_risk)),
        at_risk_problem=trouble(at_risk, seen),
        matrix=complaint_matrix(cases, datetime.now(UTC)),
        ages=AGES,
        complaints_problem=trouble(open_cases, seen) or trouble(working_cases, seen),
        ready=len(items(ready)),
        ready_problem=trouble(ready, seen),
    )


async def drill(
    request: Request,
    kpi: str,
    seen: Manager,
    period: str | None = None,
    on: str | None = None,
    counted: str | None = None,
    technician: str | None = None,
    cursor: str | None = None,
) -> Response:
    """What is behind one figure: records' drill-down for the same period, newest first."""
    kind, day = chosen_period(seen, period, on)
    only = {"true": True, "false": False}.get(counted or "")
    params: dict[str, Any] = {
        **period_params(kind, day),
        "lang": seen.lang,
        "limit": PAGE,
        "cursor": cursor,
        "technician": technician,
        "counted": None if only is None else str(only).lower(),
    }
    found, definitions = await gather(
        soft(seen.api.get("records", f"/reports/kpis/{kpi}/items", **params)),
        soft(seen.api.get("records", "/reports/definitions")),
    )
    if found.status == 404:
        return render(
            request,
            "error.html",
            lang=seen.lang,
            viewer=seen,
            status_code=404,
            message_key="not_found",
            fmt={},
        )
    t = seen.t
    named = (
        {
            d["id"]: (d["name_zh"] if seen.lang == "zh-CN" else d["name_en"])
            for d in (definitions.body or {}).get("definitions", [])
        }
        if definitions.ok
        else {}
    )
    name = t.get(f"k_{kpi}") or named.get(kpi, kpi)
    words = COUNTED_WORDS.get(kpi, ("yes", "no"))
    rows = [_row(seen, kpi, item, words) for item in items(found)]
    base = f"/manager/kpis/{kpi}?period={kind}&on={day.isoformat()}"
    if technician:
        base += f"&technician={quote(technician)}"
    body = found.body if found.ok else {}
    next_cursor = body.get("next_cursor") if body else None
    return render(
        request,
        "manager_drill.html",
        lang=seen.lang,
        viewer=seen,
        nav="dashboard",
        kpi=kpi,
        name=name,
        technician=technician,
        period=kind,
        on=day.isoformat(),
        only=only,
        summary=body,
        rows=rows,
        problem=trouble(found, seen),
        base=base,
        more=(
            f"{base}&cursor={quote(next_cursor)}"
            + (f"&counted={str(only).lower()}" if only is not None else "")
        )
        if next_cursor
        else None,
        counted_words=words,
        back=f"/manager?period={kind}&on={day.isoformat()}",
    )


def _row(seen: Any, kpi: str, item: dict[str, Any], words: tuple[str, str]) -> dict[str, Any]:
    t = seen.t
    detail = item.get("detail") or {}
    at = seen.local(item["at"])
    parts: list[str] = []
    if detail.get("promised_at"):
        promised = seen.local(detail["promised_at"])
        parts.append(f"{t['promised']} {promised:%m-%d %H:%M}")
    if detail.get("severity"):
        parts.append(t.get(f"sev_{detail['severity']}", detail["severity"]))
    if detail.get("category"):
        parts.append(t.get(f"cat_{detail['category']}", detail["category"]))
    if detail.get("overall") is not None:
        parts.append(f"{t['overall']} {detail['overall']} · NPS {detail.get('nps')}")
    if detail.get("technician_id"):
        parts.append(str(detail["technician_id"]))
    if detail.get("op_code"):
        parts.append(str(detail["op_code"]))
    if detail.get("flat_rate_centihours") is not None:
        parts.append(f"{t['hours_flat']} {detail['flat_rate_centihours'] / 100:.2f}")
    if detail.get("worked_centihours") is not None:
        parts.append(f"{t['hours_worked']} {detail['worked_centihours'] / 100:.2f}")
    if detail.get("centihours") is not None:
        parts.append(f"{t['hours_clocked']} {detail['centihours'] / 100:.2f}")
    counted = item.get("counted")
    return {
        "id": item["id"],
        "order_id": item.get("repair_order_id"),
        "number": item.get("number") or "—",
        "at": f"{at:%Y-%m-%d %H:%M}" if at else "",
        "counted": counted,
        "counted_word": "" if counted is None else t[words[0] if counted else words[1]],
        "detail": " · ".join(parts),
    }
