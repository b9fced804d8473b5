"""Followup's HTTP API: parse, authorize, call the use case, return."""

import uuid
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from services.followup import complaints, kpis, reminders, service
from services.followup.config import Settings
from services.followup.models import (
    CallAttemptCreate,
    CallAttemptPublic,
    ComebackPublic,
    ComplaintActionCreate,
    ComplaintCreate,
    ComplaintEntry,
    ComplaintEntryPublic,
    ComplaintPublic,
    ComplaintTransition,
    ComplaintUpdate,
    ContactPublic,
    DeliveredOrderPublic,
    ReminderOutcomeCreate,
    ReminderPublic,
    ReminderSentCreate,
    Severity,
    SurveyCreate,
    SurveyPublic,
    VisitOutcomeCreate,
    VisitPublic,
)
from services.followup.rules import ACTIVE_COMPLAINT_STATUSES, ComplaintStatus
from shared.auth import Role, User, require
from shared.concurrency import IfMatch, set_etag
from shared.idempotency import IdempotencyDep
from shared.pagination import Cursor, Limit, Page, whole
from shared.service import ReadSessionDep, SessionDep
from shared.types import Day

router = APIRouter()


def _settings(request: Request) -> Settings:
    settings = request.app.state.settings
    assert isinstance(settings, Settings)
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]

# Agents and the manager work visits and cases; advisors and foremen read what concerns
# their customers and jobs (the foreman without the customer's numbers or compensation:
# access.py); the ERP may file complaints; records clerks read the KPIs.
Agent = Annotated[User, Depends(require(Role.followup_agent, Role.manager))]
Reader = Annotated[
    User, Depends(require(Role.followup_agent, Role.manager, Role.advisor, Role.foreman))
]
# Who talks to the customer: contacts, call attempts, service reminders, and a case's
# history (its changes hold the compensation's old and new amounts).
ContactReader = Annotated[User, Depends(require(Role.followup_agent, Role.manager, Role.advisor))]
ComplaintWriter = Annotated[User, Depends(require(Role.followup_agent, Role.manager, Role.erp))]
KpiReader = Annotated[User, Depends(require(Role.manager, Role.followup_agent, Role.records_clerk))]


def _public(case: object, settings: Settings) -> ComplaintPublic:
    public = ComplaintPublic.model_validate(case)
    public.overdue = public.status in ACTIVE_COMPLAINT_STATUSES and public.due_at < settings.clock()
    return public


# --- contacts --------------------------------------------------------------------------


@router.get(
    "/contacts",
    response_model=Page[ContactPublic],
    tags=["contacts"],
    summary="Customers the agents may call, most recently updated first",
)
async def list_contacts(
    session: ReadSessionDep, user: ContactReader, limit: Limit = 50, cursor: Cursor = None
):
    items, next_cursor = await service.list_contacts(session, user, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/contacts/{customer_id}", response_model=ContactPublic, tags=["contacts"])
async def get_contact(customer_id: uuid.UUID, session: ReadSessionDep, user: ContactReader):
    return await service.get_contact(session, customer_id, user)


# --- visits ----------------------------------------------------------------------------


@router.get(
    "/visits",
    response_model=Page[VisitPublic],
    tags=["visits"],
    summary="The agents' work list: your branch's follow-up calls, soonest due first",
)
async def work_list(
    session: ReadSessionDep,
    user: Reader,
    settings: SettingsDep,
    view: Annotated[
        service.WorkView | None,
        Query(description="today unless a repair order or customer is named, then all"),
    ] = None,
    repair_order_id: Annotated[
        uuid.UUID | None, Query(description="only the visit for this repair order")
    ] = None,
    customer_id: Annotated[
        uuid.UUID | None, Query(description="only this customer's visits")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    if view is None:
        named = repair_order_id is not None or customer_id is not None
        view = service.WorkView.all if named else service.WorkView.today
    items, next_cursor = await service.work_list(
        session,
        user,
        settings,
        view=view,
        repair_order_id=repair_order_id,
        customer_id=customer_id,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/visits/{visit_id}", response_model=VisitPublic, tags=["visits"])
async def get_visit(visit_id: uuid.UUID, session: ReadSessionDep, user: Reader):
    return await service.visit_public(session, await service.get_visit(session, visit_id, user))


@router.post(
    "/visits/{visit_id}/calls",
    status_code=status.HTTP_201_CREATED,
    response_model=CallAttemptPublic,
    tags=["visits"],
    summary="Record a call attempt (no answer and call-back reschedule the visit)",
)
async def record_call(
    visit_id: uuid.UUID,
    body: CallAttemptCreate,
    session: SessionDep,
    user: Agent,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
):
    return await idempotency(session).run(
        lambda: service.record_call(session, visit_id, body, user, settings), CallAttemptPublic
    )


@router.get(
    "/visits/{visit_id}/calls",
    response_model=Page[CallAttemptPublic],
    tags=["visits"],
    summary="The visit's call attempts (bounded by the attempts allowed; one page)",
)
async def list_calls(visit_id: uuid.UUID, session: ReadSessionDep, user: ContactReader):
    return whole(await service.list_calls(session, visit_id, user))


@router.post(
    "/visits/{visit_id}/outcome",
    status_code=status.HTTP_200_OK,
    response_model=VisitPublic,
    tags=["visits"],
    summary="Close a visit without a survey (declined, or the customer refuses contact)",
)
async def record_outcome(
    visit_id: uuid.UUID,
    body: VisitOutcomeCreate,
    session: SessionDep,
    user: Agent,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
):
    return await idempotency(session).run(
        lambda: service.record_outcome(session, visit_id, body, user, settings),
        VisitPublic,
        status_code=200,
    )


@router.post(
    "/visits/{visit_id}/survey",
    status_code=status.HTTP_201_CREATED,
    response_model=SurveyPublic,
    tags=["surveys"],
    summary="Record the satisfaction survey; a low score opens a complaint at once",
)
async def record_survey(
    visit_id: uuid.UUID,
    body: SurveyCreate,
    session: SessionDep,
    user: Agent,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
):
    return await idempotency(session).run(
        lambda: service.record_survey(session, visit_id, body, user, settings), SurveyPublic
    )


@router.get("/visits/{visit_id}/survey", response_model=SurveyPublic, tags=["surveys"])
async def get_survey(visit_id: uuid.UUID, session: ReadSessionDep, user: Reader):
    return await service.get_survey(session, visit_id, user)


@router.get(
    "/delivered-orders/{repair_order_id}",
    response_model=DeliveredOrderPublic,
    tags=["visits"],
    summary="The delivered repair order behind a visit or a case, with its jobs",
)
async def get_delivered_order(repair_order_id: uuid.UUID, session: ReadSessionDep, user: Reader):
    return await service.delivered_order(session, repair_order_id, user)


# --- complaints ------------------------------------------------------------------------


@router.post(
    "/complaints",
    status_code=status.HTTP_201_CREATED,
    response_model=ComplaintPublic,
    tags=["complaints"],
    summary="Open a complaint from a call, a walk-in or the ERP",
)
async def open_complaint(
    body: ComplaintCreate,
    response: Response,
    session: SessionDep,
    user: ComplaintWriter,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
):
    async def work() -> ComplaintPublic:
        case = await complaints.create(session, body, user, settings)
        set_etag(response, case.version)
        return _public(case, settings)

    return await idempotency(session).run(work, ComplaintPublic, response=response)


@router.get(
    "/complaints",
    response_model=Page[ComplaintPublic],
    tags=["complaints"],
    summary="Your branch's complaint cases, newest first",
)
async def list_complaints(
    session: ReadSessionDep,
    user: Reader,
    settings: SettingsDep,
    status: ComplaintStatus | None = None,
    severity: Severity | None = None,
    overdue: bool | None = None,
    escalated: Annotated[
        bool | None, Query(description="true: handed to the manager; false: not (yet)")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    items, next_cursor = await complaints.list_cases(
        session,
        user,
        settings,
        status=status,
        severity=severity,
        overdue=overdue,
        escalated=escalated,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=[_public(c, settings) for c in items], next_cursor=next_cursor)


@router.get("/complaints/{complaint_id}", response_model=ComplaintPublic, tags=["complaints"])
async def get_complaint(
    complaint_id: uuid.UUID,
    response: Response,
    session: ReadSessionDep,
    user: Reader,
    settings: SettingsDep,
):
    case = await complaints.get_case(session, complaint_id, user)
    set_etag(response, case.version)
    return _public(case, settings)


@router.patch(
    "/complaints/{complaint_id}",
    response_model=ComplaintPublic,
    tags=["complaints"],
    summary="Edit a case (owner, severity, root cause, compensation…); needs If-Match",
)
async def update_complaint(
    complaint_id: uuid.UUID,
    body: ComplaintUpdate,
    response: Response,
    session: SessionDep,
    user: Agent,
    settings: SettingsDep,
    if_match: IfMatch = None,
):
    case = await complaints.update(session, complaint_id, body, user, settings, if_match=if_match)
    set_etag(response, case.version)
    return _public(case, settings)


@router.post(
    "/complaints/{complaint_id}/transitions",
    response_model=ComplaintPublic,
    tags=["complaints"],
    summary="Move a case: open → in_progress → resolved → closed (resolved → in_progress)",
)
async def transition_complaint(
    complaint_id: uuid.UUID,
    body: ComplaintTransition,
    response: Response,
    session: SessionDep,
    user: Agent,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
    if_match: IfMatch = None,
):
    async def work() -> ComplaintPublic:
        case = await complaints.transition(
            session, complaint_id, body, user, settings, if_match=if_match
        )
        set_etag(response, case.version)
        return _public(case, settings)

    return await idempotency(session).run(work, ComplaintPublic, status_code=200, response=response)


@router.post(
    "/complaints/{complaint_id}/actions",
    status_code=status.HTTP_201_CREATED,
    response_model=ComplaintEntryPublic,
    tags=["complaints"],
    summary="Record an action taken on a case",
)
async def add_complaint_action(
    complaint_id: uuid.UUID,
    body: ComplaintActionCreate,
    response: Response,
    session: SessionDep,
    user: Agent,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
    if_match: IfMatch = None,
):
    async def work() -> ComplaintEntry:
        case, entry = await complaints.add_action(
            session, complaint_id, body, user, settings, if_match=if_match
        )
        set_etag(response, case.version)
        return entry

    return await idempotency(session).run(work, ComplaintEntryPublic, response=response)


@router.get(
    "/complaints/{complaint_id}/history",
    response_model=Page[ComplaintEntryPublic],
    tags=["complaints"],
    summary="Every change of the case, oldest first (one page)",
)
async def complaint_history(complaint_id: uuid.UUID, session: ReadSessionDep, user: ContactReader):
    return whole(await complaints.history(session, complaint_id, user))


# --- comebacks and KPIs ----------------------------------------------------------------


@router.get(
    "/comebacks",
    response_model=Page[ComebackPublic],
    tags=["kpis"],
    summary="Vehicles back for the same system within 30 days, newest first",
)
async def list_comebacks(
    session: ReadSessionDep, user: Reader, limit: Limit = 50, cursor: Cursor = None
):
    items, next_cursor = await service.list_comebacks(session, user, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/kpis",
    response_model=kpis.KpiReport,
    tags=["kpis"],
    summary="Major complaint rate, first-time fix, NPS and SERVQUAL gaps for a period",
)
async def kpi_report(
    session: ReadSessionDep,
    user: KpiReader,
    settings: SettingsDep,
    from_on: Annotated[
        Day | None, Query(description="first local day (default: 30 days ago)")
    ] = None,
    to_on: Annotated[Day | None, Query(description="last local day (default: today)")] = None,
):
    today = service.business_hours(settings, user.branch).local_date(settings.clock())
    to_on = to_on or today
    from_on = from_on or to_on - timedelta(days=29)
    return await kpis.report(session, user, settings, from_on=from_on, to_on=to_on)


# --- service reminders -----------------------------------------------------------------


@router.get(
    "/reminders",
    response_model=Page[ReminderPublic],
    tags=["reminders"],
    summary="Vehicles due for their next service, soonest first",
)
async def reminder_list(
    session: ReadSessionDep,
    user: ContactReader,
    settings: SettingsDep,
    view: Annotated[
        Literal["due", "open"],
        Query(description="due: within the lead time (overdue included); open: every open one"),
    ] = "due",
    limit: Limit = 50,
    cursor: Cursor = None,
):
    items, next_cursor = await reminders.due_list(
        session,
        user,
        settings,
        service.business_hours(settings, user.branch),
        due_only=view == "due",
        limit=limit,
        cursor=cursor,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/reminders/{reminder_id}/outcome",
    status_code=status.HTTP_200_OK,
    response_model=ReminderPublic,
    tags=["reminders"],
    summary="Record what the customer said: booked, not interested, sold the car",
)
async def reminder_outcome(
    reminder_id: uuid.UUID,
    body: ReminderOutcomeCreate,
    session: SessionDep,
    user: Agent,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
):
    return await idempotency(session).run(
        lambda: reminders.record_outcome(session, reminder_id, body, user, settings),
        ReminderPublic,
        status_code=200,
    )


@router.post(
    "/reminders/{reminder_id}/sent",
    status_code=status.HTTP_200_OK,
    response_model=ReminderPublic,
    tags=["reminders"],
    summary="Record that the reminder went out (SMS, phone, WeChat, e-mail, letter)",
)
async def reminder_sent(
    reminder_id: uuid.UUID,
    body: ReminderSentCreate,
    session: SessionDep,
    user: Agent,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
):
    return await idempotency(session).run(
        lambda: reminders.record_sent(session, reminder_id, body, user, settings),
        ReminderPublic,
        status_code=200,
    )
