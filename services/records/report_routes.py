"""HTTP of the management reports: definitions, KPIs as JSON, CSV, XLSX, an HTML page and a
PDF, the drill-down behind each number, and scheduled reports with their kept files."""

import asyncio
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.records import report_kpis
from services.records.config import Settings, SettingsDep
from services.records.report_definitions import (
    BY_ID,
    DEFINITIONS,
    DEFINITIONS_VERSION,
    MEDIA_TYPES,
    PERIOD_RULE,
    PERIOD_RULE_ZH,
)
from services.records.report_models import ReportRun, ReportRunFile, ReportSchedule
from services.records.report_schedule import FORMATS, FREQUENCIES
from shared.auth import Role, User, require
from shared.downloads import export_headers
from shared.idempotency import IdempotencyDep
from shared.openapi import content_of
from shared.pagination import Cursor, Limit, Page, after, decode_cursor, encode_cursor, page
from shared.problems import Forbidden, InvalidInput, NotFound
from shared.service import ReadSessionDep, SessionDep
from shared.types import Day

router = APIRouter(tags=["reports"])

Reader = Annotated[User, Depends(require(Role.manager, Role.records_clerk))]
Lang = Literal["zh-CN", "en"]


def scope_of(user: User, settings: Settings, branch: str | None) -> str | None:
    """The branch a report covers (None: the group). Head-office users read the group and
    every branch; everybody else only their own branch."""
    group_user = user.branch == settings.report_group_branch
    if branch is None:
        return None if group_user else user.branch
    if branch == "group":
        if not group_user:
            raise Forbidden("only the head office reads the group's report")
        return None
    if branch != user.branch and not group_user:
        raise Forbidden("a user reads only their own branch's report")
    return branch


class PeriodQuery(BaseModel):
    period: Literal["day", "week", "month", "custom"]
    on: date | None
    from_on: date | None
    to_on: date | None
    branch: str | None
    lang: Lang


def period_query(
    period: Annotated[
        Literal["day", "week", "month", "custom"],
        Query(description="day, week (Monday–Sunday) or month around `on`, or custom"),
    ] = "month",
    on: Annotated[Day | None, Query(description="a day in the period (default today)")] = None,
    from_on: Annotated[Day | None, Query(description="custom: first day")] = None,
    to_on: Annotated[Day | None, Query(description="custom: last day (inclusive)")] = None,
    branch: Annotated[
        str | None,
        Query(max_length=32, description="a branch, or `group` (head office only)"),
    ] = None,
    lang: Annotated[Lang, Query(description="language of names and documents")] = "zh-CN",
) -> PeriodQuery:
    return PeriodQuery(period=period, on=on, from_on=from_on, to_on=to_on, branch=branch, lang=lang)


PeriodDep = Annotated[PeriodQuery, Depends(period_query)]


async def _report(
    session: AsyncSession, user: User, settings: Settings, q: PeriodQuery
) -> report_kpis.Report:
    branch = scope_of(user, settings, q.branch)
    period = report_kpis.period_of(
        q.period,
        on=q.on,
        from_on=q.from_on,
        to_on=q.to_on,
        zone=settings.zone_of(branch),
    )
    return await report_kpis.compute(session, settings, branch=branch, period=period, lang=q.lang)


class DefinitionPublic(BaseModel):
    id: str
    version: int
    name_zh: str
    name_en: str
    unit: str
    formula: str
    formula_zh: str
    counts: str
    excludes: str
    excludes_zh: str
    drill: str
    target: float | None
    good_when: str | None


class Definitions(BaseModel):
    version: str
    period_rule: str
    period_rule_zh: str
    definitions: list[DefinitionPublic]


@router.get(
    "/reports/font.ttf",
    summary="The report page's font (Chinese and Latin); public, like any web font",
    response_class=Response,
    responses=content_of("font/ttf", description="TrueType"),
)
async def report_font() -> Response:
    from shared import pdf  # reportlab loads on first use

    data = await asyncio.to_thread(pdf.font_ttf)
    return Response(
        data, media_type="font/ttf", headers={"Cache-Control": "public, max-age=604800"}
    )


@router.get("/reports/definitions", response_model=Definitions, summary="KPI definitions")
async def definitions(user: Reader, settings: SettingsDep) -> Definitions:
    items = []
    for d in DEFINITIONS:
        item = DefinitionPublic(**d.public())
        if d.id == "major_complaint_rate":
            item.target = settings.report_major_complaint_target
        items.append(item)
    return Definitions(
        version=DEFINITIONS_VERSION,
        period_rule=PERIOD_RULE,
        period_rule_zh=PERIOD_RULE_ZH,
        definitions=items,
    )


@router.get(
    "/reports/kpis",
    response_model=report_kpis.Report,
    summary="The KPIs of a period for the branch or the group",
)
async def kpis(
    session: ReadSessionDep, user: Reader, settings: SettingsDep, q: PeriodDep
) -> report_kpis.Report:
    return await _report(session, user, settings, q)


def _filename(report: report_kpis.Report, fmt: str) -> str:
    scope = report.branch or "group"
    return f"report-{scope}-{report.from_on}-{report.to_on}-{report.lang}.{fmt}"


BINARY = {"type": "string", "format": "binary"}


@router.get(
    "/reports/kpis.{fmt}",
    summary="The same report as CSV, XLSX, PDF with charts, or the HTML report page",
    response_class=Response,
    responses=content_of(
        *(t for f, t in MEDIA_TYPES.items() if f != "json"), description="the report"
    ),
)
async def kpis_file(
    fmt: Literal["csv", "xlsx", "pdf", "html"],
    request: Request,
    session: ReadSessionDep,
    user: Reader,
    settings: SettingsDep,
    q: PeriodDep,
) -> Response:
    report = await _report(session, user, settings, q)
    query = {k: v for k, v in request.query_params.items()}
    # Imported on first use: the layout libraries are kept out of an idle service's memory.
    from services.records import report_output

    # Laying out a PDF or workbook takes a CPU-bound moment: off the event loop.
    content = await asyncio.to_thread(
        report_output.render, report, fmt, dealer=settings.report_dealer_name, query=query
    )
    headers = {}
    if fmt != "html":
        headers = export_headers(_filename(report, fmt))
    return Response(content, media_type=MEDIA_TYPES[fmt], headers=headers)


@router.get(
    "/reports/kpis/{kpi}/items",
    response_model=report_kpis.Drill,
    summary="The repair orders (or surveys, complaints, appointments) behind a KPI",
)
async def kpi_items(
    kpi: str,
    session: ReadSessionDep,
    user: Reader,
    settings: SettingsDep,
    q: PeriodDep,
    technician: Annotated[str | None, Query(max_length=64)] = None,
    pay_type: Annotated[str | None, Query(max_length=16)] = None,
    counted: Annotated[
        bool | None,
        Query(
            description="true: only the rows in the numerator; false: only those left out of "
            "it (the comebacks of first-time fix, the late deliveries, the detractors …)"
        ),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> report_kpis.Drill:
    if kpi not in BY_ID:
        raise NotFound(f"no KPI {kpi!r}; see GET /reports/definitions")
    branch = scope_of(user, settings, q.branch)
    period = report_kpis.period_of(
        q.period,
        on=q.on,
        from_on=q.from_on,
        to_on=q.to_on,
        zone=settings.zone_of(branch),
    )
    return await report_kpis.drill(
        session,
        kpi=kpi,
        branch=branch,
        period=period,
        technician=technician,
        pay_type=pay_type,
        only_counted=counted,
        limit=limit,
        cursor=cursor,
    )


# --- scheduled reports -----------------------------------------------------------------


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"frequency": "daily", "hour": 7, "language": "zh-CN"}]},
    )

    frequency: Literal["daily", "weekly", "monthly"]
    branch: str | None = Field(
        default=None, max_length=32, description="a branch, or `group`; default your branch"
    )
    hour: int | None = Field(
        default=None, ge=0, le=23, description="local hour (default RECORDS_REPORT_HOUR)"
    )
    language: Lang = "zh-CN"


class SchedulePublic(BaseModel):
    id: uuid.UUID
    owner_branch: str
    branch: str | None
    frequency: str
    hour: int
    language: str
    active: bool
    created_by: str
    created_at: datetime


class RunPublic(BaseModel):
    id: uuid.UUID
    schedule_id: uuid.UUID
    branch: str | None
    frequency: str
    from_on: date
    to_on: date
    due_at: datetime
    status: str
    generated_at: datetime | None
    made_up: bool
    attempts: int
    error: str | None
    files: list[str] = []


@router.post(
    "/reports/schedules",
    status_code=status.HTTP_201_CREATED,
    response_model=SchedulePublic,
    summary="Have a report generated daily, weekly (Mondays) or monthly (the 1st)",
)
async def create_schedule(
    body: ScheduleCreate,
    session: SessionDep,
    user: Reader,
    settings: SettingsDep,
    idempotency: IdempotencyDep,
) -> Any:
    async def create() -> ReportSchedule:
        if body.branch is not None:
            try:
                branch = scope_of(user, settings, body.branch)
            except Forbidden as exc:
                raise InvalidInput("branch", str(exc)) from exc
        else:
            branch = scope_of(user, settings, None)
        schedule = ReportSchedule(
            owner_branch=user.branch,
            branch=branch,
            frequency=body.frequency,
            hour=settings.report_hour if body.hour is None else body.hour,
            language=body.language,
            created_by=user.id,
            created_at=datetime.now(UTC),
        )
        session.add(schedule)
        await session.flush()
        return schedule

    return await idempotency(session).run(create, SchedulePublic)


@router.get(
    "/reports/schedules", response_model=Page[SchedulePublic], summary="Schedules, newest first"
)
async def list_schedules(
    session: ReadSessionDep, user: Reader, limit: Limit = 50, cursor: Cursor = None
) -> Any:
    rows = await session.exec(
        select(ReportSchedule)
        .where(
            ReportSchedule.owner_branch == user.branch,
            after(ReportSchedule.created_at, ReportSchedule.id, cursor),
        )
        .order_by(col(ReportSchedule.created_at).desc(), col(ReportSchedule.id).desc())
        .limit(limit + 1)
    )
    items, next_cursor = page(list(rows.all()), limit, "created_at")
    return Page(items=items, next_cursor=next_cursor)


async def _own_schedule(
    session: AsyncSession, schedule_id: uuid.UUID, user: User
) -> ReportSchedule:
    schedule = await session.get(ReportSchedule, schedule_id)
    if schedule is None or schedule.owner_branch != user.branch:
        raise NotFound(f"no report schedule {schedule_id}")
    return schedule


@router.delete(
    "/reports/schedules/{schedule_id}",
    response_model=SchedulePublic,
    summary="Stop a schedule (its reports are kept)",
)
async def stop_schedule(schedule_id: uuid.UUID, session: SessionDep, user: Reader) -> Any:
    schedule = await _own_schedule(session, schedule_id, user)
    schedule.active = False
    await session.flush()
    return schedule


async def _files_of(session: AsyncSession, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    out: dict[uuid.UUID, list[str]] = {}
    if run_ids:
        rows = await session.exec(
            select(ReportRunFile.run_id, ReportRunFile.format).where(
                col(ReportRunFile.run_id).in_(run_ids)
            )
        )
        for run_id, fmt in rows.all():
            out.setdefault(run_id, []).append(fmt)
    return {k: sorted(v, key=FORMATS.index) for k, v in out.items()}


def _run_public(run: ReportRun, files: list[str]) -> RunPublic:
    return RunPublic(**run.model_dump(), files=files)


@router.get(
    "/reports/runs",
    response_model=Page[RunPublic],
    summary="Generated scheduled reports, newest due first",
)
async def list_runs(
    session: ReadSessionDep,
    user: Reader,
    schedule_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    query = select(ReportRun).where(ReportRun.owner_branch == user.branch)
    if schedule_id is not None:
        query = query.where(ReportRun.schedule_id == schedule_id)
    if cursor is not None:
        at, row_id = decode_cursor(cursor)
        query = query.where(
            (col(ReportRun.due_at) < at)
            | ((col(ReportRun.due_at) == at) & (col(ReportRun.id) < row_id))
        )
    query = query.order_by(col(ReportRun.due_at).desc(), col(ReportRun.id).desc()).limit(limit + 1)
    rows = list((await session.exec(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].due_at, rows[-1].id)
    files = await _files_of(session, [r.id for r in rows])
    return Page(items=[_run_public(r, files.get(r.id, [])) for r in rows], next_cursor=next_cursor)


async def _own_run(session: AsyncSession, run_id: uuid.UUID, user: User) -> ReportRun:
    run = await session.get(ReportRun, run_id)
    if run is None or run.owner_branch != user.branch:
        raise NotFound(f"no report run {run_id}")
    return run


@router.get("/reports/runs/{run_id}", response_model=RunPublic)
async def get_run(run_id: uuid.UUID, session: ReadSessionDep, user: Reader) -> Any:
    run = await _own_run(session, run_id, user)
    files = await _files_of(session, [run.id])
    return _run_public(run, files.get(run.id, []))


@router.get(
    "/reports/runs/{run_id}/files/{fmt}",
    summary="Download a generated report (pdf, xlsx, csv, json)",
    response_class=Response,
    responses={
        200: {
            "description": "the report's file; json: the report as GET /reports/kpis answers it",
            "content": {
                t: {"schema": {"type": "object"} if f == "json" else BINARY}
                for f, t in MEDIA_TYPES.items()
            },
        }
    },
)
async def download_run_file(
    run_id: uuid.UUID,
    fmt: Literal["pdf", "xlsx", "csv", "json"],
    session: ReadSessionDep,
    user: Reader,
) -> Response:
    run = await _own_run(session, run_id, user)
    stored = await session.get(ReportRunFile, (run.id, fmt))
    if stored is None:
        raise NotFound(f"the run {run_id} has no {fmt} file (status {run.status})")
    scope = run.branch or "group"
    name = f"report-{run.frequency}-{scope}-{run.from_on}.{fmt}"
    return Response(
        stored.content,
        media_type=stored.media_type,
        headers=export_headers(name),
    )


__all__ = ["FREQUENCIES", "router"]
