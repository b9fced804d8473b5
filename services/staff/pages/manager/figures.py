"""The dashboard's figures as the page shows them, worked out from records' report: each
KPI's value in its unit, against its target, the rows behind it, and the shapes of the
server-drawn SVG charts (bars, a target mark, the daily columns). No logic in templates."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

# The figures the manager is held to, in the order the page shows them.
DASHBOARD = (
    "major_complaint_rate",
    "csi",
    "nps",
    "first_time_fix_rate",
    "comebacks",
    "on_time_delivery_rate",
    "technician_efficiency",
    "technician_utilisation",
    "follow_up_rate",
)
PERIODS = ("day", "week", "month")
# What a row in or out of the numerator is called, per KPI (label keys).
COUNTED_WORDS = {
    "first_time_fix_rate": ("c_first_time", "c_comeback"),
    "on_time_delivery_rate": ("c_on_time", "c_late"),
    "follow_up_rate": ("c_reached", "c_not_reached"),
    "nps": ("c_promoter", "c_not_promoter"),
    "major_complaint_rate": ("c_major", "c_minor"),
}
BAR_WIDTH = 220  # px of the SVG bar a figure is drawn in


@dataclass
class Bar:
    """A horizontal bar: the value's share of the scale, and where the target sits."""

    fill: int  # px
    target_x: int | None
    good: bool | None


@dataclass
class Figure:
    id: str
    name: str
    shown: str  # the value in its unit, or "—"
    ratio: str  # "numerator / denominator" when it is a rate
    target: str  # the target in words, or ""
    met: bool | None
    bar: Bar | None
    drill: str  # the page listing what is behind it


def period_params(period: str, on: date) -> dict[str, str]:
    return {"period": period, "on": on.isoformat()}


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if float(value) != int(value) else str(int(value))


def shown_value(kpi: dict[str, Any]) -> str:
    value, unit = kpi.get("value"), kpi.get("unit")
    if value is None:
        return "—"
    if unit == "ratio":
        return percent(value)
    if unit == "score":
        return f"{value:.2f}"
    if unit == "points":
        return f"{value:+.1f}"
    return _number(value)


def delivered_count(report: dict[str, Any]) -> str:
    kpi = next((k for k in report["kpis"] if k["id"] == "repair_orders_delivered"), None)
    return shown_value(kpi) if kpi else ""


def _bar(kpi: dict[str, Any]) -> Bar | None:
    """Ratios on 0–100 % (efficiency on 0–150 %), CSI on 0–10, NPS on −100…100."""
    value, unit, target = kpi.get("value"), kpi.get("unit"), kpi.get("target")
    if value is None:
        return None
    if unit == "ratio":
        top = 1.5 if kpi["id"] == "technician_efficiency" else 1.0
        if kpi["id"] == "major_complaint_rate":
            top = max(0.05, (target or 0) * 5, value)  # a small rate needs a small scale
        share, mark = value / top, (None if target is None else target / top)
    elif unit == "score":
        share, mark = value / 10, None
    elif unit == "points":
        share, mark = (value + 100) / 200, None
    else:
        return None
    share = min(max(share, 0.0), 1.0)
    target_x = None if mark is None else round(min(max(mark, 0.0), 1.0) * BAR_WIDTH)
    return Bar(round(share * BAR_WIDTH), target_x, kpi.get("target_met"))


def figures(report: dict[str, Any], t: dict[str, str], period: str, on: date) -> list[Figure]:
    kpis = {k["id"]: k for k in report["kpis"]}
    query = f"period={period}&on={on.isoformat()}"
    out = []
    for kpi_id in DASHBOARD:
        if kpi_id == "comebacks":
            ftf = kpis["first_time_fix_rate"]
            whole, fixed = ftf.get("denominator"), ftf.get("numerator")
            comebacks = None if whole is None or fixed is None else int(whole - fixed)
            out.append(
                Figure(
                    "comebacks",
                    t["k_comebacks"],
                    "—" if comebacks is None else str(comebacks),
                    t["of"].format(part=comebacks, whole=_number(whole)) if whole else "",
                    "",
                    None,
                    None,
                    f"/manager/kpis/first_time_fix_rate?{query}&counted=false",
                )
            )
            continue
        kpi = kpis[kpi_id]
        target = kpi.get("target")
        target_words = ""
        if target is not None:
            target_words = t["target_below"].format(target=percent(target, 0))
        ratio = ""
        if kpi.get("unit") in ("ratio",) and kpi.get("denominator"):
            ratio = t["of"].format(
                part=_number(kpi.get("numerator")), whole=_number(kpi.get("denominator"))
            )
        elif kpi.get("unit") in ("score", "points") and kpi.get("denominator"):
            ratio = f"n = {_number(kpi['denominator'])}"
        out.append(
            Figure(
                kpi_id,
                t[f"k_{kpi_id}"],
                shown_value(kpi),
                ratio,
                target_words,
                kpi.get("target_met"),
                _bar(kpi),
                f"/manager/kpis/{kpi_id}?{query}",
            )
        )
    return out


@dataclass
class DailyChart:
    """Columns per day: opened (light) and delivered (dark), scaled to the busiest day."""

    width: int
    height: int
    columns: list[dict[str, Any]]
    top: int
    label: str


def daily_chart(report: dict[str, Any], t: dict[str, str]) -> DailyChart | None:
    days = report.get("daily") or []
    if len(days) < 2:
        return None
    height, base = 160, 140
    top = max([1] + [max(d["opened"], d["delivered"]) for d in days])
    step = max(12, min(40, 900 // len(days)))
    columns = []
    for i, d in enumerate(days):
        x = 30 + i * step
        h_open = round(d["opened"] / top * 120)
        h_done = round(d["delivered"] / top * 120)
        columns.append(
            {
                "x": x,
                "w": max(4, step // 2 - 2),
                "open_y": base - h_open,
                "open_h": h_open,
                "done_y": base - h_done,
                "done_h": h_done,
                "day": date.fromisoformat(d["day"]).day,
                "label_every": len(days) <= 10 or i % 5 == 0,
                "title": f"{d['day']}: {t['opened']} {d['opened']}, "
                f"{t['delivered']} {d['delivered']}",
            }
        )
    label = "; ".join(c["title"] for c in columns)
    return DailyChart(30 + len(days) * step, height, columns, top, label)


# --- complaints by severity and age ---------------------------------------------------

AGES = ((0, "age_0"), (24, "age_1"), (72, "age_3"), (168, "age_7"))
SEVERITIES = ("major", "minor")


def age_bucket(opened_at: datetime, now: datetime) -> int:
    hours = (now - opened_at) / timedelta(hours=1)
    bucket = 0
    for i, (start, _) in enumerate(AGES):
        if hours >= start:
            bucket = i
    return bucket


def complaint_matrix(cases: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """Counts per severity and age bucket (with totals), and the overdue per severity."""
    cells = {s: [0] * len(AGES) for s in SEVERITIES}
    overdue = dict.fromkeys(SEVERITIES, 0)
    for case in cases:
        severity = str(case.get("severity"))
        severity = severity if severity in cells else "minor"
        bucket = age_bucket(datetime.fromisoformat(case["opened_at"]), now)
        cells[severity][bucket] += 1
        overdue[severity] += 1 if case.get("overdue") else 0
    return {
        "rows": [
            {"severity": s, "cells": cells[s], "total": sum(cells[s]), "overdue": overdue[s]}
            for s in SEVERITIES
        ],
        "total": sum(sum(c) for c in cells.values()),
    }


def age_words(opened_at: datetime, now: datetime, t: dict[str, str]) -> str:
    hours = int((now - opened_at) / timedelta(hours=1))
    if hours < 48:
        return t["age_hours"].format(n=max(hours, 0))
    return t["age_days"].format(n=hours // 24)
