"""The KPIs of a period for a branch or the group, computed in the database from the report
facts, and the drill-down to the repair orders (or surveys, complaints, appointments) behind
each number. The definitions are in `report_definitions`."""

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import and_, case, exists, func, literal, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from services.records.config import Settings
from services.records.report_definitions import BY_ID, DEFINITIONS, DEFINITIONS_VERSION
from services.records.report_handlers import SERVQUAL
from services.records.report_models import (
    ReportAppointment,
    ReportClock,
    ReportComeback,
    ReportComplaint,
    ReportInvoiceTotal,
    ReportJob,
    ReportOrder,
    ReportSurvey,
    ReportVisit,
)
from shared.calendar import BranchCalendar, branch_calendar
from shared.pagination import decode_cursor, encode_cursor
from shared.problems import InvalidInput

MAX_PERIOD_DAYS = 366
PeriodKind = Literal["day", "week", "month", "custom"]


# --- periods and scope -----------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    kind: str
    from_on: date
    to_on: date  # inclusive
    zone: str

    @property
    def start(self) -> datetime:
        return datetime.combine(self.from_on, time(), ZoneInfo(self.zone)).astimezone(UTC)

    @property
    def end(self) -> datetime:
        nxt = self.to_on + timedelta(days=1)
        return datetime.combine(nxt, time(), ZoneInfo(self.zone)).astimezone(UTC)

    def days(self) -> list[date]:
        n = (self.to_on - self.from_on).days + 1
        return [self.from_on + timedelta(days=i) for i in range(n)]

    def label(self) -> str:
        if self.from_on == self.to_on:
            return self.from_on.isoformat()
        return f"{self.from_on.isoformat()} – {self.to_on.isoformat()}"


def period_of(
    kind: str, *, on: date | None, from_on: date | None, to_on: date | None, zone: str
) -> Period:
    """day/week (Monday to Sunday)/month around `on` (default today), or custom from–to."""
    today = datetime.now(ZoneInfo(zone)).date()
    if kind == "custom":
        if from_on is None:
            raise InvalidInput("from_on", "a custom period needs from_on and to_on")
        if to_on is None:
            raise InvalidInput("to_on", "a custom period needs from_on and to_on")
        if to_on < from_on:
            raise InvalidInput("to_on", "must not be before from_on")
        if (to_on - from_on).days >= MAX_PERIOD_DAYS:
            raise InvalidInput("to_on", f"a period spans at most {MAX_PERIOD_DAYS} days")
        return Period("custom", from_on, to_on, zone)
    day = on or today
    if kind == "day":
        return Period("day", day, day, zone)
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        return Period("week", monday, monday + timedelta(days=6), zone)
    if kind == "month":
        first = day.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
        return Period("month", first, nxt - timedelta(days=1), zone)
    raise InvalidInput("period", "must be day, week, month or custom")


# --- the report ------------------------------------------------------------------------


class KpiValue(BaseModel):
    id: str
    version: int
    name: str
    unit: str
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    target: float | None = None
    target_met: bool | None = None


class RevenueRow(BaseModel):
    pay_type: str
    kind: str
    net: Decimal
    hours: Decimal


class TechnicianRow(BaseModel):
    technician_id: str
    jobs: int
    sold_hours: Decimal  # flat-rate hours of their delivered jobs with clocked time
    worked_hours: Decimal  # clocked on those jobs
    efficiency: float | None
    clocked_hours: Decimal  # all segments ending in the period
    days_clocked: int
    available_hours: Decimal
    utilisation: float | None


class ServqualRow(BaseModel):
    dimension: str
    answers: int
    expectation: float | None
    perception: float | None
    gap: float | None


class DayRow(BaseModel):
    day: date
    workday: bool  # a working day of the branch's calendar (the group's: its region's)
    opened: int
    delivered: int
    revenue: Decimal


class Report(BaseModel):
    branch: str | None  # None: the whole group
    period: str
    from_on: date
    to_on: date
    time_zone: str
    working_days: int  # of the period, on the branch's calendar (shared.calendar)
    lang: str
    definitions_version: str
    generated_at: datetime
    kpis: list[KpiValue]
    revenue: list[RevenueRow]
    technicians: list[TechnicianRow]
    servqual: list[ServqualRow]
    daily: list[DayRow]

    def kpi(self, kpi_id: str) -> KpiValue:
        return next(k for k in self.kpis if k.id == kpi_id)


def _in(column: Any, period: Period) -> ColumnElement[bool]:
    return and_(column >= period.start, column < period.end)


def _scoped(column: Any, branch: str | None) -> ColumnElement[bool]:
    return true() if branch is None else column == branch


def _ratio(part: float, whole: float, digits: int = 4) -> float | None:
    return None if not whole else round(part / whole, digits)


def _hours(centi: int | None) -> Decimal:
    return (Decimal(centi or 0) / 100).quantize(Decimal("0.01"))


def _money(cents: int | None) -> Decimal:
    return (Decimal(cents or 0) / 100).quantize(Decimal("0.01"))


async def _exec(session: AsyncSession, statement: Any) -> Any:
    """Run a Core select of plain columns (sqlmodel's overloads type only model selects)."""
    return await session.exec(statement)


async def _dialect(session: AsyncSession) -> str:
    return (await session.connection()).dialect.name


def local_day(column: Any, period: Period, dialect: str) -> Any:
    """The local calendar day of a UTC time column, as 'YYYY-MM-DD' text."""
    if dialect == "postgresql":
        return func.to_char(func.timezone(period.zone, column), "YYYY-MM-DD")
    # SQLite keeps naive UTC text: shift by the zone's offset at the period's start (the
    # default zone, Asia/Shanghai, has no daylight saving time).
    offset = ZoneInfo(period.zone).utcoffset(datetime.combine(period.from_on, time()))
    minutes = int((offset or timedelta()).total_seconds() // 60)
    return func.date(column, f"{minutes:+d} minutes")


def _comeback_of(order_id: Any) -> Any:
    return exists().where(col(ReportComeback.repair_order_id) == order_id)


def _reached(order_id: Any) -> Any:
    return exists().where(
        col(ReportVisit.repair_order_id) == order_id, col(ReportVisit.reached).is_(True)
    )


def _sum(expression: Any) -> Any:
    return func.coalesce(func.sum(expression), 0)


def _flag(condition: Any) -> Any:
    return _sum(case((condition, 1), else_=0))


async def compute(
    session: AsyncSession,
    settings: Settings,
    *,
    branch: str | None,
    period: Period,
    lang: str = "en",
) -> Report:
    dialect = await _dialect(session)
    o = ReportOrder

    opened = (
        await _exec(
            session,
            select(func.count())
            .select_from(o)
            .where(_scoped(o.branch, branch), _in(o.opened_at, period)),
        )
    ).one()[0]

    promised = col(o.promised_at).is_not(None)
    delivered_row = (
        await _exec(
            session,
            select(
                func.count(),
                _flag(promised),
                _flag(and_(promised, col(o.delivered_at) <= col(o.promised_at))),
                _flag(col(o.has_fix).is_(True)),
                _flag(_reached(o.repair_order_id)),
            ).where(_scoped(o.branch, branch), _in(o.delivered_at, period)),
        )
    ).one()
    delivered, with_promise, on_time, fix_orders, followed = (int(v) for v in delivered_row)
    # From the comeback side: comebacks are few, and a comeback's time is its delivery's.
    cb = ReportComeback
    comebacks = int(
        (
            await _exec(
                session,
                select(func.count(func.distinct(cb.repair_order_id)))
                .select_from(cb)
                .join(o, col(o.repair_order_id) == col(cb.repair_order_id))
                .where(_scoped(cb.branch, branch), _in(cb.delivered_at, period))
                .where(_in(o.delivered_at, period), col(o.has_fix).is_(True)),
            )
        ).one()[0]
    )

    # One pass over the period's invoice totals: per local day, pay type and kind.
    t = ReportInvoiceTotal
    settled_day = local_day(t.settled_at, period, dialect)
    per_day_rows = (
        await _exec(
            session,
            select(settled_day, col(t.pay_type), col(t.kind), _sum(t.net_cents), _sum(t.centihours))
            .where(_scoped(t.branch, branch), _in(t.settled_at, period))
            .group_by(settled_day, t.pay_type, t.kind),
        )
    ).all()
    totals: dict[tuple[str, str], list[int]] = {}
    revenue_per_day: dict[str, int] = {}
    for d, p, k, n, h in per_day_rows:
        pair = totals.setdefault((p, k), [0, 0])
        pair[0] += int(n)
        pair[1] += int(h)
        revenue_per_day[str(d)] = revenue_per_day.get(str(d), 0) + int(n)
    revenue_rows = [(p, k, n, h) for (p, k), (n, h) in sorted(totals.items())]
    revenue = [
        RevenueRow(pay_type=p, kind=k, net=_money(n), hours=_hours(h))
        for p, k, n, h in revenue_rows
    ]
    by_kind = {
        k: sum(int(n) for _, kk, n, _ in revenue_rows if kk == k) for k in ("labour", "part", "fee")
    }
    hours_sold = sum(int(h) for _, k, _, h in revenue_rows if k == "labour")

    technicians = await _technicians(session, settings, branch, period, dialect)
    sold = sum(int(r.sold_hours * 100) for r in technicians)
    worked = sum(int(r.worked_hours * 100) for r in technicians)
    clocked = sum(int(r.clocked_hours * 100) for r in technicians)
    available = sum(int(r.available_hours * 100) for r in technicians)

    s = ReportSurvey
    dims = []
    for dimension in SERVQUAL:
        e, p = getattr(s, f"{dimension}_expectation"), getattr(s, f"{dimension}_perception")
        answered = and_(col(e).is_not(None), col(p).is_not(None))
        dims += [
            _flag(answered),
            _sum(case((answered, e), else_=0)),
            _sum(case((answered, p), else_=0)),
        ]
    survey_row = (
        await _exec(
            session,
            select(
                func.count(),
                _sum(s.overall),
                _flag(col(s.nps) >= 9),
                _flag(col(s.nps) <= 6),
                *dims,
            ).where(_scoped(s.branch, branch), _in(s.answered_at, period)),
        )
    ).one()
    surveys, overall_sum, promoters, detractors = (int(v) for v in survey_row[:4])
    servqual = []
    for i, d in enumerate(SERVQUAL):
        n, e_sum, p_sum = (int(v) for v in survey_row[4 + 3 * i : 7 + 3 * i])
        e_mean = round(e_sum / n, 2) if n else None
        p_mean = round(p_sum / n, 2) if n else None
        servqual.append(
            ServqualRow(
                dimension=d,
                answers=n,
                expectation=e_mean,
                perception=p_mean,
                gap=round((p_sum - e_sum) / n, 2) if n else None,
            )
        )
    gaps = [(r.gap, r.answers) for r in servqual if r.gap is not None]

    c = ReportComplaint
    complaints, major = (
        int(v)
        for v in (
            await _exec(
                session,
                select(func.count(), _flag(col(c.severity) == "major")).where(
                    _scoped(c.branch, branch), _in(c.opened_at, period)
                ),
            )
        ).one()
    )

    a = ReportAppointment
    arrived, no_show = (
        int(v)
        for v in (
            await _exec(
                session,
                select(
                    _flag(col(a.outcome) == "arrived"), _flag(col(a.outcome) == "no_show")
                ).where(_scoped(a.branch, branch), _in(a.scheduled_for, period)),
            )
        ).one()
    )

    calendar = branch_calendar(settings, branch or "*", period.zone)
    daily = await _daily(session, branch, period, dialect, revenue_per_day, calendar)
    target = settings.report_major_complaint_target

    values: dict[str, tuple[float | None, float | None, float | None]] = {
        "repair_orders_opened": (opened, None, None),
        "repair_orders_delivered": (delivered, None, None),
        "revenue_total": (float(_money(sum(by_kind.values()))), None, None),
        "revenue_labour": (float(_money(by_kind["labour"])), None, None),
        "revenue_parts": (float(_money(by_kind["part"])), None, None),
        "revenue_fees": (float(_money(by_kind["fee"])), None, None),
        "hours_sold": (float(_hours(hours_sold)), None, None),
        "effective_labour_rate": (
            None if not hours_sold else round(by_kind["labour"] / hours_sold, 2),
            float(_money(by_kind["labour"])),
            float(_hours(hours_sold)),
        ),
        "technician_efficiency": (_ratio(sold, worked), float(_hours(sold)), float(_hours(worked))),
        "technician_utilisation": (
            _ratio(clocked, available),
            float(_hours(clocked)),
            float(_hours(available)),
        ),
        "on_time_delivery_rate": (_ratio(on_time, with_promise), on_time, with_promise),
        "first_time_fix_rate": (
            None if not fix_orders else round(1 - comebacks / fix_orders, 4),
            fix_orders - comebacks,
            fix_orders,
        ),
        "follow_up_rate": (_ratio(followed, delivered), followed, delivered),
        "csi": (round(overall_sum / surveys, 2) if surveys else None, overall_sum, surveys),
        "nps": (
            round(100 * (promoters - detractors) / surveys, 1) if surveys else None,
            promoters - detractors,
            surveys,
        ),
        "servqual_gap": (
            round(sum(g for g, _ in gaps) / len(gaps), 2) if gaps else None,
            None,
            len(gaps),
        ),
        "complaint_rate": (_ratio(complaints, delivered), complaints, delivered),
        "major_complaint_rate": (_ratio(major, delivered), major, delivered),
        "appointment_show_rate": (_ratio(arrived, arrived + no_show), arrived, arrived + no_show),
    }
    kpis = []
    for definition in DEFINITIONS:
        value, numerator, denominator = values[definition.id]
        goal = target if definition.id == "major_complaint_rate" else definition.target
        met = None
        if goal is not None and value is not None:
            met = value < goal if definition.good_when == "below" else value >= goal
        kpis.append(
            KpiValue(
                id=definition.id,
                version=definition.version,
                name=definition.name(lang),
                unit=definition.unit,
                value=value,
                numerator=numerator,
                denominator=denominator,
                target=goal,
                target_met=met,
            )
        )
    return Report(
        branch=branch,
        period=period.kind,
        from_on=period.from_on,
        to_on=period.to_on,
        time_zone=period.zone,
        working_days=calendar.count_workdays(period.from_on, period.to_on),
        lang=lang,
        definitions_version=DEFINITIONS_VERSION,
        generated_at=datetime.now(UTC),
        kpis=kpis,
        revenue=revenue,
        technicians=technicians,
        servqual=servqual,
        daily=daily,
    )


async def _technicians(
    session: AsyncSession, settings: Settings, branch: str | None, period: Period, dialect: str
) -> list[TechnicianRow]:
    j, k = ReportJob, ReportClock
    worked = select(func.sum(k.centihours)).where(col(k.job_id) == col(j.job_id)).scalar_subquery()
    # Materialised, so each job's clocked hours are summed once (not once per use).
    jobs = (
        select(
            col(j.technician_id).label("technician_id"),
            col(j.flat_rate_centihours).label("flat"),
            worked.label("worked"),
        )
        .where(_scoped(j.branch, branch), _in(j.delivered_at, period))
        .where(col(j.technician_id).is_not(None))
        .cte("delivered_jobs")
        .prefix_with("MATERIALIZED")
    )
    efficiency = (
        await _exec(
            session,
            select(
                jobs.c.technician_id, func.count(), func.sum(jobs.c.flat), func.sum(jobs.c.worked)
            )
            .where(jobs.c.worked > 0)
            .group_by(jobs.c.technician_id),
        )
    ).all()
    day = local_day(k.ended_at, period, dialect)
    per_day = (
        await _exec(
            session,
            select(col(k.technician_id), day, func.sum(k.centihours))
            .where(_scoped(k.branch, branch), _in(k.ended_at, period))
            .group_by(k.technician_id, day),
        )
    ).all()
    rows: dict[str, dict[str, int]] = {}
    for tech, n, flat, hours in efficiency:
        rows.setdefault(tech, {}).update(jobs=int(n), sold=int(flat or 0), worked=int(hours or 0))
    for tech, _, hours in per_day:
        r = rows.setdefault(tech, {})
        r["clocked"] = r.get("clocked", 0) + int(hours or 0)
        r["days"] = r.get("days", 0) + 1
    shift = round(settings.report_shift_hours * 100)
    out = []
    for tech in sorted(rows):
        r = rows[tech]
        available = r.get("days", 0) * shift
        out.append(
            TechnicianRow(
                technician_id=tech,
                jobs=r.get("jobs", 0),
                sold_hours=_hours(r.get("sold", 0)),
                worked_hours=_hours(r.get("worked", 0)),
                efficiency=_ratio(r.get("sold", 0), r.get("worked", 0)),
                clocked_hours=_hours(r.get("clocked", 0)),
                days_clocked=r.get("days", 0),
                available_hours=_hours(available),
                utilisation=_ratio(r.get("clocked", 0), available),
            )
        )
    return out


async def _daily(
    session: AsyncSession,
    branch: str | None,
    period: Period,
    dialect: str,
    revenue_per_day: dict[str, int],
    calendar: BranchCalendar,
) -> list[DayRow]:
    o = ReportOrder
    counts: dict[str, dict[str, int]] = {d.isoformat(): {} for d in period.days()}
    for name, column in (("opened", o.opened_at), ("delivered", o.delivered_at)):
        day = local_day(column, period, dialect)
        for d, n in (
            await _exec(
                session,
                select(day, func.count())
                .where(_scoped(o.branch, branch), _in(column, period))
                .group_by(day),
            )
        ).all():
            counts.setdefault(str(d), {})[name] = int(n)
    for d, n in revenue_per_day.items():
        counts.setdefault(d, {})["revenue"] = n
    return [
        DayRow(
            day=date.fromisoformat(d),
            workday=calendar.is_workday(date.fromisoformat(d)),
            opened=v.get("opened", 0),
            delivered=v.get("delivered", 0),
            revenue=_money(v.get("revenue", 0)),
        )
        for d, v in sorted(counts.items())
        if period.from_on <= date.fromisoformat(d) <= period.to_on
    ]


# --- drill-down ------------------------------------------------------------------------


class DrillItem(BaseModel):
    """One row behind a KPI: a repair order (or a survey, complaint or appointment with its
    repair order when it has one). `counted` says whether it is in the numerator."""

    id: uuid.UUID
    at: datetime
    repair_order_id: uuid.UUID | None
    number: str | None
    branch: str
    counted: bool | None
    detail: dict[str, Any] = {}


class Drill(BaseModel):
    kpi: str
    branch: str | None
    from_on: date
    to_on: date
    total: int  # rows behind the number (the denominator, or the count itself)
    counted: int  # of them in the numerator
    items: list[DrillItem]
    next_cursor: str | None = None


@dataclass
class _DrillQuery:
    id: Any
    at: Any
    repair_order_id: Any
    number: Any
    branch: Any
    counted: Any
    detail: dict[str, Any]
    source: Any  # the FROM (a model or a join)
    where: list[Any]


def _orders_query(
    kpi: str, branch: str | None, period: Period, pay_type: str | None
) -> _DrillQuery:
    o = ReportOrder
    base = [_scoped(o.branch, branch)]
    detail: dict[str, Any] = {}
    counted: Any = literal(True)
    at: Any = o.delivered_at
    if kpi == "repair_orders_opened":
        at = o.opened_at
    elif kpi in (
        "revenue_total",
        "revenue_labour",
        "revenue_parts",
        "revenue_fees",
        "hours_sold",
        "effective_labour_rate",
    ):
        at = o.settled_at
        detail = {
            "net_cents": o.net_cents,
            "labour_cents": o.labour_cents,
            "parts_cents": o.parts_cents,
            "fees_cents": o.fees_cents,
            "sold_centihours": o.sold_centihours,
            "invoice_number": o.invoice_number,
        }
        if pay_type is not None:
            t = ReportInvoiceTotal
            of_pay_type = (
                col(t.repair_order_id) == col(o.repair_order_id),
                col(t.pay_type) == pay_type,
            )
            base.append(exists().where(*of_pay_type))
            # The part of the order's invoice paid by this payer (its row in the breakdown).
            detail["pay_type_net_cents"] = (
                select(func.sum(t.net_cents)).where(*of_pay_type).scalar_subquery()
            )
    elif kpi == "on_time_delivery_rate":
        base.append(col(o.promised_at).is_not(None))
        counted = col(o.delivered_at) <= col(o.promised_at)
        detail = {"promised_at": o.promised_at}
    elif kpi == "first_time_fix_rate":
        base.append(col(o.has_fix).is_(True))
        counted = ~_comeback_of(o.repair_order_id)
    elif kpi == "follow_up_rate":
        counted = _reached(o.repair_order_id)
    base.append(_in(at, period))
    return _DrillQuery(
        o.repair_order_id, at, o.repair_order_id, o.number, o.branch, counted, detail, o, base
    )


def _drill_query(
    kpi: str, branch: str | None, period: Period, technician: str | None, pay_type: str | None
) -> _DrillQuery:
    definition = BY_ID[kpi]
    o = ReportOrder
    if kpi == "technician_efficiency":
        j, k = ReportJob, ReportClock
        worked = select(func.sum(k.centihours)).where(col(k.job_id) == col(j.job_id))
        where = [
            _scoped(j.branch, branch),
            _in(j.delivered_at, period),
            col(j.technician_id).is_not(None),
            exists().where(col(k.job_id) == col(j.job_id)),
        ]
        if technician is not None:
            where.append(col(j.technician_id) == technician)
        return _DrillQuery(
            j.job_id,
            j.delivered_at,
            j.repair_order_id,
            o.number,
            j.branch,
            literal(True),
            {
                "technician_id": j.technician_id,
                "op_code": j.op_code,
                "flat_rate_centihours": j.flat_rate_centihours,
                "worked_centihours": worked.scalar_subquery(),
            },
            select(j).join(o, col(o.repair_order_id) == col(j.repair_order_id), isouter=True),
            where,
        )
    if kpi == "technician_utilisation":
        k = ReportClock
        where = [_scoped(k.branch, branch), _in(k.ended_at, period)]
        if technician is not None:
            where.append(col(k.technician_id) == technician)
        return _DrillQuery(
            k.clock_id,
            k.ended_at,
            k.repair_order_id,
            o.number,
            k.branch,
            literal(True),
            {
                "technician_id": k.technician_id,
                "started_at": k.started_at,
                "centihours": k.centihours,
            },
            select(k).join(o, col(o.repair_order_id) == col(k.repair_order_id), isouter=True),
            where,
        )
    if definition.drill == "orders":
        return _orders_query(kpi, branch, period, pay_type)
    if definition.drill == "surveys":
        s = ReportSurvey
        counted: Any = literal(True)
        where = [_scoped(s.branch, branch), _in(s.answered_at, period)]
        if kpi == "nps":
            counted = col(s.nps) >= 9  # promoters; detractors are those with nps ≤ 6
        if kpi == "servqual_gap":
            where.append(or_(*(col(getattr(s, f"{d}_expectation")).is_not(None) for d in SERVQUAL)))
        return _DrillQuery(
            s.survey_id,
            s.answered_at,
            s.repair_order_id,
            o.number,
            s.branch,
            counted,
            {"overall": s.overall, "nps": s.nps, "visit_id": s.visit_id},
            select(s).join(o, col(o.repair_order_id) == col(s.repair_order_id), isouter=True),
            where,
        )
    if definition.drill == "complaints":
        c = ReportComplaint
        where = [_scoped(c.branch, branch), _in(c.opened_at, period)]
        counted = literal(True) if kpi == "complaint_rate" else col(c.severity) == "major"
        return _DrillQuery(
            c.complaint_id,
            c.opened_at,
            c.repair_order_id,
            o.number,
            c.branch,
            counted,
            {"severity": c.severity, "category": c.category, "origin": c.origin},
            select(c).join(o, col(o.repair_order_id) == col(c.repair_order_id), isouter=True),
            where,
        )
    a = ReportAppointment
    return _DrillQuery(
        a.appointment_id,
        a.scheduled_for,
        literal(None),
        literal(None),
        a.branch,
        case((col(a.outcome) == "arrived", True), else_=False),
        {"outcome": a.outcome, "customer_id": a.customer_id},
        a,
        [
            _scoped(a.branch, branch),
            _in(a.scheduled_for, period),
            col(a.outcome).in_(["arrived", "no_show"]),
        ],
    )


async def drill(
    session: AsyncSession,
    *,
    kpi: str,
    branch: str | None,
    period: Period,
    technician: str | None = None,
    pay_type: str | None = None,
    only_counted: bool | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Drill:
    if kpi not in BY_ID:
        raise InvalidInput("kpi", f"no KPI {kpi!r}; see GET /reports/definitions")
    q = _drill_query(kpi, branch, period, technician, pay_type)
    source = q.source
    counted_expr = q.counted
    total, counted = (
        await _exec(
            session, _from(source, select(func.count(), _flag(counted_expr))).where(*q.where)
        )
    ).one()
    detail_names = list(q.detail)
    stmt = _from(
        source,
        select(
            q.id.label("id"),
            q.at.label("at"),
            q.repair_order_id.label("repair_order_id"),
            q.number.label("number"),
            q.branch.label("branch"),
            counted_expr.label("counted"),
            *(v.label(f"d_{k}") for k, v in q.detail.items()),
        ),
    ).where(*q.where)
    if only_counted is True:
        stmt = stmt.where(counted_expr)
    elif only_counted is False:
        stmt = stmt.where(not_(counted_expr))
    if cursor is not None:
        at, row_id = decode_cursor(cursor)
        stmt = stmt.where(or_(q.at < at, and_(q.at == at, q.id < row_id)))
    stmt = stmt.order_by(q.at.desc(), q.id.desc()).limit(limit + 1)
    rows = (await _exec(session, stmt)).all()
    items = [
        DrillItem(
            id=r.id,
            at=r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC),
            repair_order_id=r.repair_order_id,
            number=r.number,
            branch=r.branch,
            counted=None if r.counted is None else bool(r.counted),
            detail={k: _plain(getattr(r, f"d_{k}")) for k in detail_names},
        )
        for r in rows[:limit]
    ]
    next_cursor = encode_cursor(items[-1].at, items[-1].id) if len(rows) > limit else None
    return Drill(
        kpi=kpi,
        branch=branch,
        from_on=period.from_on,
        to_on=period.to_on,
        total=int(total),
        counted=int(counted),
        items=items,
        next_cursor=next_cursor,
    )


def _from(source: Any, stmt: Any) -> Any:
    """Select from a model, or from the joins of a `select(model).join(...)`."""
    if hasattr(source, "get_final_froms"):
        return stmt.select_from(*source.get_final_froms())
    return stmt.select_from(source)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):  # PostgreSQL sums integers as numeric
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return value
