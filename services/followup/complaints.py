"""Complaint cases: opening, editing, the status machine, actions, history, escalation."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.followup.config import Settings
from services.followup.models import (
    Complaint,
    ComplaintActionCreate,
    ComplaintCategory,
    ComplaintCreate,
    ComplaintEntry,
    ComplaintSource,
    ComplaintTransition,
    ComplaintUpdate,
    Contact,
    DeliveredJob,
    DeliveredOrder,
    Severity,
    to_fen,
)
from services.followup.rules import (
    ACTIVE_COMPLAINT_STATUSES,
    ComplaintStatus,
    complaint_due_at,
    is_fix,
    require_transition,
)
from shared import audit
from shared.auth import Role, User
from shared.calendar import branch_calendar
from shared.concurrency import check_if_match
from shared.contracts.followup import ComplaintEscalated, ComplaintOpened
from shared.outbox import add_event
from shared.pagination import after, page
from shared.problems import Conflict, Forbidden, InvalidInput, NotFound
from shared.references import referenced


def due_at(settings: Settings, branch: str, severity: Severity, opened_at: datetime) -> datetime:
    """The case's deadline: its severity's working hours on the branch calendar."""
    hours = (
        settings.complaint_due_hours_major
        if severity == Severity.major
        else settings.complaint_due_hours_minor
    )
    calendar = branch_calendar(settings, branch, settings.zone_of(branch))
    return complaint_due_at(opened_at, calendar, working_hours=hours)


def _log(
    session: AsyncSession,
    case: Complaint,
    kind: str,
    by: str,
    at: datetime,
    *,
    note: str = "",
    changes: dict[str, Any] | None = None,
) -> None:
    session.add(
        ComplaintEntry(complaint_id=case.id, kind=kind, by=by, note=note, changes=changes, at=at)
    )


def _audit(
    session: AsyncSession,
    case: Complaint,
    action: str,
    by: User | None,
    at: datetime,
    changes: dict[str, Any],
) -> None:
    audit.record(
        session,
        action=f"complaint.{action}",
        object_type="complaint",
        object_id=case.id,
        branch=case.branch,
        actor=by,
        at=at,
        changes=changes,
    )


async def open_case(
    session: AsyncSession,
    settings: Settings,
    *,
    by: User,
    branch: str,
    source: ComplaintSource,
    severity: Severity,
    category: ComplaintCategory,
    description: str,
    customer_id: uuid.UUID | None = None,
    repair_order_id: uuid.UUID | None = None,
    repair_order_number: str | None = None,
    technician_id: str | None = None,
    survey_id: uuid.UUID | None = None,
    owner: str | None = None,
) -> Complaint:
    now = settings.clock()
    case = Complaint(
        branch=branch,
        source=source,
        severity=severity,
        category=category,
        description=description[:2000],
        customer_id=customer_id,
        repair_order_id=repair_order_id,
        repair_order_number=repair_order_number,
        technician_id=technician_id,
        survey_id=survey_id,
        owner=owner or by.id,
        opened_by=by.id,
        due_at=due_at(settings, branch, severity, now),
        opened_at=now,
        updated_at=now,
    )
    session.add(case)
    _log(
        session,
        case,
        "opened",
        by.id,
        now,
        changes={"source": source, "severity": severity, "category": category},
    )
    _audit(
        session,
        case,
        "opened",
        by,
        now,
        {"source": source, "severity": severity, "category": category, "owner": case.owner},
    )
    add_event(
        session,
        ComplaintOpened(
            complaint_id=case.id,
            branch=branch,
            origin=source,
            severity=severity,
            category=category,
            customer_id=customer_id,
            repair_order_id=repair_order_id,
            technician_id=technician_id,
            owner=case.owner,
            due_at=case.due_at,
            opened_at=now,
        ),
        subject=case.id,
    )
    await session.flush()
    return case


async def create(
    session: AsyncSession, body: ComplaintCreate, by: User, settings: Settings
) -> Complaint:
    """A complaint from a call, a walk-in or the ERP; the repair order fills in the rest."""
    if body.source == ComplaintSource.erp and not by.has(Role.erp, Role.manager):
        raise Forbidden("only the ERP or a manager records ERP complaints")
    erp_only = by.has(Role.erp) and not by.has(Role.followup_agent, Role.manager)
    if erp_only and body.source != ComplaintSource.erp:
        raise Forbidden("the ERP records complaints with source erp only")
    customer_id, number, technician = body.customer_id, None, body.technician_id
    if customer_id is not None:
        await referenced(session, Contact, customer_id, by, field="customer_id", what="customer")
    if body.repair_order_id is not None:
        order = await referenced(
            session, DeliveredOrder, body.repair_order_id, by, field="repair_order_id"
        )
        if customer_id not in (None, order.customer_id):
            raise InvalidInput("customer_id", "the repair order is another customer's")
        number, customer_id = order.number, order.customer_id
        if technician is None:
            of_order = DeliveredJob.repair_order_id == order.repair_order_id
            jobs = (await session.exec(select(DeliveredJob).where(of_order))).all()
            techs = [j.technician_id for j in jobs if j.technician_id and is_fix(j.kind)]
            technician = techs[0] if len(set(techs)) == 1 else None
    return await open_case(
        session,
        settings,
        by=by,
        branch=by.branch,
        source=body.source,
        severity=body.severity,
        category=body.category,
        description=body.description,
        customer_id=customer_id,
        repair_order_id=body.repair_order_id,
        repair_order_number=number,
        technician_id=technician,
        owner=body.owner,
    )


async def get_case(session: AsyncSession, complaint_id: uuid.UUID, by: User) -> Complaint:
    case = await session.get(Complaint, complaint_id)
    if case is None or case.branch != by.branch:
        raise NotFound(f"no complaint {complaint_id}")
    return case


async def list_cases(
    session: AsyncSession,
    by: User,
    settings: Settings,
    *,
    status: ComplaintStatus | None,
    severity: Severity | None,
    overdue: bool | None,
    escalated: bool | None = None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Complaint], str | None]:
    query: Any = select(Complaint).where(Complaint.branch == by.branch)
    if status is not None:
        query = query.where(Complaint.status == status)
    if severity is not None:
        query = query.where(Complaint.severity == severity)
    if overdue is not None:
        late = col(Complaint.status).in_(ACTIVE_COMPLAINT_STATUSES) & (
            col(Complaint.due_at) < settings.clock()
        )
        query = query.where(late if overdue else ~late)
    if escalated is not None:
        handed = col(Complaint.escalated_at).is_not(None)
        query = query.where(handed if escalated else ~handed)
    query = (
        query.where(after(Complaint.opened_at, Complaint.id, cursor))
        .order_by(col(Complaint.opened_at).desc(), col(Complaint.id).desc())
        .limit(limit + 1)
    )
    return page(list((await session.exec(query)).all()), limit, "opened_at")


def _require_active_editor(case: Complaint) -> None:
    if case.status == ComplaintStatus.closed:
        raise Conflict("the case is closed", current_status=case.status)


async def update(
    session: AsyncSession,
    complaint_id: uuid.UUID,
    body: ComplaintUpdate,
    by: User,
    settings: Settings,
    *,
    if_match: str | None,
) -> Complaint:
    case = await get_case(session, complaint_id, by)
    check_if_match(if_match, case.version)
    _require_active_editor(case)
    now = settings.clock()
    sent = body.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    for name, value in sent.items():
        if name == "compensation_amount":
            fen = None if value is None else to_fen(value)
            if fen != case.compensation_fen:
                changes[name] = [_money(case.compensation_fen), _money(fen)]
                case.compensation_fen = fen
            continue
        if value is None and name in ("severity", "category", "owner"):
            continue
        if getattr(case, name) != value:
            changes[name] = [_plain(getattr(case, name)), _plain(value)]
            setattr(case, name, value)
    if "severity" in changes and case.escalated_at is None:
        case.due_at = due_at(settings, case.branch, Severity(case.severity), case.opened_at)
        changes["due_at"] = case.due_at.isoformat()
    if changes:
        case.updated_at = now
        _log(session, case, "changed", by.id, now, changes=changes)
        _audit(session, case, "changed", by, now, changes)
        await session.flush()
    return case


def _plain(value: Any) -> Any:
    return str(value) if value is not None else None


def _money(fen: int | None) -> str | None:
    return None if fen is None else f"{fen // 100}.{fen % 100:02d}"


async def transition(
    session: AsyncSession,
    complaint_id: uuid.UUID,
    body: ComplaintTransition,
    by: User,
    settings: Settings,
    *,
    if_match: str | None,
) -> Complaint:
    # A wrong body is refused before the case's state is looked at.
    if body.root_cause is not None and body.to != ComplaintStatus.resolved:
        raise InvalidInput("root_cause", "given only when resolving; edit the case otherwise")
    case = await get_case(session, complaint_id, by)
    check_if_match(if_match, case.version)
    current = ComplaintStatus(case.status)
    require_transition(current, body.to)
    if body.to == ComplaintStatus.resolved and not (body.root_cause or case.root_cause):
        raise InvalidInput(
            "root_cause", "resolving needs the root cause: give it here or record it first"
        )
    now = settings.clock()
    audited: dict[str, Any] = {"status": [current.value, body.to.value]}
    if body.root_cause is not None and body.root_cause != case.root_cause:
        audited["root_cause"] = [case.root_cause, body.root_cause]
        _log(
            session,
            case,
            "changed",
            by.id,
            now,
            changes={"root_cause": [case.root_cause, body.root_cause]},
        )
        case.root_cause = body.root_cause
    case.status, case.updated_at = body.to, now
    if body.to == ComplaintStatus.resolved:
        case.resolved_at = now
    elif body.to == ComplaintStatus.closed:
        case.closed_at = now
    elif body.to == ComplaintStatus.in_progress and current == ComplaintStatus.resolved:
        case.resolved_at = None
    _log(
        session,
        case,
        "status",
        by.id,
        now,
        note=body.note,
        changes={"status": [current.value, body.to.value]},
    )
    _audit(session, case, "transition", by, now, {**audited, "note": body.note})
    await session.flush()
    return case


async def add_action(
    session: AsyncSession,
    complaint_id: uuid.UUID,
    body: ComplaintActionCreate,
    by: User,
    settings: Settings,
    *,
    if_match: str | None,
) -> tuple[Complaint, ComplaintEntry]:
    """The action, logged; returns the case too, whose version (its ETag) the action moved."""
    case = await get_case(session, complaint_id, by)
    check_if_match(if_match, case.version, required=False)
    _require_active_editor(case)
    now = settings.clock()
    case.updated_at = now
    # An action changes the case as tablets see it: always a new version (and ETag).
    flag_modified(case, "updated_at")
    entry = ComplaintEntry(complaint_id=case.id, kind="action", by=by.id, note=body.action, at=now)
    session.add(entry)
    _audit(session, case, "action", by, now, {"action": body.action})
    await session.flush()
    return case, entry


async def history(session: AsyncSession, complaint_id: uuid.UUID, by: User) -> list[ComplaintEntry]:
    await get_case(session, complaint_id, by)
    query = (
        select(ComplaintEntry)
        .where(ComplaintEntry.complaint_id == complaint_id)
        .order_by(col(ComplaintEntry.at), col(ComplaintEntry.id))
        .limit(1000)
    )
    return list((await session.exec(query)).all())


# --- escalation ------------------------------------------------------------------------


async def escalate_overdue(
    session: AsyncSession, settings: Settings, *, now: datetime, batch: int
) -> int:
    """Hand every overdue active case, not yet escalated, to the service manager.

    Rows are claimed with FOR UPDATE SKIP LOCKED (on PostgreSQL), and the owner change,
    the history line and the event commit together, so each case escalates exactly once
    however many replicas run the timer and however late it runs.
    """
    query = (
        select(Complaint)
        .where(col(Complaint.status).in_(ACTIVE_COMPLAINT_STATUSES))
        .where(col(Complaint.escalated_at).is_(None))
        .where(col(Complaint.due_at) <= now)
        .order_by(col(Complaint.due_at))
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    cases = list((await session.exec(query)).all())
    for case in cases:
        previous, manager = case.owner, settings.manager_of(case.branch)
        case.owner = case.escalated_to = manager
        case.escalated_at = case.updated_at = now
        _log(
            session,
            case,
            "escalated",
            "system",
            now,
            note=f"overdue since {case.due_at.isoformat()}",
            changes={"owner": [previous, manager]},
        )
        _audit(session, case, "escalated", None, now, {"owner": [previous, manager]})
        add_event(
            session,
            ComplaintEscalated(
                complaint_id=case.id,
                branch=case.branch,
                severity=case.severity,
                category=case.category,
                status=case.status,
                repair_order_id=case.repair_order_id,
                technician_id=case.technician_id,
                previous_owner=previous,
                escalated_to=manager,
                due_at=case.due_at,
                escalated_at=now,
            ),
            subject=case.id,
        )
    await session.flush()
    return len(cases)
