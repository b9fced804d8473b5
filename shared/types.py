"""Types every service shares: column types that behave the same on SQLite and PostgreSQL,
and the dates and times a request may carry."""

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema
from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stored in UTC, always read back timezone-aware (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store times in UTC with tzinfo")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The years a workshop's request can mean. Beyond them a day's arithmetic (the next day,
# midnight in the branch's zone, a month's end) overflows Python's dates near years 1 and
# 9999, and nothing in the workshop happens there anyway.
FIRST_YEAR, LAST_YEAR = 1900, 2199

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_ISO_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)",
    re.ASCII,
)


def _iso_day(value: Any) -> Any:
    # pydantic's lax mode reads a number, or a string of digits, as seconds since 1970.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        return value
    raise ValueError("give a date as YYYY-MM-DD")


def _iso_instant(value: Any) -> Any:
    # Without its offset a time means a different instant in every zone, and a naive one
    # reached the database before anything refused it.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str) and _ISO_INSTANT.fullmatch(value):
        return value
    raise ValueError("give a time with its offset, e.g. 2026-12-01T09:30+08:00 or 01:30Z")


def _in_years(value: date) -> Any:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must lie within the years {FIRST_YEAR} to {LAST_YEAR}")
    return value


# Every date and time a request carries (query, path or body) is one of these: an ISO
# string, never a number, a time with its offset, within FIRST_YEAR..LAST_YEAR
# (tests/test_input_dates.py holds every route to it).
# The OpenAPI says as much: a client (and a contract test) sees the pattern and the years.
_YEARS = f"years {FIRST_YEAR} to {LAST_YEAR}"
Day = Annotated[
    date,
    BeforeValidator(_iso_day),
    AfterValidator(_in_years),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "pattern": "^" + _ISO_DAY.pattern + "$",
            "description": f"YYYY-MM-DD, {_YEARS}",
        }
    ),
]
Instant = Annotated[
    datetime,
    BeforeValidator(_iso_instant),
    AfterValidator(_in_years),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": "^" + _ISO_INSTANT.pattern + "$",
            "description": f"ISO 8601 with its offset (Z, +08:00), {_YEARS}",
        }
    ),
]
