"""The branch directory and the staff roster: reception owns them (the front office knows
its branch and its people) and tells the other services through events."""

import base64
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reception.branch_models import (
    Branch,
    BranchPublic,
    BranchSet,
    StaffMember,
    StaffMemberPublic,
    StaffMemberSet,
    WorkingMember,
    weekday_of,
)
from services.reception.config import Settings
from shared.auth import Role, User
from shared.concurrency import check_if_match
from shared.contracts.reception import BranchChanged, OpeningHours, StaffMemberChanged
from shared.events import utcnow
from shared.outbox import add_event
from shared.pagination import Page, whole
from shared.problems import InvalidInput, NotFound


@dataclass(frozen=True)
class BranchTerms:
    """What reception's own rules take from a branch's record: the settings' values for a
    branch not in the directory yet."""

    time_zone: str
    tax_rate: Decimal
    daily_bays: int
    daily_technician_hours: Decimal


async def terms_of(session: AsyncSession, branch: str, settings: Settings) -> BranchTerms:
    row = await session.get(Branch, branch)
    if row is None:
        return BranchTerms(
            settings.time_zone,
            settings.tax_rate,
            settings.default_bays,
            settings.default_technician_hours,
        )
    return BranchTerms(
        row.time_zone,
        _plain(row.tax_rate),
        row.daily_bays,
        _plain(row.daily_technician_hours),
    )


def may_see(user: User, branch: str) -> bool:
    """A user sees their own branch; the admin (the dealer group's) every branch."""
    return user.branch == branch or Role.admin in user.roles


def _check_reach(user: User, branch: str) -> None:
    if not may_see(user, branch):
        raise NotFound(f"no branch {branch}")  # another branch is not there for this user


# --- the branch ------------------------------------------------------------------------


def _plain(value: Decimal) -> Decimal:
    """As entered, without the column's trailing zeros (0.1300 -> 0.13, 48.00 -> 48)."""
    return Decimal(format(Decimal(value).normalize(), "f"))


def branch_public(row: Branch) -> BranchPublic:
    return BranchPublic(
        code=row.code,
        name=row.name,
        address=row.address,
        time_zone=row.time_zone,
        business_hours=row.business_hours,
        tax_rate=_plain(row.tax_rate),
        daily_bays=row.daily_bays,
        daily_technician_hours=_plain(row.daily_technician_hours),
        follow_up_day=row.follow_up_day,
        targets={k: Decimal(str(v)) for k, v in row.targets.items()},
        changed_by=row.changed_by,
        changed_at=row.changed_at,
        version=row.version,
    )


async def get_branch(session: AsyncSession, code: str, user: User) -> Branch:
    _check_reach(user, code)
    row = await session.get(Branch, code)
    if row is None:
        raise NotFound(f"no branch {code}")
    return row


async def list_branches(session: AsyncSession, user: User) -> Page[BranchPublic]:
    """Bounded by nature: a dealer group has tens of branches, a user sees one."""
    query = select(Branch).order_by(col(Branch.code))
    if Role.admin not in user.roles:
        query = query.where(Branch.code == user.branch)
    rows = (await session.exec(query.limit(1000))).all()
    return whole([branch_public(r) for r in rows])


async def put_branch(
    session: AsyncSession, code: str, body: BranchSet, user: User, *, if_match: str | None
) -> tuple[Branch, bool]:
    """Create the branch, or replace it (`If-Match` required then); writes
    `reception.branch.changed.v1` in the same transaction. Returns (row, created)."""
    _check_reach(user, code)
    row = await session.get(Branch, code, with_for_update=True)
    created = row is None
    fields: dict[str, Any] = {
        "name": body.name,
        "address": body.address,
        "time_zone": body.time_zone,
        "business_hours": {d: h.as_json() for d, h in body.business_hours.items()},
        "tax_rate": body.tax_rate,
        "daily_bays": body.daily_bays,
        "daily_technician_hours": body.daily_technician_hours,
        "follow_up_day": body.follow_up_day,
        "targets": {k: str(v) for k, v in body.targets.items()},
        "changed_by": user.id,
        "changed_at": utcnow(),
    }
    if row is None:
        row = Branch(code=code, **fields)
        session.add(row)
    else:
        check_if_match(if_match, row.version)
        for name, value in fields.items():
            setattr(row, name, value)
    await session.flush()
    await session.refresh(row)
    add_event(
        session,
        BranchChanged(
            branch=row.code,
            version=row.version,
            name=row.name,
            address=row.address,
            time_zone=row.time_zone,
            business_hours={d: OpeningHours(**h) for d, h in row.business_hours.items()},
            tax_rate=_plain(row.tax_rate),
            daily_bays=row.daily_bays,
            daily_technician_hours=_plain(row.daily_technician_hours),
            follow_up_day=row.follow_up_day,
            targets=body.targets,
            changed_by=user.id,
            changed_at=row.changed_at,
        ),
        subject=row.code,
    )
    return row, created


# --- the roster ------------------------------------------------------------------------


def member_public(row: StaffMember) -> StaffMemberPublic:
    return StaffMemberPublic(
        branch=row.branch,
        staff_id=row.staff_id,
        name=row.name,
        roles=row.roles,
        skills=row.skills,
        bay=row.bay,
        working_hours=row.working_hours,
        days_off=[date.fromisoformat(d) for d in row.days_off],
        active=row.active,
        changed_by=row.changed_by,
        changed_at=row.changed_at,
        version=row.version,
    )


async def get_member(session: AsyncSession, branch: str, staff_id: str, user: User) -> StaffMember:
    _check_reach(user, branch)
    row = await session.get(StaffMember, (branch, staff_id))
    if row is None:
        raise NotFound(f"no {staff_id} on the roster of {branch}")
    return row


def _cursor(staff_id: str) -> str:
    return base64.urlsafe_b64encode(staff_id.encode()).decode()


def _after(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor", "not a cursor this service issued") from exc


async def roster(
    session: AsyncSession,
    branch: str,
    user: User,
    *,
    role: Role | None,
    limit: int,
    cursor: str | None,
) -> Page[StaffMemberPublic]:
    """The branch's staff by `staff_id` (left the roster too, `active` false)."""
    _check_reach(user, branch)
    query = select(StaffMember).where(StaffMember.branch == branch)
    if cursor is not None:
        query = query.where(col(StaffMember.staff_id) > _after(cursor))
    rows = list(
        (await session.exec(query.order_by(col(StaffMember.staff_id)).limit(limit + 1))).all()
    )
    if role is not None:  # roles are a JSON list: filtered here (a roster is small)
        rows = [r for r in rows if role.value in r.roles]
    next_cursor = _cursor(rows[limit - 1].staff_id) if len(rows) > limit else None
    return Page(items=[member_public(r) for r in rows[:limit]], next_cursor=next_cursor)


async def put_member(
    session: AsyncSession,
    branch: str,
    staff_id: str,
    body: StaffMemberSet,
    user: User,
    *,
    if_match: str | None,
) -> tuple[StaffMember, bool]:
    """Put a member on the roster, or replace them (`If-Match` required then); writes
    `reception.staff_member.changed.v1`. The branch must be in the directory."""
    _check_reach(user, branch)
    if await session.get(Branch, branch) is None:
        raise NotFound(f"no branch {branch}: put the branch in the directory first")
    row = await session.get(StaffMember, (branch, staff_id), with_for_update=True)
    created = row is None
    fields: dict[str, Any] = {
        "name": body.name,
        "roles": [r.value for r in body.roles],
        "skills": body.skills,
        "bay": body.bay,
        "working_hours": {d: h.as_json() for d, h in body.working_hours.items()},
        "days_off": sorted({d.isoformat() for d in body.days_off}),
        "active": body.active,
        "changed_by": user.id,
        "changed_at": utcnow(),
    }
    if row is None:
        row = StaffMember(branch=branch, staff_id=staff_id, **fields)
        session.add(row)
    else:
        check_if_match(if_match, row.version)
        for name, value in fields.items():
            setattr(row, name, value)
    await session.flush()
    await session.refresh(row)
    add_event(
        session,
        StaffMemberChanged(
            branch=branch,
            staff_id=staff_id,
            version=row.version,
            name=row.name,
            roles=row.roles,
            skills=row.skills,
            bay=row.bay,
            working_hours={d: OpeningHours(**h) for d, h in row.working_hours.items()},
            days_off=[date.fromisoformat(d) for d in row.days_off],
            active=row.active,
            changed_by=user.id,
            changed_at=row.changed_at,
        ),
        subject=f"{branch}/{staff_id}",
    )
    return row, created


async def working_on(
    session: AsyncSession, branch: str, day: date, user: User, *, role: Role | None
) -> Page[WorkingMember]:
    """Who works on `day` (the branch's local day): on the roster, on shift that weekday,
    not off that day; by start of shift. Bounded: one branch's staff."""
    _check_reach(user, branch)
    rows = (
        await session.exec(
            select(StaffMember).where(StaffMember.branch == branch, col(StaffMember.active))
        )
    ).all()
    weekday = weekday_of(day)
    items = [
        WorkingMember(
            staff_id=r.staff_id,
            name=r.name,
            roles=r.roles,
            skills=r.skills,
            bay=r.bay,
            start=r.working_hours[weekday]["start"],
            end=r.working_hours[weekday]["end"],
        )
        for r in rows
        if r.works_on(day) and (role is None or role.value in r.roles)
    ]
    items.sort(key=lambda m: (m.start, m.staff_id))
    return whole(items)
