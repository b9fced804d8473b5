"""The branch directory and its staff roster: tables and their input/output schemas."""

from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic import Field as PField
from sqlalchemy import JSON, Column, Integer, Numeric, String
from sqlmodel import Field

from services.reception.models import Base, _timestamp
from shared.auth import Role
from shared.types import Day

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Roles a member of staff works in (a screen and the ERP are machines, not people).
STAFF_ROLES = frozenset(Role) - {Role.screen, Role.erp}

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
Skill = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
TargetName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


def weekday_of(day: date) -> str:
    return WEEKDAYS[day.weekday()]


class Hours(BaseModel):
    """Opening hours or a shift on the branch's local clock, `HH:MM`; start before end."""

    model_config = ConfigDict(extra="forbid")

    start: time
    end: time

    @model_validator(mode="after")
    def _start_before_end(self) -> "Hours":
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self

    def as_json(self) -> dict[str, str]:
        return {"start": self.start.strftime("%H:%M"), "end": self.end.strftime("%H:%M")}


def _weekdays(value: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(value) - set(WEEKDAYS))
    if unknown:
        raise ValueError(f"weekdays are {', '.join(WEEKDAYS)}; not {', '.join(unknown)}")
    return value


# --- the branch ------------------------------------------------------------------------


_BRANCH_VERSION = Column("version", Integer, nullable=False, server_default="1")


class Branch(Base, table=True):
    """One branch of the directory: everything the services need to know about it."""

    __tablename__ = "branch"

    code: str = Field(sa_type=String(32), primary_key=True)
    name: str = Field(sa_type=String(100))
    address: str = Field(default="", sa_type=String(300))
    time_zone: str = Field(sa_type=String(64))
    business_hours: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    tax_rate: Decimal = Field(sa_type=Numeric(5, 4))
    daily_bays: int
    daily_technician_hours: Decimal = Field(sa_type=Numeric(7, 2))
    follow_up_day: int
    targets: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    changed_by: str = Field(sa_type=String(64))
    changed_at: datetime = _timestamp()
    version: int = Field(default=1, sa_column=_BRANCH_VERSION)

    __mapper_args__ = {"version_id_col": _BRANCH_VERSION}


class BranchSet(BaseModel):
    """The whole branch record (`PUT` replaces it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "浦东服务中心",
                    "address": "上海市浦东新区张江路 100 号",
                    "time_zone": "Asia/Shanghai",
                    "business_hours": {
                        d: {"start": "08:30", "end": "18:00"}
                        for d in ("mon", "tue", "wed", "thu", "fri", "sat")
                    },
                    "tax_rate": "0.13",
                    "daily_bays": 6,
                    "daily_technician_hours": "48",
                    "follow_up_day": 3,
                    "targets": {"on_time_delivery": "0.95", "major_complaint_rate": "0.01"},
                }
            ]
        },
    )

    name: Text
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""
    time_zone: str = PField(max_length=64)
    business_hours: dict[str, Hours] = PField(default_factory=dict)
    tax_rate: Annotated[Decimal, PField(ge=0, le=1, decimal_places=4)]
    daily_bays: StrictInt = PField(ge=0, le=200)
    daily_technician_hours: Annotated[Decimal, PField(ge=0, le=5000, decimal_places=2)]
    # The day after delivery the follow-up call is due (the window ends on day 15).
    follow_up_day: StrictInt = PField(default=3, ge=1, le=15)
    targets: dict[TargetName, Annotated[Decimal, PField(ge=0, le=1_000_000)]] = PField(
        default_factory=dict, max_length=20
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is no IANA time zone (e.g. Asia/Shanghai)") from exc
        return value

    _weekdays = field_validator("business_hours")(_weekdays)


class BranchPublic(BaseModel):
    code: str
    name: str
    address: str
    time_zone: str
    business_hours: dict[str, dict[str, str]]
    tax_rate: Decimal
    daily_bays: int
    daily_technician_hours: Decimal
    follow_up_day: int
    targets: dict[str, Decimal]
    changed_by: str
    changed_at: datetime
    version: int


# --- the roster ------------------------------------------------------------------------


_MEMBER_VERSION = Column("version", Integer, nullable=False, server_default="1")


class StaffMember(Base, table=True):
    """A person on a branch's roster. `staff_id` is the `sub` of their token: the id a job
    is dispatched to and a clock is opened by."""

    __tablename__ = "staff_member"

    branch: str = Field(sa_type=String(32), primary_key=True)
    staff_id: str = Field(sa_type=String(64), primary_key=True)
    name: str = Field(sa_type=String(100))
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    skills: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    bay: str | None = Field(default=None, sa_type=String(32))
    working_hours: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    days_off: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    changed_by: str = Field(sa_type=String(64))
    changed_at: datetime = _timestamp()
    version: int = Field(default=1, sa_column=_MEMBER_VERSION)

    __mapper_args__ = {"version_id_col": _MEMBER_VERSION}

    def works_on(self, day: date) -> bool:
        """On the roster, on shift that weekday and not off that day."""
        return (
            self.active
            and weekday_of(day) in self.working_hours
            and day.isoformat() not in self.days_off
        )


class StaffMemberSet(BaseModel):
    """A member of staff as a whole (`PUT` creates or replaces them)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "李师傅",
                    "roles": ["technician"],
                    "skills": ["brakes", "ev-high-voltage"],
                    "bay": "B3",
                    "working_hours": {
                        d: {"start": "08:30", "end": "17:30"}
                        for d in ("mon", "tue", "wed", "thu", "fri")
                    },
                    "days_off": ["2026-12-24"],
                    "active": True,
                }
            ]
        },
    )

    name: Text
    roles: list[Role] = PField(min_length=1, max_length=len(STAFF_ROLES))
    skills: list[Skill] = PField(default_factory=list, max_length=30)
    bay: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)] | (
        None
    ) = None
    working_hours: dict[str, Hours] = PField(default_factory=dict)
    days_off: list[Day] = PField(default_factory=list, max_length=366)
    active: StrictBool = True

    @field_validator("roles")
    @classmethod
    def _people_roles(cls, value: list[Role]) -> list[Role]:
        machines = sorted(r.value for r in value if r not in STAFF_ROLES)
        if machines:
            raise ValueError(f"{', '.join(machines)} is no role a person works in")
        if len(set(value)) != len(value):
            raise ValueError("each role once")
        return value

    _weekdays = field_validator("working_hours")(_weekdays)


class StaffMemberPublic(BaseModel):
    branch: str
    staff_id: str
    name: str
    roles: list[str]
    skills: list[str]
    bay: str | None
    working_hours: dict[str, dict[str, str]]
    days_off: list[date]
    active: bool
    changed_by: str
    changed_at: datetime
    version: int


class WorkingMember(BaseModel):
    """Who works on a day: the member and that day's shift."""

    staff_id: str
    name: str
    roles: list[str]
    skills: list[str]
    bay: str | None
    start: str
    end: str
