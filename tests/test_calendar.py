"""The branch calendar (shared.calendar): China's public holidays and make-up working days
(调休) from the pinned `holidays` release, a notice entered in the settings for a year the
release does not hold yet, a branch's own closing days, and the rules that use it in
followup, records' lending and reports."""

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from services.followup.config import Settings as FollowupSettings
from services.followup.reminders import next_service
from services.followup.rules import visit_due_at, visit_expires_at
from services.followup.service import business_hours
from services.records import lending
from services.records.models import Loan
from shared.calendar import BranchCalendar, branch_calendar, region_data_years
from shared.settings import ServiceSettings
from tests.harness import NatsServer, auth
from tests.test_records_files import RecordsClient, runtime_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
CN = BranchCalendar.of("Asia/Shanghai")


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


# --- 2026, as the State Council's notice has it (国办发明电〔2025〕7号) ------------------


def test_spring_festival_2026_nine_days_off_and_two_saturdays_worked() -> None:
    # 2月15日至23日放假调休，共9天；2月14日（周六）、2月28日（周六）上班。
    assert [d for d in days(date(2026, 2, 13), date(2026, 3, 1)) if CN.is_workday(d)] == [
        date(2026, 2, 13),  # Friday
        date(2026, 2, 14),  # Saturday, worked
        *days(date(2026, 2, 24), date(2026, 2, 28)),  # Tuesday to Saturday (worked)
    ]
    # The month's working days: 20 weekdays, less six taken, plus the two Saturdays.
    assert CN.count_workdays(date(2026, 2, 1), date(2026, 2, 28)) == 16


def test_national_day_2026_seven_days_off_a_sunday_and_a_saturday_worked() -> None:
    # 10月1日至7日放假调休，共7天；9月20日（周日）、10月10日（周六）上班。
    assert CN.is_workday(date(2026, 9, 20))
    assert not CN.is_workday(date(2026, 9, 19))
    assert not any(CN.is_workday(d) for d in days(date(2026, 10, 1), date(2026, 10, 7)))
    assert CN.is_workday(date(2026, 10, 8)) and CN.is_workday(date(2026, 10, 10))
    assert not CN.is_workday(date(2026, 10, 11))
    assert CN.add_workdays(date(2026, 9, 30), 1) == date(2026, 10, 8)


def test_a_weekday_rule_would_get_both_weeks_wrong() -> None:
    wrong = [
        d
        for d in days(date(2026, 2, 1), date(2026, 10, 31))
        if CN.is_workday(d) != (d.weekday() < 5)
    ]
    assert {date(2026, 2, 14), date(2026, 2, 16), date(2026, 9, 20), date(2026, 10, 7)} <= set(
        wrong
    )


def test_follow_up_calls_skip_the_festival_and_take_the_worked_saturday() -> None:
    # Delivered Wednesday 11 February: day three is Saturday the 14th, a working day.
    assert visit_due_at(local(2026, 2, 11, 10, 0), CN, due_day=3) == local(2026, 2, 14, 10, 0)
    # Delivered the day after: day three is in the festival, the first call on the 24th.
    assert visit_due_at(local(2026, 2, 12, 10, 0), CN, due_day=3) == local(2026, 2, 24, 9, 0)
    # A call nobody answered on the last day before National Day is tried on 8 October.
    assert CN.place(local(2026, 9, 30, 19, 0)) == local(2026, 10, 8, 9, 0)
    assert CN.place(local(2026, 9, 20, 11, 0)) == local(2026, 9, 20, 11, 0)  # worked Sunday
    # The window's last day in the holiday: open until the first working day's closing.
    assert visit_expires_at(local(2026, 9, 17, 10, 0), CN, window_days=15) == local(
        2026, 10, 8, 18, 0
    )


def test_a_service_reminder_due_in_the_holiday_is_sent_after_it() -> None:
    settings = FollowupSettings(service_interval_days=200, service_interval_km=100_000)
    due_on, _, reason = next_service(
        on=date(2026, 3, 15), odometer_km=10_000, per_day=40, settings=settings
    )
    assert (due_on, reason) == (date(2026, 10, 1), "date")
    assert CN.next_workday(due_on) == date(2026, 10, 8)


# --- 2027: the notice is not in the pinned release yet -----------------------------------


def test_the_pinned_release_holds_the_2026_notice_and_not_2027s() -> None:
    # The tripwire: when this fails, the `holidays` release was upgraded with a new year's
    # notice. Check its days against the notice, add that year's weeks to this file as
    # 2026's are, and remove the year's `<PREFIX>_CALENDAR_HOLIDAYS` / `_WORKDAYS` entries
    # from every service's settings (README: the branch calendar).
    assert region_data_years("CN", [2025, 2026, 2027]) == [2025, 2026]


def test_2027_statutory_days_off_without_a_notice() -> None:
    # By law (2025 revision): 除夕 to 初三 (5-8 February) and 1-3 October are days off
    # whatever the notice arranges around them.
    assert not any(CN.is_workday(d) for d in days(date(2027, 2, 5), date(2027, 2, 8)))
    assert not any(CN.is_workday(d) for d in days(date(2027, 10, 1), date(2027, 10, 3)))
    assert CN.is_workday(date(2027, 2, 4)) and CN.is_workday(date(2027, 10, 8))


def test_2027_notice_entered_in_the_settings_moves_the_days() -> None:
    # The days here stand for what a notice would say, to show the mechanism: a weekday
    # given as a holiday is off, a weekend day given as a working day is worked.
    settings = ServiceSettings(
        calendar_holidays={
            "CN": [date(2027, 2, 11), date(2027, 2, 12), date(2027, 10, 6), date(2027, 10, 7)]
        },
        calendar_workdays={"CN": [date(2027, 2, 20), date(2027, 9, 26), date(2027, 10, 9)]},
    )
    calendar = branch_calendar(settings, "BR01", "Asia/Shanghai")
    assert not calendar.is_workday(date(2027, 2, 11)) and not calendar.is_workday(date(2027, 2, 12))
    assert calendar.is_workday(date(2027, 2, 20))  # a Saturday
    assert calendar.is_workday(date(2027, 9, 26)) and calendar.is_workday(date(2027, 10, 9))
    assert calendar.add_workdays(date(2027, 9, 30), 1) == date(2027, 10, 8)
    assert CN.is_workday(date(2027, 2, 11))  # without the notice, a Thursday like any


# --- the branch's own days and hours, and its region ---------------------------------------


def test_a_branch_closing_day_and_opening_hours_from_the_settings() -> None:
    settings = FollowupSettings(
        calendar_closing_days={"BR01": [date(2026, 12, 24)]},
        business_hours={"BR01": (8, 20)},
    )
    br01, br02 = business_hours(settings, "BR01"), business_hours(settings, "BR02")
    assert not br01.is_workday(date(2026, 12, 24)) and br02.is_workday(date(2026, 12, 24))
    assert br01.place(local(2026, 12, 23, 19, 0)) == local(2026, 12, 23, 19, 0)
    assert br02.place(local(2026, 12, 23, 19, 0)) == local(2026, 12, 24, 9, 0)
    assert br01.place(local(2026, 12, 23, 21, 0)) == local(2026, 12, 25, 8, 0)


def test_settings_read_the_calendar_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOLLOWUP_CALENDAR_CLOSING_DAYS", '{"*": ["2026-12-31"]}')
    monkeypatch.setenv("FOLLOWUP_CALENDAR_BRANCH_REGIONS", '{"HK01": "HK"}')
    settings = FollowupSettings()
    assert not business_hours(settings, "BR07").is_workday(date(2026, 12, 31))
    hong_kong = business_hours(settings, "HK01")
    # Hong Kong has its own holidays and no 调休: the mainland's days off in exchange for
    # worked weekends are working days there.
    assert hong_kong.is_workday(date(2026, 2, 23)) and hong_kong.is_workday(date(2026, 10, 6))
    assert not business_hours(settings, "BR07").is_workday(date(2026, 2, 23))
    with pytest.raises(ValueError, match="opens"):
        ServiceSettings(business_hours={"BR01": (18, 9)})


# --- in records: a loan's due date, a report's working days --------------------------------


@pytest_asyncio.fixture
async def records(database_url: str, nats_server: NatsServer, tmp_path):
    async with RecordsClient(
        database_url, nats_server, tmp_path / "files", calendar_closing_days={"BR01": [CLOSED]}
    ) as client:
        yield client


# Past today's date in any clock leg: the branch's own closing day is set in the settings.
CLOSED = date.today() + timedelta(days=400)


@pytest.mark.asyncio
@pytest.mark.store
async def test_a_loan_due_on_a_closing_day_is_due_the_next_working_day(records) -> None:
    clerk = auth("records_clerk")
    r = await records.post("/lending/items", headers=clerk, json={"title": "ECU flashing guide"})
    item = r.json()["id"]
    r = await records.post("/lending/loans", headers=auth("technician"), json={"item_id": item})
    assert r.status_code == 201, r.text
    loan = r.json()
    r = await records.post(
        f"/lending/loans/{loan['id']}/approve",
        headers={**clerk, "If-Match": loan["etag"]},
        json={"due_on": CLOSED.isoformat()},
    )
    assert r.status_code == 200, r.text
    settings = runtime_of(records).settings
    calendar = branch_calendar(settings, "BR01", settings.zone_of("BR01"))
    due = date.fromisoformat(r.json()["due_on"])
    assert due == calendar.next_workday(CLOSED + timedelta(days=1)) and due > CLOSED
    async with runtime_of(records).db.reader() as session:
        row = await session.get(Loan, uuid.UUID(loan["id"]))
        assert row is not None and row.due_on == due
    assert lending.today(settings, "BR01") < CLOSED


@pytest.mark.asyncio
@pytest.mark.store
async def test_a_report_counts_the_periods_working_days(records) -> None:
    r = await records.get(
        "/reports/kpis",
        params={"period": "month", "on": "2026-02-01"},
        headers=auth("manager"),
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["working_days"] == 16
    workdays = {row["day"]: row["workday"] for row in report["daily"]}
    assert workdays["2026-02-14"] is True and workdays["2026-02-16"] is False
    r = await records.get(
        "/reports/kpis",
        params={"period": "custom", "from_on": CLOSED.isoformat(), "to_on": CLOSED.isoformat()},
        headers=auth("manager"),
    )
    assert r.json()["working_days"] == 0  # the branch's own closing day
