"""What the follow-up pages share: who may open them, a service's no in the user's
language, times in the branch's zone, and what changed under a stale edit (412)."""

from typing import Annotated, Any

from fastapi import Depends

from services.staff.api import Answer
from services.staff.i18n import field_errors, problem_text
from services.staff.pages.followup import labels as _labels  # noqa: F401  (joins the catalog)
from services.staff.web import Viewer, needs

# followup's role table: agents and the manager work visits, surveys and cases.
Agent = Annotated[Viewer, Depends(needs("followup_agent", "manager"))]

CATEGORIES = (
    "repair_quality",
    "waiting_time",
    "price",
    "staff_attitude",
    "vehicle_damage",
    "other",
)


def refused(answer: Answer, seen: Viewer) -> tuple[dict[str, str], str | None]:
    """A service's no: its field errors, else one message, in the user's language."""
    errors = field_errors(answer, seen.lang)
    return errors, None if errors else problem_text(answer, seen.lang)


def when(seen: Viewer, value: str | None, with_day: bool = True) -> str:
    moment = seen.local(value)
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M" if with_day else "%H:%M")


def what_changed(
    seen: Viewer,
    before: dict[str, str],
    now: dict[str, Any],
    fields: dict[str, str],
    names: dict[str, str],
) -> list[str]:
    """For a 412: each field whose value differs from the one the form was rendered with
    (its `seen_<name>` hidden field), told with its value now."""
    t = seen.t
    lines = []
    for name, label in fields.items():
        was, current = str(before.get(f"seen_{name}", "")), now.get(name)
        current_text = "" if current is None else str(current)
        if was != current_text:
            shown = current_text
            if name == "status":
                shown = t.get(f"fu_cs_{current_text}", current_text)
            elif name == "severity":
                shown = t.get(f"fu_sev_{current_text}", current_text)
            elif name in ("owner", "technician_id"):
                shown = names.get(current_text, current_text)
            lines.append(t["changed_field"].format(field=t[label], now=shown or "—"))
    return lines
