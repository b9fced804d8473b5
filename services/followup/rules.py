"""Followup's pure rules: business-hours scheduling on the branch calendar, the complaint
state machine, comebacks."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from shared.calendar import BranchCalendar
from shared.problems import Conflict


def visit_due_at(delivered_at: datetime, hours: BranchCalendar, *, due_day: int) -> datetime:
    """Day `due_day` after delivery at the delivery's clock time, moved into business hours
    (a day the branch does not work or an after-hours time moves to the next opening)."""
    local = delivered_at.astimezone(hours.zone)
    target = datetime.combine(local.date() + timedelta(days=due_day), local.timetz())
    return hours.place(target)


def visit_expires_at(
    delivered_at: datetime, hours: BranchCalendar, *, window_days: int
) -> datetime:
    """Closing time of the local calendar day `window_days` after delivery, or of the first
    working day after it when the branch does not work that day (the agent gets a day to
    call in)."""
    day = hours.next_workday(hours.local_date(delivered_at) + timedelta(days=window_days))
    return hours.closing(day).astimezone(UTC)


# --- complaints ------------------------------------------------------------------------


def complaint_due_at(
    opened_at: datetime, hours: BranchCalendar, *, working_hours: float
) -> datetime:
    """`working_hours` of the branch's opening hours on its working days after the case is
    opened: a case opened on Friday evening or before a holiday is counted from the next
    working day's opening, as the people who handle it are there."""
    return hours.add_working_time(opened_at, timedelta(hours=working_hours))


class ComplaintStatus(StrEnum):
    open = "open"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"


# Allowed moves; "resolved → in_progress" is the customer rejecting the resolution, and a
# case closes only once the customer confirms the resolution.
COMPLAINT_TRANSITIONS: dict[ComplaintStatus, frozenset[ComplaintStatus]] = {
    ComplaintStatus.open: frozenset({ComplaintStatus.in_progress}),
    ComplaintStatus.in_progress: frozenset({ComplaintStatus.resolved}),
    ComplaintStatus.resolved: frozenset({ComplaintStatus.in_progress, ComplaintStatus.closed}),
    ComplaintStatus.closed: frozenset(),
}

# States in which a case is still the owner's job (and can become overdue).
ACTIVE_COMPLAINT_STATUSES = (ComplaintStatus.open, ComplaintStatus.in_progress)


def require_transition(current: ComplaintStatus, target: ComplaintStatus) -> None:
    if target not in COMPLAINT_TRANSITIONS[current]:
        allowed = ", ".join(sorted(COMPLAINT_TRANSITIONS[current])) or "none (closed)"
        raise Conflict(
            f"a {current.value} case cannot move to {target.value}; allowed: {allowed}",
            current_status=current.value,
        )


# --- comebacks -------------------------------------------------------------------------

# Jobs that are planned work, not fixes: they neither make nor count as comebacks.
NOT_A_FIX = frozenset({"maintenance", "recall"})


@dataclass(frozen=True)
class PastJob:
    repair_order_id: str
    delivered_at: datetime
    op_group: str
    kind: str
    technician_id: str | None


def is_fix(kind: str) -> bool:
    return kind not in NOT_A_FIX


def find_comebacks(
    *,
    delivered_at: datetime,
    jobs: Iterable[tuple[str, str]],
    history: Iterable[PastJob],
    within_days: int,
) -> dict[str, PastJob]:
    """For each op group of the new order's fix jobs, the latest earlier fix of the same
    vehicle and op group delivered within `within_days` before it (if any)."""
    groups = {op_group for op_group, kind in jobs if is_fix(kind)}
    since = delivered_at - timedelta(days=within_days)
    found: dict[str, PastJob] = {}
    for past in history:
        if past.op_group not in groups or not is_fix(past.kind):
            continue
        if not since <= past.delivered_at < delivered_at:
            continue
        best = found.get(past.op_group)
        if best is None or past.delivered_at > best.delivered_at:
            found[past.op_group] = past
    return found
