"""What the manager's pages share: the role, the period asked for, and calls that do not
take the whole page down when one service is away (each panel says so instead)."""

from collections.abc import Awaitable
from datetime import date
from typing import Annotated, Any

from fastapi import Depends

from services.staff.api import Answer, ServiceUnreachable
from services.staff.i18n import problem_text
from services.staff.pages.manager import labels as _labels  # noqa: F401  (joins the catalog)
from services.staff.pages.manager.figures import PERIODS
from services.staff.web import Viewer, needs

Manager = Annotated[Viewer, Depends(needs("manager"))]


async def soft(call: Awaitable[Answer]) -> Answer:
    """A call whose service is unreachable answers 503 to its panel alone."""
    try:
        return await call
    except ServiceUnreachable as exc:
        return Answer(503, problem={"detail": f"{exc.service} unreachable"})


def trouble(answer: Answer, seen: Viewer) -> str | None:
    """A panel's problem in the user's language, or None when the answer is good."""
    if answer.ok:
        return None
    return seen.t["unavailable"].format(detail=problem_text(answer, seen.lang))


def chosen_period(seen: Viewer, period: str | None, on: str | None) -> tuple[str, date]:
    """The period kind (day, week, month; default month) around a day (default today)."""
    kind = period if period in PERIODS else "month"
    try:
        day = date.fromisoformat(on) if on else seen.today()
    except ValueError:
        day = seen.today()
    return kind, day


def items(answer: Answer) -> list[Any]:
    return list(answer.body["items"]) if answer.ok and isinstance(answer.body, dict) else []
