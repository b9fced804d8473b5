"""Followup's rules: business-hours scheduling, expiry, the case state machine, comebacks."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.followup.config import Settings
from services.followup.reminders import daily_km, next_service
from services.followup.rules import (
    COMPLAINT_TRANSITIONS,
    ComplaintStatus,
    PastJob,
    find_comebacks,
    require_transition,
    visit_due_at,
    visit_expires_at,
)
from shared.calendar import BranchCalendar
from shared.problems import Conflict

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = BranchCalendar.of("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


# 2026-11-30 is a Monday; 2026-12-05/06 a weekend.


@pytest.mark.parametrize(
    ("delivered", "due"),
    [
        (local(2026, 11, 30, 15, 30), local(2026, 12, 3, 15, 30)),  # Mon → Thu, same time
        (local(2026, 11, 30, 6, 0), local(2026, 12, 3, 9, 0)),  # before opening → opening
        (local(2026, 11, 30, 19, 30), local(2026, 12, 4, 9, 0)),  # after closing → next day
        (local(2026, 12, 1, 18, 0), local(2026, 12, 7, 9, 0)),  # Tue → Fri at closing → Mon
        (local(2026, 12, 2, 10, 0), local(2026, 12, 7, 9, 0)),  # Wed → Sat → Mon opening
        (local(2026, 12, 3, 11, 0), local(2026, 12, 7, 9, 0)),  # Thu → Sun → Mon opening
        (local(2026, 12, 4, 17, 59), local(2026, 12, 7, 17, 59)),  # Fri → Mon, in hours
    ],
)
def test_visit_due_on_day_three_in_business_hours(delivered: datetime, due: datetime) -> None:
    at = visit_due_at(delivered.astimezone(UTC), HOURS, due_day=3)
    assert at == due
    assert at.tzinfo is not None and at.utcoffset() == timedelta(0)


def test_due_day_counts_local_days_not_utc_days() -> None:
    # 23:30 UTC on Tuesday is 07:30 on Wednesday in Shanghai: day 3 is Saturday → Monday.
    delivered = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    assert visit_due_at(delivered, HOURS, due_day=3) == local(2026, 12, 7, 9, 0)


def test_business_hours_follow_the_branch_time_zone() -> None:
    berlin = BranchCalendar.of("Europe/Berlin", 8, 17, region="DE-BE")
    delivered = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Mon 07:00 in Berlin
    assert visit_due_at(delivered, berlin, due_day=3) == datetime(
        2026, 12, 3, 8, 0, tzinfo=ZoneInfo("Europe/Berlin")
    )


def test_due_day_is_configurable_per_branch() -> None:
    settings = Settings(visit_due_day=3, branch_visit_due_days={"BR02": 1})
    assert settings.visit_due_day_of("BR01") == 3
    assert settings.visit_due_day_of("BR02") == 1
    delivered = local(2026, 11, 30, 10, 0).astimezone(UTC)
    assert visit_due_at(delivered, HOURS, due_day=1) == local(2026, 12, 1, 10, 0)


def test_visit_open_until_closing_time_of_day_fifteen() -> None:
    delivered = local(2026, 11, 30, 10, 0).astimezone(UTC)
    assert visit_expires_at(delivered, HOURS, window_days=15) == local(2026, 12, 15, 18, 0)


def test_place_moves_weekends_and_nights_to_the_next_opening() -> None:
    assert HOURS.place(local(2026, 12, 5, 12, 0)) == local(2026, 12, 7, 9, 0)
    assert HOURS.place(local(2026, 12, 7, 12, 0)) == local(2026, 12, 7, 12, 0)
    assert HOURS.place(local(2026, 12, 7, 18, 0)) == local(2026, 12, 8, 9, 0)


# --- complaint state machine -----------------------------------------------------------

ALLOWED = {
    ("open", "in_progress"),
    ("in_progress", "resolved"),
    ("resolved", "in_progress"),
    ("resolved", "closed"),
}


@pytest.mark.parametrize("current", list(ComplaintStatus))
@pytest.mark.parametrize("target", list(ComplaintStatus))
def test_complaint_transition_table(current: ComplaintStatus, target: ComplaintStatus) -> None:
    if (current.value, target.value) in ALLOWED:
        require_transition(current, target)
        assert target in COMPLAINT_TRANSITIONS[current]
    else:
        with pytest.raises(Conflict):
            require_transition(current, target)
        assert target not in COMPLAINT_TRANSITIONS[current]


def test_closed_is_terminal_and_every_status_has_a_row() -> None:
    assert set(COMPLAINT_TRANSITIONS) == set(ComplaintStatus)
    assert COMPLAINT_TRANSITIONS[ComplaintStatus.closed] == frozenset()


# --- comebacks -------------------------------------------------------------------------

NOW = datetime(2026, 12, 31, 10, 0, tzinfo=UTC)


def past(days: float, op_group: str = "BRAKES", kind: str = "repair", ro: str = "ro-1") -> PastJob:
    return PastJob(ro, NOW - timedelta(days=days), op_group, kind, "tech-7")


def comebacks(jobs: list[tuple[str, str]], history: list[PastJob]) -> dict[str, PastJob]:
    return find_comebacks(delivered_at=NOW, jobs=jobs, history=history, within_days=30)


def test_same_system_within_thirty_days_is_a_comeback_linked_to_the_earlier_fix() -> None:
    found = comebacks([("BRAKES", "repair")], [past(12)])
    assert found == {"BRAKES": past(12)}
    assert found["BRAKES"].technician_id == "tech-7"


def test_boundaries_of_the_window() -> None:
    assert comebacks([("BRAKES", "repair")], [past(30)])
    assert not comebacks([("BRAKES", "repair")], [past(30.01)])
    assert not comebacks([("BRAKES", "repair")], [past(0)])  # not earlier than itself


def test_another_system_is_not_a_comeback() -> None:
    assert not comebacks([("ENGINE", "repair")], [past(5, "BRAKES")])


@pytest.mark.parametrize("kind", ["maintenance", "recall"])
def test_maintenance_and_recalls_neither_make_nor_count_as_comebacks(kind: str) -> None:
    assert not comebacks([("BRAKES", kind)], [past(5)])
    assert not comebacks([("BRAKES", "repair")], [past(5, kind=kind)])


def test_warranty_work_counts_and_the_latest_earlier_fix_is_linked() -> None:
    found = comebacks([("BRAKES", "warranty")], [past(20, ro="ro-old"), past(3, ro="ro-new")])
    assert found["BRAKES"].repair_order_id == "ro-new"


# --- service reminders -----------------------------------------------------------------


def test_mileage_is_estimated_from_the_odometer_history() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    history = [(at - timedelta(days=100), 30_000), (at - timedelta(days=50), 33_000)]
    assert daily_km(history, at=at, odometer_km=36_000, default=40) == 60.0
    assert daily_km([], at=at, odometer_km=36_000, default=40) == 40
    # A reading from last week is too close to estimate from.
    assert daily_km([(at - timedelta(days=3), 35_900)], at=at, odometer_km=36_000, default=40) == 40


def test_next_service_is_the_earlier_of_date_and_mileage() -> None:
    settings = Settings(service_interval_days=180, service_interval_km=10_000)
    on = datetime(2026, 12, 1).date()
    assert next_service(on=on, odometer_km=36_000, per_day=100, settings=settings) == (
        on + timedelta(days=100),
        46_000,
        "mileage",
    )
    assert next_service(on=on, odometer_km=36_000, per_day=20, settings=settings) == (
        on + timedelta(days=180),
        46_000,
        "date",
    )
