"""Lending (借阅): request, the clerk's approval, hand-out, return, overdue, lost.

The loan's life is one transition table; every change goes through `transition`. An item
is held by at most one loan from approval until it comes back: the rule is checked here
and enforced by the unique partial index `ux_loan_open_item`, so two clerks approving at
the same moment cannot both succeed. Due dates are the branch's local days
(`Settings.zone_of`): a loan due today is overdue from its branch's midnight.
"""

import asyncio
import logging
import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlmodel import and_, col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.records.config import Settings
from services.records.models import (
    LendingItem,
    LendingItemCreate,
    LibraryDocument,
    Loan,
    LoanAction,
    LoanPublic,
    LoanStatus,
    ReturnCondition,
)
from shared import audit
from shared.auth import Role, User
from shared.calendar import branch_calendar
from shared.concurrency import check_if_match, etag
from shared.contracts.records import LoanOverdue
from shared.events import utcnow
from shared.outbox import add_event
from shared.pagination import after, page
from shared.problems import Conflict, Forbidden, InvalidInput, NotFound

if TYPE_CHECKING:
    from shared.db import Database
    from shared.service import Runtime

log = logging.getLogger(__name__)


class LoanAct(StrEnum):
    approve = "approve"
    reject = "reject"
    cancel = "cancel"
    hand_out = "hand-out"
    return_ = "return"
    report_lost = "report-lost"


S, A = LoanStatus, LoanAct
TRANSITIONS: dict[tuple[LoanStatus, LoanAct], LoanStatus] = {
    (S.requested, A.approve): S.approved,
    (S.requested, A.reject): S.rejected,
    (S.requested, A.cancel): S.cancelled,
    (S.approved, A.cancel): S.cancelled,
    (S.approved, A.hand_out): S.out,
    (S.out, A.return_): S.returned,
    (S.out, A.report_lost): S.lost,
}
# What the borrower may do themselves; everything else is the clerk's.
BORROWER_ACTS = {A.cancel}
CLERK_ROLES = (Role.records_clerk, Role.admin)


def next_status(status: LoanStatus, act: LoanAct) -> LoanStatus:
    try:
        return TRANSITIONS[(status, act)]
    except KeyError:
        raise Conflict(f"a loan that is {status.value} cannot {act.value}") from None


def today(settings: Settings, branch: str) -> date:
    """The branch's date now."""
    return datetime.now(ZoneInfo(settings.zone_of(branch))).date()


def public(loan: Loan, *, on: date) -> LoanPublic:
    """The loan as shown, overdue when it is out past its due date on the branch's `on`."""
    overdue = loan.status == S.out and loan.due_on is not None and loan.due_on < on
    return LoanPublic.model_validate(
        {**loan.model_dump(), "overdue": overdue, "etag": etag(loan.version)}
    )


async def add_item(session: AsyncSession, body: LendingItemCreate, by: User) -> LendingItem:
    if body.document_id is not None:
        document = await session.get(LibraryDocument, body.document_id)
        if document is None or document.branch not in (None, by.branch):
            raise InvalidInput("document_id", "no such library document")
    item = LendingItem(**body.model_dump(), branch=by.branch, created_at=utcnow())
    session.add(item)
    await session.flush()
    return item


async def get_item(session: AsyncSession, item_id: uuid.UUID, by: User) -> LendingItem:
    item = await session.get(LendingItem, item_id)
    if item is None or item.branch != by.branch:
        raise NotFound(f"no lending item {item_id}")
    return item


async def request(
    session: AsyncSession, settings: Settings, item_id: uuid.UUID, purpose: str, by: User
) -> LoanPublic:
    try:
        item = await get_item(session, item_id, by)
    except NotFound as exc:
        raise InvalidInput("item_id", "no such item in your branch") from exc
    if item.lost_at is not None:
        raise Conflict("this item is recorded as lost")
    loan = Loan(
        item_id=item.id,
        branch=by.branch,
        status=S.requested,
        borrower_id=by.id,
        borrower_name=by.name,
        purpose=purpose,
        requested_at=utcnow(),
    )
    session.add(loan)
    await session.flush()
    return public(loan, on=today(settings, loan.branch))


async def get_loan(session: AsyncSession, loan_id: uuid.UUID, by: User) -> Loan:
    loan = await session.get(Loan, loan_id)
    if loan is None or loan.branch != by.branch:
        raise NotFound(f"no loan {loan_id}")
    if not by.has(*CLERK_ROLES) and loan.borrower_id != by.id:
        raise NotFound(f"no loan {loan_id}")
    return loan


async def transition(
    session: AsyncSession,
    settings: Settings,
    loan_id: uuid.UUID,
    act: LoanAct,
    body: LoanAction,
    by: User,
    if_match: str | None,
) -> LoanPublic:
    loan = await get_loan(session, loan_id, by)
    if not by.has(*CLERK_ROLES) and not (act in BORROWER_ACTS and loan.borrower_id == by.id):
        raise Forbidden(f"only the records clerk may {act.value} a loan")
    check_if_match(if_match, loan.version)
    new = next_status(LoanStatus(loan.status), act)
    now = utcnow()
    day = today(settings, loan.branch)
    item = await session.get(LendingItem, loan.item_id)
    assert item is not None
    if act == A.approve:
        if body.due_on is None:
            raise InvalidInput("due_on", "an approval sets the due date")
        if body.due_on < day:
            raise InvalidInput("due_on", f"is in the past (today is {day} in the branch)")
        # Due on a day the branch is closed (a weekend that is no make-up working day, a
        # public holiday, its own closing day): due the next day it opens, when the
        # borrower can bring it back.
        calendar = branch_calendar(settings, loan.branch, settings.zone_of(loan.branch))
        due_on = calendar.next_workday(body.due_on)
        if item.lost_at is not None:
            raise Conflict("this item is recorded as lost")
        held = (
            await session.exec(
                select(Loan.id).where(
                    Loan.item_id == loan.item_id,
                    col(Loan.status).in_([S.approved, S.out]),
                )
            )
        ).first()
        if held is not None:
            raise Conflict("the item is already promised or out on another loan", loan_id=str(held))
        loan.due_on, loan.decided_by, loan.decided_at = due_on, by.id, now
    elif act == A.reject:
        loan.decided_by, loan.decided_at = by.id, now
    elif act == A.hand_out:
        loan.handed_out_at = now
    elif act == A.return_:
        if body.condition is None:
            raise InvalidInput("condition", "a return records the item's condition")
        loan.return_condition, loan.closed_at = body.condition, now
    elif act == A.report_lost:
        loan.closed_at = now
        item.lost_at = now
    elif act == A.cancel:
        loan.closed_at = now
    if body.note:
        loan.note = body.note
    audit.record(
        session,
        action=f"loan.{act.value}",
        object_type="loan",
        object_id=loan.id,
        branch=loan.branch,
        actor=by,
        at=now,
        changes={
            "status": [loan.status, new],
            "item_id": loan.item_id,
            "borrower_id": loan.borrower_id,
            **{
                name: value
                for name, value in (
                    ("due_on", loan.due_on if act == A.approve else None),
                    ("condition", body.condition),
                    ("note", body.note),
                )
                if value
            },
        },
    )
    loan.status = new
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("the item is already promised or out on another loan") from exc
    return public(loan, on=day)


async def loans_of_item(
    session: AsyncSession,
    settings: Settings,
    item_id: uuid.UUID,
    by: User,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[LoanPublic], str | None]:
    await get_item(session, item_id, by)
    return await _loan_page(
        session, settings, by, Loan.item_id == item_id, limit=limit, cursor=cursor
    )


async def loans_of_person(
    session: AsyncSession,
    settings: Settings,
    person_id: str,
    by: User,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[LoanPublic], str | None]:
    if not by.has(*CLERK_ROLES) and person_id != by.id:
        raise Forbidden("you may see only your own loans")
    mine = and_(col(Loan.branch) == by.branch, col(Loan.borrower_id) == person_id)
    return await _loan_page(session, settings, by, mine, limit=limit, cursor=cursor)


async def _loan_page(
    session: AsyncSession,
    settings: Settings,
    by: User,
    which: Any,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[LoanPublic], str | None]:
    """A page of loans, newest request first."""
    query = (
        select(Loan)
        .where(which, after(Loan.requested_at, Loan.id, cursor))
        .order_by(col(Loan.requested_at).desc(), col(Loan.id).desc())
        .limit(limit + 1)
    )
    rows, next_cursor = page(list((await session.exec(query)).all()), limit, "requested_at")
    day = today(settings, by.branch)
    return [public(loan, on=day) for loan in rows], next_cursor


async def items_of_branch(
    session: AsyncSession, by: User, *, limit: int, cursor: str | None
) -> tuple[list[LendingItem], str | None]:
    """The branch's items, newest first (the lending desk's shelf)."""
    query = (
        select(LendingItem)
        .where(
            LendingItem.branch == by.branch,
            after(LendingItem.created_at, LendingItem.id, cursor),
        )
        .order_by(col(LendingItem.created_at).desc(), col(LendingItem.id).desc())
        .limit(limit + 1)
    )
    return page(list((await session.exec(query)).all()), limit, "created_at")


async def loans_of_branch(
    session: AsyncSession,
    settings: Settings,
    by: User,
    statuses: list[LoanStatus],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[LoanPublic], str | None]:
    """The branch's loans in the given states (all when none), newest request first: the
    requests waiting for the clerk, the loans to hand out, the loans out."""
    which = col(Loan.branch) == by.branch
    if statuses:
        which = and_(which, col(Loan.status).in_([s.value for s in statuses]))
    return await _loan_page(session, settings, by, which, limit=limit, cursor=cursor)


async def overdue(
    session: AsyncSession, settings: Settings, by: User, limit: int, *, on: date | None = None
) -> list[LoanPublic]:
    """Loans out past their due date, longest overdue first (the clerk's call list)."""
    day = on or today(settings, by.branch)
    query = (
        select(Loan)
        .where(Loan.branch == by.branch, Loan.status == S.out, col(Loan.due_on) < day)
        .order_by(col(Loan.due_on), col(Loan.id))
        .limit(limit)
    )
    return [public(loan, on=day) for loan in (await session.exec(query)).all()]


def zones(settings: Settings) -> list[tuple[str, ColumnElement[bool]]]:
    """Each time zone the branches keep their days in, with the condition that picks the
    loans of its branches (a branch without a zone of its own is in report_time_zone's)."""
    own = settings.branch_zones()
    groups: list[tuple[str, ColumnElement[bool]]] = []
    for zone in sorted({settings.report_time_zone, *own.values()}):
        branches: ColumnElement[bool] = col(Loan.branch).in_(
            sorted(b for b, z in own.items() if z == zone)
        )
        if zone == settings.report_time_zone:
            branches = or_(branches, col(Loan.branch).not_in(sorted(own)))
        groups.append((zone, branches))
    return groups


async def send_overdue_reminders(
    db: "Database", settings: Settings, *, on: date | None = None, batch: int = 200
) -> int:
    """Publish `records.loan.overdue.v1` for each loan out past its due date that had no
    reminder on its branch's today (or `on`); returns how many, at most `batch` for each
    time zone. Rows are claimed with SKIP LOCKED on PostgreSQL, so replicas share the work
    and no loan is reminded twice on one day."""
    sent = 0
    for zone, branches in zones(settings):
        day = on or datetime.now(ZoneInfo(zone)).date()
        sent += await _remind(db, day, branches, batch)
    return sent


async def _remind(db: "Database", day: date, branches: ColumnElement[bool], batch: int) -> int:
    async with db.transaction() as session:
        query = (
            select(Loan)
            .where(
                branches,
                Loan.status == S.out,
                col(Loan.due_on) < day,
                or_(col(Loan.reminded_on).is_(None), col(Loan.reminded_on) < day),
            )
            .order_by(col(Loan.due_on), col(Loan.id))
            .limit(batch)
        )
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        loans = list((await session.exec(query)).all())
        for loan in loans:
            item = await session.get(LendingItem, loan.item_id)
            assert item is not None and loan.due_on is not None
            add_event(
                session,
                LoanOverdue(
                    loan_id=loan.id,
                    item_id=loan.item_id,
                    item_title=item.title,
                    branch=loan.branch,
                    borrower_id=loan.borrower_id,
                    borrower_name=loan.borrower_name,
                    due_on=loan.due_on,
                    days_overdue=(day - loan.due_on).days,
                ),
                subject=loan.id,
            )
            loan.reminded_on = day
    return len(loans)


async def overdue_reminder(runtime: "Runtime") -> None:
    """Background job: remind of overdue loans every interval."""
    settings = runtime.settings
    assert isinstance(settings, Settings)
    while True:
        try:
            while await send_overdue_reminders(runtime.db, settings) > 0:
                pass
        except Exception:
            log.exception("sending overdue reminders failed; trying again later")
        await asyncio.sleep(settings.overdue_check_interval_seconds)


__all__ = ["TRANSITIONS", "ReturnCondition", "etag"]
