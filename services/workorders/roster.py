"""The branch's staff roster and time zone as reception announces them, kept here so that
dispatch offers and accepts only technicians of the branch who work that day.

The rule, while a branch has no roster here (reception never announced a technician of
it): anyone may be dispatched, as before the directory existed. Once it has one, a job
goes only to a technician on it (active, holding the `technician` role) who works the
job's day: the planned start's day, or today, in the branch's zone; on shift that
weekday and not off that day. Otherwise 422 naming `technician_id`."""

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import JSON, Column, String
from sqlmodel import Field, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.workorders.models import Base
from shared.branch_zones import BranchZoneColumns
from shared.consumers import Subscribers
from shared.contracts.reception import StaffMemberChanged
from shared.pagination import Page, whole
from shared.problems import InvalidInput

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TECHNICIAN = "technician"


class BranchZone(Base, BranchZoneColumns, table=True):
    """A branch's time zone from `reception.branch.changed.v1`."""

    __tablename__ = "branch_zone"


class RosterMember(Base, table=True):
    """A member of a branch's staff from `reception.staff_member.changed.v1` (the newest
    version seen)."""

    __tablename__ = "roster_member"

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
    version: int

    def works_on(self, day: date) -> bool:
        return (
            self.active
            and WEEKDAYS[day.weekday()] in self.working_hours
            and day.isoformat() not in self.days_off
        )


class WorkingTechnician(BaseModel):
    """A technician who works on the day asked: whom dispatch may offer a job."""

    technician_id: str
    name: str
    skills: list[str]
    bay: str | None
    start: str
    end: str


subscriber = Subscribers()


@subscriber(StaffMemberChanged, durable="workorders__roster_member")
async def keep_member(event: StaffMemberChanged, session: AsyncSession) -> None:
    """The member as announced, unless a newer version is kept (repeats, stragglers)."""
    row = await session.get(RosterMember, (event.branch, event.staff_id), with_for_update=True)
    if row is not None and row.version >= event.version:
        return
    fields: dict[str, Any] = {
        "name": event.name,
        "roles": event.roles,
        "skills": event.skills,
        "bay": event.bay,
        "working_hours": {d: h.model_dump() for d, h in event.working_hours.items()},
        "days_off": sorted(d.isoformat() for d in event.days_off),
        "active": event.active,
        "version": event.version,
    }
    if row is None:
        session.add(RosterMember(branch=event.branch, staff_id=event.staff_id, **fields))
    else:
        for name, value in fields.items():
            setattr(row, name, value)
    await session.flush()


async def _technicians(session: AsyncSession, branch: str) -> list[RosterMember]:
    rows = (await session.exec(select(RosterMember).where(RosterMember.branch == branch))).all()
    return [r for r in rows if TECHNICIAN in r.roles]


def day_of(at: datetime, zone: str) -> date:
    return at.astimezone(ZoneInfo(zone)).date()


async def check_dispatch(session: AsyncSession, branch: str, technician_id: str, day: date) -> None:
    """Refuse a technician who is not on the branch's roster working `day` (see the
    module's rule: a branch with no roster here lets anyone be dispatched)."""
    technicians = await _technicians(session, branch)
    if not technicians:
        return
    member = next((t for t in technicians if t.staff_id == technician_id), None)
    if member is None or not member.active:
        raise InvalidInput(
            "technician_id", f"{technician_id} is no technician on the roster of {branch}"
        )
    if not member.works_on(day):
        raise InvalidInput(
            "technician_id",
            f"{technician_id} does not work on {day.isoformat()}",
            day=day.isoformat(),
        )


async def working_technicians(
    session: AsyncSession, branch: str, day: date
) -> Page[WorkingTechnician]:
    """The branch's technicians working `day`, by start of shift. Bounded: one roster."""
    weekday = WEEKDAYS[day.weekday()]
    items = [
        WorkingTechnician(
            technician_id=t.staff_id,
            name=t.name,
            skills=t.skills,
            bay=t.bay,
            start=t.working_hours[weekday]["start"],
            end=t.working_hours[weekday]["end"],
        )
        for t in await _technicians(session, branch)
        if t.works_on(day)
    ]
    items.sort(key=lambda t: (t.start, t.technician_id))
    return whole(items)
