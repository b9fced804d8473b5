"""Followup's use cases: contacts, deliveries (visits and comebacks), calls and surveys."""

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.followup import complaints, reminders
from services.followup.config import Settings
from services.followup.models import (
    CallAttempt,
    CallAttemptCreate,
    CallResult,
    Comeback,
    ComplaintSource,
    Contact,
    DeliveredJob,
    DeliveredJobPublic,
    DeliveredOrder,
    DeliveredOrderPublic,
    Severity,
    Survey,
    SurveyCreate,
    Visit,
    VisitOutcome,
    VisitOutcomeCreate,
    VisitPublic,
    VisitStatus,
)
from services.followup.rules import (
    PastJob,
    find_comebacks,
    is_fix,
    visit_due_at,
    visit_expires_at,
)
from shared.auth import User
from shared.calendar import BranchCalendar, branch_calendar
from shared.contracts import CustomerSnapshot
from shared.contracts.followup import (
    ComebackRecorded,
    ServqualAnswer,
    SurveyAnswered,
    VisitClosed,
)
from shared.contracts.workorders import RepairOrderDelivered
from shared.events import utcnow
from shared.outbox import add_event
from shared.pagination import after, decode_cursor, encode_cursor, page
from shared.problems import Conflict, InvalidInput, NotFound


def business_hours(settings: Settings, branch: str) -> BranchCalendar:
    """The branch's calendar: its working days and opening hours in its zone."""
    return branch_calendar(settings, branch, settings.zone_of(branch))


# --- contacts --------------------------------------------------------------------------


async def upsert_contact(
    session: AsyncSession,
    branch: str,
    customer: CustomerSnapshot,
    *,
    as_of: datetime,
    intake_at: datetime | None = None,
) -> None:
    """Add or refresh a contact, and count the intake (if any) as a visit; details older
    than what we hold are not applied.

    One upsert that does the arithmetic and the comparisons in the database: replicas
    handle one customer's intakes at the same moment, and a count or a detail read here
    and written back would overwrite the other's. On PostgreSQL the second writer waits
    on the row (or on the first one's insert) and then applies its change to the row as
    committed; SQLite has one writer at a time."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = Contact.__table__  # type: ignore[attr-defined]
    details = {
        "name": customer.name,
        "mobile": customer.mobile,
        "preferred_channel": customer.preferred_channel,
        "language": customer.language,
        "contact_consent": customer.contact_consent,
        "as_of": as_of,
        "updated_at": utcnow(),
    }
    insert = dialect.insert(table).values(
        customer_id=customer.id,
        branch=branch,
        visits=0 if intake_at is None else 1,
        last_intake_at=intake_at,
        **details,
    )
    held, new = table.c, insert.excluded
    newer = new.as_of >= held.as_of
    later_intake = or_(held.last_intake_at.is_(None), new.last_intake_at > held.last_intake_at)
    await session.exec(
        insert.on_conflict_do_update(
            index_elements=[held.customer_id],
            set_={
                **{name: case((newer, new[name]), else_=held[name]) for name in details},
                "visits": held.visits + new.visits,
                "last_intake_at": case(
                    (later_intake, new.last_intake_at), else_=held.last_intake_at
                ),
            },
        )
    )


async def get_contact(session: AsyncSession, customer_id: uuid.UUID, by: User) -> Contact:
    contact = await session.get(Contact, customer_id)
    if contact is None or contact.branch != by.branch:
        raise NotFound(f"no contact for customer {customer_id}")
    return contact


async def list_contacts(
    session: AsyncSession, by: User, *, limit: int, cursor: str | None
) -> tuple[list[Contact], str | None]:
    query = (
        select(Contact)
        .where(Contact.branch == by.branch)
        .where(after(Contact.updated_at, Contact.customer_id, cursor))
        .order_by(col(Contact.updated_at).desc(), col(Contact.customer_id).desc())
        .limit(limit + 1)
    )
    return page(list((await session.exec(query)).all()), limit, "updated_at", key="customer_id")


# --- deliveries ------------------------------------------------------------------------


async def record_delivery(
    session: AsyncSession, event: RepairOrderDelivered, settings: Settings
) -> Visit | None:
    """Keep the delivered order for the KPIs, flag comebacks, and owe the customer a call
    (unless they refused contact). A repeat of the same delivery changes nothing."""
    if await session.get(DeliveredOrder, event.repair_order_id) is not None:
        return None
    fixes = [(job.op_group, job.kind) for job in event.jobs]
    order = DeliveredOrder(
        repair_order_id=event.repair_order_id,
        number=event.number,
        branch=event.branch,
        customer_id=event.customer_id,
        vehicle_id=event.vehicle_id,
        vin=event.vin,
        odometer_km=event.odometer_km,
        delivered_at=event.delivered_at,
        has_fix=any(is_fix(kind) for _, kind in fixes),
    )
    await _flag_comebacks(session, order, fixes, settings)
    hours = business_hours(settings, event.branch)
    contact = await session.get(Contact, event.customer_id)
    refused = contact is not None and not contact.contact_consent
    if not refused:
        await reminders.refresh(session, event, hours, settings)
    session.add(order)
    await session.flush()
    for job in event.jobs:
        session.add(
            DeliveredJob(
                job_id=job.job_id,
                repair_order_id=event.repair_order_id,
                vehicle_id=event.vehicle_id,
                op_code=job.op_code,
                op_group=job.op_group,
                kind=job.kind,
                technician_id=job.technician_id,
                delivered_at=event.delivered_at,
            )
        )

    if refused:
        return None
    now = settings.clock()
    visit = Visit(
        branch=event.branch,
        repair_order_id=event.repair_order_id,
        repair_order_number=event.number,
        customer_id=event.customer_id,
        vehicle_id=event.vehicle_id,
        vin=event.vin,
        plate=event.plate,
        advisor=event.advisor,
        delivered_at=event.delivered_at,
        due_at=visit_due_at(
            event.delivered_at, hours, due_day=settings.visit_due_day_of(event.branch)
        ),
        expires_at=visit_expires_at(
            event.delivered_at, hours, window_days=settings.visit_window_days
        ),
        created_at=now,
        updated_at=now,
    )
    session.add(visit)
    return visit


async def _flag_comebacks(
    session: AsyncSession,
    order: DeliveredOrder,
    jobs: list[tuple[str, str]],
    settings: Settings,
) -> None:
    since = order.delivered_at - timedelta(days=settings.comeback_days)
    rows = (
        await session.exec(
            select(DeliveredJob, DeliveredOrder.number)
            .join(
                DeliveredOrder,
                col(DeliveredOrder.repair_order_id) == col(DeliveredJob.repair_order_id),
            )
            .where(DeliveredJob.vehicle_id == order.vehicle_id)
            .where(DeliveredJob.delivered_at >= since)
            .where(DeliveredJob.delivered_at < order.delivered_at)
        )
    ).all()
    numbers = {str(job.repair_order_id): number for job, number in rows}
    history = [
        PastJob(
            str(job.repair_order_id), job.delivered_at, job.op_group, job.kind, job.technician_id
        )
        for job, _ in rows
    ]
    found = find_comebacks(
        delivered_at=order.delivered_at,
        jobs=jobs,
        history=history,
        within_days=settings.comeback_days,
    )
    for op_group, past in sorted(found.items()):
        comeback = Comeback(
            branch=order.branch,
            vehicle_id=order.vehicle_id,
            vin=order.vin,
            op_group=op_group,
            repair_order_id=order.repair_order_id,
            repair_order_number=order.number,
            earlier_repair_order_id=uuid.UUID(past.repair_order_id),
            earlier_repair_order_number=numbers[past.repair_order_id],
            technician_id=past.technician_id,
            earlier_delivered_at=past.delivered_at,
            delivered_at=order.delivered_at,
        )
        session.add(comeback)
        add_event(
            session,
            ComebackRecorded(
                comeback_id=comeback.id,
                branch=comeback.branch,
                vehicle_id=comeback.vehicle_id,
                op_group=comeback.op_group,
                repair_order_id=comeback.repair_order_id,
                earlier_repair_order_id=comeback.earlier_repair_order_id,
                technician_id=comeback.technician_id,
                delivered_at=comeback.delivered_at,
                earlier_delivered_at=comeback.earlier_delivered_at,
            ),
            subject=comeback.id,
        )
    order.is_comeback = bool(found)


async def list_comebacks(
    session: AsyncSession, by: User, *, limit: int, cursor: str | None
) -> tuple[list[Comeback], str | None]:
    query = (
        select(Comeback)
        .where(Comeback.branch == by.branch)
        .where(after(Comeback.delivered_at, Comeback.id, cursor))
        .order_by(col(Comeback.delivered_at).desc(), col(Comeback.id).desc())
        .limit(limit + 1)
    )
    return page(list((await session.exec(query)).all()), limit, "delivered_at")


async def delivered_order(
    session: AsyncSession, repair_order_id: uuid.UUID, by: User
) -> DeliveredOrderPublic:
    """The delivered order with its jobs (another branch's is not found)."""
    order = await session.get(DeliveredOrder, repair_order_id)
    if order is None or order.branch != by.branch:
        raise NotFound(f"no delivered repair order {repair_order_id}")
    # By vehicle first: ix_delivered_job_vehicle_group finds the order's jobs.
    jobs = await session.exec(
        select(DeliveredJob)
        .where(DeliveredJob.vehicle_id == order.vehicle_id)
        .where(DeliveredJob.repair_order_id == order.repair_order_id)
        .order_by(col(DeliveredJob.op_code), col(DeliveredJob.job_id))
    )
    return DeliveredOrderPublic.model_validate(
        {
            **_fields(order, DeliveredOrderPublic),
            "jobs": [DeliveredJobPublic.model_validate(j, from_attributes=True) for j in jobs],
        }
    )


# --- the agents' work list -------------------------------------------------------------


class WorkView(StrEnum):
    today = "today"  # open and due by the end of the branch's local day (overdue included)
    overdue = "overdue"  # open and past its due time
    open = "open"
    all = "all"


async def work_list(
    session: AsyncSession,
    by: User,
    settings: Settings,
    *,
    view: WorkView,
    limit: int,
    cursor: str | None,
    repair_order_id: uuid.UUID | None = None,
    customer_id: uuid.UUID | None = None,
) -> tuple[list[VisitPublic], str | None]:
    """Visits of the user's branch, soonest due first; only the repair order's or the
    customer's when one is named."""
    now = settings.clock()
    query: Any = (
        select(Visit, Contact.name, Contact.mobile)
        .outerjoin(Contact, col(Contact.customer_id) == col(Visit.customer_id))
        .where(Visit.branch == by.branch)
    )
    if repair_order_id is not None:
        query = query.where(Visit.repair_order_id == repair_order_id)
    if customer_id is not None:
        query = query.where(Visit.customer_id == customer_id)
    if view != WorkView.all:
        query = query.where(Visit.status == VisitStatus.open)
    if view == WorkView.today:
        _, end_of_day = business_hours(settings, by.branch).local_day_bounds(now)
        query = query.where(Visit.due_at < end_of_day)
    elif view == WorkView.overdue:
        query = query.where(Visit.due_at < now)
    if cursor is not None:
        at, visit_id = decode_cursor(cursor)
        query = query.where(
            or_(col(Visit.due_at) > at, and_(col(Visit.due_at) == at, col(Visit.id) > visit_id))
        )
    query = query.order_by(col(Visit.due_at), col(Visit.id)).limit(limit + 1)
    rows = (await session.exec(query)).all()
    items = [
        VisitPublic.model_validate(
            {**_fields(visit, VisitPublic), "customer_name": name, "mobile": mobile}
        )
        for visit, name, mobile in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        next_cursor = encode_cursor(last.due_at, last.id)
    return items, next_cursor


def _fields(row: Any, schema: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in schema.model_fields if hasattr(row, name)}


async def get_visit(
    session: AsyncSession, visit_id: uuid.UUID, by: User, *, for_update: bool = False
) -> Visit:
    visit = await session.get(Visit, visit_id, with_for_update=for_update or None)
    if visit is None or visit.branch != by.branch:
        raise NotFound(f"no follow-up visit {visit_id}")
    return visit


async def visit_public(session: AsyncSession, visit: Visit) -> VisitPublic:
    contact = await session.get(Contact, visit.customer_id)
    return VisitPublic.model_validate(
        {
            **_fields(visit, VisitPublic),
            "customer_name": contact.name if contact else None,
            "mobile": contact.mobile if contact else None,
        }
    )


async def _open_visit(session: AsyncSession, visit_id: uuid.UUID, by: User) -> Visit:
    """The open visit, its row held to the end of the transaction: agents working one visit
    through two replicas at once (or the expiry timer) take turns, so calls are all counted
    and the visit closes once; the second to close it is told it is closed."""
    visit = await get_visit(session, visit_id, by, for_update=True)
    if visit.status != VisitStatus.open:
        raise Conflict(
            f"the visit is {visit.status} ({visit.outcome}); nothing more can be recorded",
            current_status=str(visit.status),
        )
    return visit


# Outcomes for which somebody spoke to the customer (a wrong number reached nobody).
REACHED_OUTCOMES = frozenset(
    {VisitOutcome.surveyed, VisitOutcome.declined_survey, VisitOutcome.contact_refused}
)


def _close(session: AsyncSession, visit: Visit, outcome: VisitOutcome, now: datetime) -> None:
    """Close the visit with its outcome and tell the others (the follow-up rate)."""
    visit.status, visit.outcome = VisitStatus.closed, outcome
    visit.closed_at = visit.updated_at = now
    add_event(
        session,
        VisitClosed(
            visit_id=visit.id,
            branch=visit.branch,
            repair_order_id=visit.repair_order_id,
            customer_id=visit.customer_id,
            outcome=str(outcome),
            reached=outcome in REACHED_OUTCOMES,
            attempts=visit.attempts,
            closed_at=now,
        ),
        subject=visit.id,
    )


async def record_call(
    session: AsyncSession,
    visit_id: uuid.UUID,
    body: CallAttemptCreate,
    by: User,
    settings: Settings,
) -> CallAttempt:
    visit = await _open_visit(session, visit_id, by)
    now = settings.clock()
    if body.result == CallResult.call_back:
        assert body.call_back_at is not None
        if body.call_back_at <= now:
            raise InvalidInput("call_back_at", "must be in the future")
        if body.call_back_at >= visit.expires_at:
            raise InvalidInput(
                "call_back_at", f"the visit expires at {visit.expires_at.isoformat()}"
            )
    attempt = CallAttempt(
        visit_id=visit.id,
        result=body.result,
        call_back_at=body.call_back_at,
        note=body.note,
        agent=by.id,
        called_at=now,
    )
    session.add(attempt)
    visit.attempts += 1
    visit.last_attempt_at = visit.updated_at = now
    if body.result == CallResult.no_answer:
        retry = now + timedelta(hours=settings.no_answer_retry_hours)
        visit.due_at = business_hours(settings, visit.branch).place(retry)
    elif body.result == CallResult.call_back:
        assert body.call_back_at is not None
        visit.due_at = body.call_back_at
    elif body.result == CallResult.wrong_number:
        _close(session, visit, VisitOutcome.wrong_number, now)
    await session.flush()
    return attempt


async def list_calls(session: AsyncSession, visit_id: uuid.UUID, by: User) -> list[CallAttempt]:
    await get_visit(session, visit_id, by)
    query = (
        select(CallAttempt)
        .where(CallAttempt.visit_id == visit_id)
        .order_by(col(CallAttempt.called_at))
        .limit(500)
    )
    return list((await session.exec(query)).all())


async def record_outcome(
    session: AsyncSession,
    visit_id: uuid.UUID,
    body: VisitOutcomeCreate,
    by: User,
    settings: Settings,
) -> VisitPublic:
    visit = await _open_visit(session, visit_id, by)
    _close(session, visit, body.outcome, settings.clock())
    if body.outcome == VisitOutcome.contact_refused:
        contact = await session.get(Contact, visit.customer_id)
        if contact is not None:
            contact.contact_consent = False
            contact.updated_at = settings.clock()
    await session.flush()
    return await visit_public(session, visit)


# --- surveys ---------------------------------------------------------------------------


def is_low(body: SurveyCreate, settings: Settings) -> bool:
    return (
        body.overall <= settings.complaint_overall_at_or_below
        or body.nps <= settings.complaint_nps_at_or_below
    )


async def record_survey(
    session: AsyncSession,
    visit_id: uuid.UUID,
    body: SurveyCreate,
    by: User,
    settings: Settings,
) -> Survey:
    """Record the customer's answers and close the visit; a low score opens a complaint."""
    visit = await _open_visit(session, visit_id, by)
    now = settings.clock()
    survey = Survey(
        branch=visit.branch,
        visit_id=visit.id,
        repair_order_id=visit.repair_order_id,
        customer_id=visit.customer_id,
        overall=body.overall,
        nps=body.nps,
        servqual=body.servqual.model_dump() if body.servqual else None,
        comments=body.comments,
        recorded_by=by.id,
        recorded_at=now,
    )
    session.add(survey)
    add_event(
        session,
        SurveyAnswered(
            survey_id=survey.id,
            visit_id=visit.id,
            branch=visit.branch,
            repair_order_id=visit.repair_order_id,
            customer_id=visit.customer_id,
            overall=body.overall,
            nps=body.nps,
            servqual=[
                ServqualAnswer(dimension=dimension, **answer)
                for dimension, answer in (survey.servqual or {}).items()
            ],
            answered_at=now,
        ),
        subject=survey.id,
    )
    _close(session, visit, VisitOutcome.surveyed, now)
    if is_low(body, settings):
        severity = (
            Severity.major if body.overall <= settings.major_overall_at_or_below else Severity.minor
        )
        technician = await _technician_of(session, visit.repair_order_id)
        case = await complaints.open_case(
            session,
            settings,
            by=by,
            branch=visit.branch,
            source=ComplaintSource.survey,
            severity=severity,
            category=body.concern,
            description=(
                f"Follow-up survey: overall {body.overall}/10, NPS {body.nps}/10. {body.comments}"
            ).strip(),
            customer_id=visit.customer_id,
            repair_order_id=visit.repair_order_id,
            repair_order_number=visit.repair_order_number,
            technician_id=technician,
            survey_id=survey.id,
        )
        survey.complaint_id = case.id
    await session.flush()
    return survey


async def _technician_of(session: AsyncSession, repair_order_id: uuid.UUID) -> str | None:
    jobs = (
        await session.exec(
            select(DeliveredJob)
            .where(DeliveredJob.repair_order_id == repair_order_id)
            .where(col(DeliveredJob.technician_id).is_not(None))
            .order_by(col(DeliveredJob.op_code))
        )
    ).all()
    fixes = [job for job in jobs if is_fix(job.kind)] or list(jobs)
    return fixes[0].technician_id if fixes else None


async def get_survey(session: AsyncSession, visit_id: uuid.UUID, by: User) -> Survey:
    await get_visit(session, visit_id, by)
    survey = (await session.exec(select(Survey).where(Survey.visit_id == visit_id))).first()
    if survey is None:
        raise NotFound(f"no survey recorded for visit {visit_id}")
    return survey
