"""The service manager's follow-up KPIs for a period of local calendar days."""

from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.followup.config import Settings
from services.followup.models import SERVQUAL, Complaint, DeliveredOrder, Severity, Survey
from services.followup.service import business_hours
from shared.auth import User
from shared.problems import InvalidInput

MAX_PERIOD_DAYS = 366


class ServqualGap(BaseModel):
    dimension: str
    expectation: float
    perception: float
    gap: float  # perception − expectation: below zero, the customer got less than expected


class KpiReport(BaseModel):
    branch: str
    from_on: date
    to_on: date
    delivered_orders: int
    major_complaints: int
    major_complaint_rate: float | None
    major_complaint_target: float
    major_complaint_target_met: bool | None
    fix_orders: int  # delivered orders with at least one job that is not maintenance/recall
    comebacks: int
    first_time_fix_rate: float | None
    surveys: int
    average_overall: float | None
    nps: float | None  # % promoters (9–10) − % detractors (0–6)
    servqual: list[ServqualGap]


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


async def report(
    session: AsyncSession, by: User, settings: Settings, *, from_on: date, to_on: date
) -> KpiReport:
    if to_on < from_on:
        raise InvalidInput("to_on", "must not be before from_on")
    if (to_on - from_on).days >= MAX_PERIOD_DAYS:
        raise InvalidInput("to_on", f"a period spans at most {MAX_PERIOD_DAYS} days")
    hours = business_hours(settings, by.branch)
    start, end = hours.day_start(from_on), hours.day_start(to_on + timedelta(days=1))

    async def count(query: Any) -> int:
        return int((await session.exec(query)).one())

    delivered_q = (
        select(func.count())
        .select_from(DeliveredOrder)
        .where(DeliveredOrder.branch == by.branch)
        .where(col(DeliveredOrder.delivered_at) >= start, col(DeliveredOrder.delivered_at) < end)
    )
    delivered = await count(delivered_q)
    fix_orders = await count(delivered_q.where(col(DeliveredOrder.has_fix).is_(True)))
    comebacks = await count(
        delivered_q.where(col(DeliveredOrder.has_fix).is_(True)).where(
            col(DeliveredOrder.is_comeback).is_(True)
        )
    )
    major = await count(
        select(func.count())
        .select_from(Complaint)
        .where(Complaint.branch == by.branch, Complaint.severity == Severity.major)
        .where(col(Complaint.opened_at) >= start, col(Complaint.opened_at) < end)
    )
    rows = (
        await session.exec(
            select(Survey.overall, Survey.nps, Survey.servqual)
            .where(Survey.branch == by.branch)
            .where(col(Survey.recorded_at) >= start, col(Survey.recorded_at) < end)
        )
    ).all()
    rate = _ratio(major, delivered)
    ftf = _ratio(comebacks, fix_orders)
    surveys = len(rows)
    promoters = sum(1 for _, nps, _ in rows if nps >= 9)
    detractors = sum(1 for _, nps, _ in rows if nps <= 6)
    gaps = []
    answered = [sq for _, _, sq in rows if sq]
    if answered:
        for dimension in SERVQUAL:
            e = sum(sq[dimension]["expectation"] for sq in answered) / len(answered)
            p = sum(sq[dimension]["perception"] for sq in answered) / len(answered)
            gaps.append(
                ServqualGap(
                    dimension=dimension,
                    expectation=round(e, 2),
                    perception=round(p, 2),
                    gap=round(p - e, 2),
                )
            )
    return KpiReport(
        branch=by.branch,
        from_on=from_on,
        to_on=to_on,
        delivered_orders=delivered,
        major_complaints=major,
        major_complaint_rate=rate,
        major_complaint_target=settings.major_complaint_target,
        major_complaint_target_met=None if rate is None else rate < settings.major_complaint_target,
        fix_orders=fix_orders,
        comebacks=comebacks,
        first_time_fix_rate=None if ftf is None else round(1 - ftf, 4),
        surveys=surveys,
        average_overall=round(sum(o for o, _, _ in rows) / surveys, 2) if surveys else None,
        nps=round(100 * (promoters - detractors) / surveys, 1) if surveys else None,
        servqual=gaps,
    )
