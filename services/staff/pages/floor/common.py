"""What the shop floor's pages share: a job as a row shows it and what changed under a
stale edit (412). The live feed they listen to is the staff app's `/live`."""

from collections.abc import Callable
from typing import Any

from services.staff.api import Answer
from services.staff.i18n import field_errors, problem_text
from services.staff.pages.floor import labels as _labels  # noqa: F401  (joins the catalog)
from services.staff.web import Viewer


def job_row(seen: Viewer, job: dict[str, Any], order: dict[str, Any] | None) -> dict[str, Any]:
    """A job as the floor's tables show it, with the order's plate and number."""
    start = seen.local(job.get("planned_start_at"))
    order = order or {}
    return {
        "id": job["id"],
        "order_id": job["repair_order_id"],
        "number": order.get("number", ""),
        "plate": order.get("plate") or (order.get("vin") or "")[-6:],
        "op_code": job["op_code"],
        "description": job.get("description") or "",
        "flat_rate_hours": job["flat_rate_hours"],
        "actual_hours": job.get("actual_hours"),
        "status": job["status"],
        "technician_id": job.get("technician_id") or "",
        "bay": job.get("bay") or "",
        "planned_start": start.strftime("%H:%M") if start else "",
        "planned_start_at": start,
        "pause_reason": job.get("pause_reason"),
        "rework_count": job.get("rework_count", 0),
        "version": job["version"],
    }


def what_changed(
    seen: Viewer,
    before: dict[str, str],
    now: dict[str, Any],
    fields: dict[str, str],
    shown: Callable[[str, str], str] = lambda name, value: value,
) -> list[str]:
    """For a 412: each field (by its label key) whose value differs from the one the form
    was rendered with (its `seen_<name>` hidden field), told with its value now."""
    t = seen.t
    lines = []
    for name, label in fields.items():
        was, current = str(before.get(f"seen_{name}", "")), now.get(name)
        current_text = "" if current is None else str(current)
        if was != current_text:
            value = shown(name, current_text) if current_text else "—"
            lines.append(t["changed_field"].format(field=t[label], now=value))
    return lines


def refused(answer: Answer, seen: Viewer) -> tuple[dict[str, str], str | None]:
    """A service's no: its field errors, else one message, in the user's language."""
    errors = field_errors(answer, seen.lang)
    return errors, None if errors else problem_text(answer, seen.lang)
