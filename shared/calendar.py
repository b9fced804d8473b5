"""A branch's working calendar: which days it works and when it is open, one for every rule
that counts working days or business hours in any service.

A working day is one of the branch's region (a country, or a country and subdivision
such as `CN`, `HK`, `DE-BY`), as the `holidays` package knows it: in mainland China the
State Council's public holidays *and* their make-up working days (调休: a Saturday or a
Sunday worked in exchange for a weekday off), which a `weekday() < 5` rule gets wrong twice
a year at least. On top of it come the region's notice for a year the installed `holidays`
release does not hold yet (`calendar_holidays`, `calendar_workdays`) and the branch's own
closing days. Opening hours are the branch's, on its local clock."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from shared.settings import ServiceSettings

# A year of the region's days, made once per process: `holidays` builds a year's set in a
# few milliseconds, and the follow-up timers ask about a day many times a second.
_YEARS_CACHED = 64


@lru_cache(maxsize=_YEARS_CACHED)
def _region_year(region: str, year: int) -> Any:
    import holidays

    country, _, subdivision = region.partition("-")
    return holidays.country_holidays(country, subdiv=subdivision or None, years=year)


def region_is_workday(region: str, day: date) -> bool:
    """The region's own answer, from the installed `holidays` release."""
    return bool(_region_year(region, day.year).is_working_day(day))


def region_is_holiday(region: str, day: date) -> bool:
    """A public holiday of the region, or a weekday given off in exchange for a worked
    weekend day (both are in the `holidays` release's list; ordinary weekends are not)."""
    return day in _region_year(region, day.year)


def region_data_years(region: str, years: Iterable[int]) -> list[int]:
    """Of `years`, those for which the installed release holds the region's published
    make-up working days (in China: the State Council's notice for that year)."""
    return [
        year
        for year in years
        if any(d.year == year for d in _region_year(region, year).weekend_workdays)
    ]


@dataclass(frozen=True)
class BranchCalendar:
    """The working days and opening hours of one branch."""

    zone: ZoneInfo
    region: str = "CN"
    opens: time = time(9)
    closes_hour: int = 18
    # The region's notice when the installed `holidays` release does not hold it yet.
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    # The branch's own: stocktaking, a move, a staff outing.
    closing_days: frozenset[date] = field(default_factory=frozenset)
    # Answers per day, kept by this calendar: a projection pass asks about the same few
    # days for every job of a branch (400 jobs across a holiday: 40 ms without, under 10 with).
    _days: dict[tuple[bool, date], bool] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    _openings: dict[date, datetime] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    _closings: dict[date, datetime] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @classmethod
    def of(
        cls,
        zone: str,
        opens_hour: int = 9,
        closes_hour: int = 18,
        *,
        region: str = "CN",
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        closing_days: Iterable[date] = (),
    ) -> "BranchCalendar":
        return cls(
            ZoneInfo(zone),
            region.upper(),
            time(opens_hour),
            closes_hour,
            frozenset(holidays),
            frozenset(workdays),
            frozenset(closing_days),
        )

    # --- days ----------------------------------------------------------------------

    def is_workday(self, day: date) -> bool:
        known = self._days.get((False, day))
        if known is None:
            known = self._days[(False, day)] = self._is_workday(day)
        return known

    def _is_workday(self, day: date) -> bool:
        if day in self.closing_days or day in self.holidays:
            return False
        if day in self.workdays:
            return True
        return region_is_workday(self.region, day)

    def _region_off(self, day: date) -> bool:
        """Not worked by the region's rules and notice (the branch's own days aside)."""
        if day in self.holidays:
            return True
        if day in self.workdays:
            return False
        return not region_is_workday(self.region, day)

    def is_open(self, day: date) -> bool:
        """Whether the branch takes customers that day (appointments): every day but its
        own closing days and a public holiday's whole break. A workshop takes cars on an
        ordinary weekend; the weekend days a holiday break runs over (国庆 1-7 October,
        the Spring Festival's nine days) are part of the break as the notice counts it,
        and a make-up working Saturday or Sunday is open like any working day."""
        known = self._days.get((True, day))
        if known is None:
            known = self._days[(True, day)] = self._is_open(day)
        return known

    def _is_open(self, day: date) -> bool:
        if day in self.closing_days:
            return False
        if not self._region_off(day):
            return True
        # The run of days off around `day`: a break if one of them is a holiday.
        run = [day]
        for step in (-1, 1):
            probe = day + timedelta(days=step)
            while self._region_off(probe) and abs((probe - day).days) < 31:
                run.append(probe)
                probe += timedelta(days=step)
        return not any(d in self.holidays or region_is_holiday(self.region, d) for d in run)

    def next_open_day(self, day: date) -> date:
        """`day` if the branch is open then, else the first day after it that it is."""
        for _ in range(366):
            if self.is_open(day):
                return day
            day += timedelta(days=1)
        raise ValueError(f"no open day within a year of {day}")

    def next_workday(self, day: date) -> date:
        """`day` if the branch works then, else the first working day after it."""
        for _ in range(366):
            if self.is_workday(day):
                return day
            day += timedelta(days=1)
        raise ValueError(f"no working day within a year of {day}")

    def add_workdays(self, day: date, count: int) -> date:
        """The `count`-th working day after `day` (0: `day` or the next working day)."""
        day = self.next_workday(day)
        for _ in range(count):
            day = self.next_workday(day + timedelta(days=1))
        return day

    def count_workdays(self, first: date, last: date) -> int:
        """Working days from `first` to `last`, both included."""
        return sum(
            self.is_workday(first + timedelta(days=i)) for i in range((last - first).days + 1)
        )

    # --- hours on the branch's clock ------------------------------------------------

    def opening(self, day: date) -> datetime:
        known = self._openings.get(day)
        if known is None:
            known = self._openings[day] = datetime.combine(day, self.opens, self.zone)
        return known

    def closing(self, day: date) -> datetime:
        known = self._closings.get(day)
        if known is None:
            midnight = datetime.combine(day, time(0), self.zone)
            known = self._closings[day] = midnight + timedelta(hours=self.closes_hour)
        return known

    def place(self, at: datetime, *, open_days: bool = False) -> datetime:
        """The first moment at or after `at` within opening hours of a working day (with
        `open_days`: of a day the branch is open, ordinary weekends too), in UTC."""
        return self._place_local(at.astimezone(self.zone), open_days).astimezone(UTC)

    def _place_local(self, local: datetime, open_days: bool) -> datetime:
        day = local.date()
        if (self.is_open if open_days else self.is_workday)(day):
            opening = self.opening(day)
            if local < opening:
                return opening
            if local < self.closing(day):
                return local
        return self._next_opening(day, open_days)

    def _next_opening(self, day: date, open_days: bool) -> datetime:
        """The opening of the first working (or open) day after `day`, on the local clock."""
        works = self.is_open if open_days else self.is_workday
        for _ in range(366):
            day += timedelta(days=1)
            if works(day):
                return self.opening(day)
        raise ValueError(f"no working day within a year of {day}")

    def add_working_time(
        self, at: datetime, duration: timedelta, *, open_days: bool = False
    ) -> datetime:
        """`at` plus `duration` of the branch's opening hours on its working days (returned
        in UTC): work left at closing time goes on at the next working day's opening, past
        weekends, holidays and closing days (with `open_days`: on the days the branch is
        open, `is_open`, so ordinary weekends count). No time added, `at` is kept."""
        if duration <= timedelta(0):
            return at.astimezone(UTC)
        left = duration
        # On the local clock throughout (one zone conversion each way): a projection pass
        # asks this for every job of a branch.
        local = self._place_local(at.astimezone(self.zone), open_days)
        for _ in range(3660):  # ten years of working days: a bound, never reached
            day = local.date()
            closing = self.closing(day)
            room = closing - local
            if left <= room:
                return (local + left).astimezone(UTC)
            left -= room
            local = self._next_opening(day, open_days)
        raise ValueError(f"{duration} of working time does not end within ten years of {at}")

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def day_start(self, day: date) -> datetime:
        """Local midnight starting `day`, in UTC."""
        return datetime.combine(day, time(0), self.zone).astimezone(UTC)

    def local_day_bounds(self, at: datetime) -> tuple[datetime, datetime]:
        """Start and end (UTC) of the local calendar day containing `at`."""
        day = self.local_date(at)
        return self.day_start(day), self.day_start(day + timedelta(days=1))


def branch_calendar(settings: "ServiceSettings", branch: str, zone: str) -> BranchCalendar:
    """The branch's calendar from the service's settings (`calendar_*`, `business_*_hour`),
    in its time zone `zone`."""
    region = settings.calendar_branch_regions.get(branch, settings.calendar_region)
    return BranchCalendar.of(
        zone,
        *settings.business_hours.get(
            branch, (settings.business_opens_hour, settings.business_closes_hour)
        ),
        region=region,
        holidays=settings.calendar_holidays.get(region, ()),
        workdays=settings.calendar_workdays.get(region, ()),
        closing_days=[
            *settings.calendar_closing_days.get("*", ()),
            *settings.calendar_closing_days.get(branch, ()),
        ],
    )
