"""Appointments against the branch's daily capacity, and their life: booked, then arrived,
no-show or cancelled; a booked appointment can be rescheduled."""

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reception import branches
from services.reception.config import Settings
from services.reception.models import (
    Appointment,
    AppointmentCreate,
    AppointmentDay,
    AppointmentPublic,
    AppointmentRow,
    AppointmentStatus,
    CannedJob,
    Customer,
    DayCapacity,
    DayCapacityPublic,
    DayCapacitySet,
    ShowRate,
    Vehicle,
)
from shared.auth import User
from shared.calendar import BranchCalendar, branch_calendar
from shared.concurrency import check_if_match
from shared.contracts import AppointmentBooked, AppointmentClosed
from shared.events import utcnow
from shared.outbox import add_event
from shared.problems import Conflict, InvalidInput, NotFound

S = AppointmentStatus
# The one table of allowed moves; anything else is a 409.
TRANSITIONS: dict[AppointmentStatus, frozenset[AppointmentStatus]] = {
    S.booked: frozenset({S.booked, S.arrived, S.no_show, S.cancelled}),
    S.arrived: frozenset(),
    S.no_show: frozenset(),
    S.cancelled: frozenset(),
}


class OverBooked(Conflict):
    slug, title = "over-booked", "That day is fully booked"


# How far ahead a refusal looks for days to offer instead, and how many it offers.
LOOK_AHEAD_DAYS, OFFERED_DAYS = 60, 3


def local_day(at: datetime, zone: str) -> date:
    return at.astimezone(ZoneInfo(zone)).date()


def calendar_of(settings: Settings, branch: str) -> BranchCalendar:
    """The branch's calendar (`shared.calendar`): the days it takes customers."""
    return branch_calendar(settings, branch, settings.time_zone)


async def lock_day(session: AsyncSession, branch: str, day: date) -> None:
    """Take the day before reading its free hours, held until the transaction ends.

    One upsert that always writes the day's row: on PostgreSQL it holds the row lock, so
    a second booking of the same day waits here and then reads the hours the first one
    took (READ COMMITTED reads afresh per statement); on SQLite the write makes this the
    file's only writer from here on, so the read that follows cannot be stale either.
    """
    bind = session.get_bind()
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    table = AppointmentDay.__table__  # type: ignore[attr-defined]
    statement = (
        dialect.insert(table)
        .values(branch=branch, day=day, bookings=1)
        .on_conflict_do_update(
            index_elements=["branch", "day"], set_={"bookings": table.c.bookings + 1}
        )
    )
    await session.exec(statement)


async def capacity(
    session: AsyncSession, branch: str, day: date, settings: Settings
) -> DayCapacityPublic:
    """A day's bookable hours: the technician hours, but no more than the bays can hold
    (bays × `bay_hours_per_day`). Booked and arrived appointments take their hours; a
    no-show or a cancellation gives them back."""
    row = await session.get(DayCapacity, (branch, day))
    if row is None:  # the branch's daily capacity (the settings' without a record)
        terms = await branches.terms_of(session, branch, settings)
        bays, hours = terms.daily_bays, terms.daily_technician_hours
    else:
        bays, hours = row.bays, Decimal(row.technician_hours)
    bookable = min(hours, bays * settings.bay_hours_per_day).quantize(Decimal("0.01"))
    booked = (
        await session.exec(
            select(func.coalesce(func.sum(Appointment.planned_hours), 0)).where(
                Appointment.branch == branch,
                Appointment.day == day,
                col(Appointment.status).in_([S.booked, S.arrived]),
            )
        )
    ).one()
    booked = Decimal(str(booked)).quantize(Decimal("0.01"))
    is_open = calendar_of(settings, branch).is_open(day)
    if not is_open:  # a holiday or the branch's closing day books nothing
        bookable = Decimal("0.00")
    return DayCapacityPublic(
        day=day,
        open=is_open,
        bays=bays,
        technician_hours=hours,
        bookable_hours=bookable,
        booked_hours=booked,
        free_hours=max(bookable - booked, Decimal("0")),
    )


async def set_capacity(
    session: AsyncSession, day: date, data: DayCapacitySet, by: User, settings: Settings
) -> DayCapacityPublic:
    await lock_day(session, by.branch, day)
    row = await session.get(DayCapacity, (by.branch, day))
    if row is None:
        row = DayCapacity(branch=by.branch, day=day, bays=data.bays, technician_hours=Decimal(0))
    row.bays, row.technician_hours = data.bays, data.technician_hours
    session.add(row)
    await session.flush()
    return await capacity(session, by.branch, day, settings)


async def _free_slots(
    session: AsyncSession, branch: str, day: date, hours: Decimal, settings: Settings
) -> list[dict[str, str]]:
    """The first open days after `day` that still have `hours` free (a closed day has
    none: `capacity`)."""
    slots: list[dict[str, str]] = []
    probe = day
    for _ in range(LOOK_AHEAD_DAYS):
        probe += timedelta(days=1)
        free_hours = (await capacity(session, branch, probe, settings)).free_hours
        if free_hours >= hours:
            slots.append({"day": probe.isoformat(), "free_hours": str(free_hours)})
            if len(slots) == OFFERED_DAYS:
                break
    return slots


async def _check_open(
    session: AsyncSession, branch: str, day: date, hours: Decimal, settings: Settings
) -> None:
    """Refuse a day the branch is closed (a public holiday's break, its own closing day),
    offering the next open days with room; a make-up working weekend day is open."""
    if calendar_of(settings, branch).is_open(day):
        return
    slots = await _free_slots(session, branch, day, hours, settings)
    free = [slot["day"] for slot in slots]
    raise InvalidInput(
        "starts_at",
        f"the branch is closed on {day.isoformat()} (a public holiday or its closing day); "
        f"next open days: {', '.join(free) or f'none in {LOOK_AHEAD_DAYS} days'}",
        next_free_days=free,
        next_free_slots=slots,
    )


async def _check_room(
    session: AsyncSession, branch: str, day: date, hours: Decimal, settings: Settings
) -> None:
    """Lock the day, then check it still has the hours; refuse naming the next free days."""
    await lock_day(session, branch, day)
    today = await capacity(session, branch, day, settings)
    if hours <= today.free_hours:
        return
    slots = await _free_slots(session, branch, day, hours, settings)
    free = [slot["day"] for slot in slots]
    raise OverBooked(
        f"{day.isoformat()} has {today.free_hours} free hours, the booking needs {hours}; "
        f"next free days: {', '.join(free) or f'none in {LOOK_AHEAD_DAYS} days'}",
        next_free_days=free,
        next_free_slots=slots,
    )


def _booked_event(appointment: Appointment, by: User) -> AppointmentBooked:
    return AppointmentBooked(
        appointment_id=appointment.id,
        branch=appointment.branch,
        customer_id=appointment.customer_id,
        vehicle_id=appointment.vehicle_id,
        scheduled_for=appointment.starts_at,
        planned_hours=Decimal(appointment.planned_hours),
        booked_by=by.id,
        booked_at=appointment.updated_at,
    )


def closed_event(appointment: Appointment, by: User) -> AppointmentClosed:
    """How the booking ended; the outcome is the appointment's final status."""
    return AppointmentClosed(
        appointment_id=appointment.id,
        branch=appointment.branch,
        customer_id=appointment.customer_id,
        vehicle_id=appointment.vehicle_id,
        scheduled_for=appointment.starts_at,
        outcome=appointment.status.value,
        closed_by=by.id,
        closed_at=appointment.updated_at,
    )


async def _jobs_hours(session: AsyncSession, branch: str, op_codes: list[str]) -> Decimal:
    """The flat-rate hours of the planned jobs, from the branch's canned jobs."""
    rows = await session.exec(
        select(CannedJob).where(CannedJob.branch == branch, col(CannedJob.op_code).in_(op_codes))
    )
    hours = {job.op_code: Decimal(str(job.template["flat_rate_hours"])) for job in rows.all()}
    for index, op_code in enumerate(op_codes):
        if op_code not in hours:
            raise InvalidInput(f"planned_jobs.{index}", f"no canned job {op_code} in {branch}")
    return sum(hours.values(), Decimal("0"))


async def book(
    session: AsyncSession, data: AppointmentCreate, by: User, settings: Settings
) -> Appointment:
    vehicle = await session.get(Vehicle, data.vehicle_id)
    if vehicle is None or vehicle.branch != by.branch:
        raise InvalidInput("vehicle_id", f"no vehicle {data.vehicle_id} in branch {by.branch}")
    if data.starts_at.tzinfo is None or data.starts_at <= utcnow():
        raise InvalidInput("starts_at", "give a future time with its offset")
    day = local_day(
        data.starts_at, (await branches.terms_of(session, by.branch, settings)).time_zone
    )
    hours = data.planned_hours or await _jobs_hours(session, by.branch, data.planned_jobs)
    hours = hours.quantize(Decimal("0.01"))
    await _check_open(session, by.branch, day, hours, settings)
    await _check_room(session, by.branch, day, hours, settings)
    appointment = Appointment(
        branch=by.branch,
        vehicle_id=vehicle.id,
        customer_id=vehicle.customer_id,
        starts_at=data.starts_at,
        day=day,
        planned_hours=hours,
        planned_jobs=list(data.planned_jobs),
        concerns=list(data.concerns),
        booked_by=by.id,
    )
    session.add(appointment)
    add_event(session, _booked_event(appointment, by), subject=appointment.id)
    await session.flush()
    return appointment


async def get(session: AsyncSession, appointment_id: uuid.UUID, by: User) -> Appointment:
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.branch != by.branch:
        raise NotFound(f"appointment {appointment_id} not found")
    return appointment


async def move(
    session: AsyncSession,
    appointment_id: uuid.UUID,
    to: AppointmentStatus,
    by: User,
    if_match: str | None,
    settings: Settings,
    *,
    starts_at: datetime | None = None,
    planned_hours: Decimal | None = None,
) -> Appointment:
    appointment = await get(session, appointment_id, by)
    check_if_match(if_match, appointment.version)
    if to not in TRANSITIONS[appointment.status]:
        raise Conflict(f"an appointment that is {appointment.status} cannot become {to}")
    if to == S.booked:  # reschedule
        assert starts_at is not None
        if starts_at.tzinfo is None or starts_at <= utcnow():
            raise InvalidInput("starts_at", "give a future time with its offset")
        hours = planned_hours or Decimal(appointment.planned_hours)
        zone = (await branches.terms_of(session, appointment.branch, settings)).time_zone
        day = local_day(starts_at, zone)
        await _check_open(session, appointment.branch, day, hours, settings)
        appointment.status = S.cancelled  # its own hours do not count against the new day
        await session.flush()
        await _check_room(session, appointment.branch, day, hours, settings)
        appointment.starts_at, appointment.day, appointment.planned_hours = starts_at, day, hours
    appointment.status = to
    appointment.updated_at = utcnow()
    session.add(appointment)
    if to == S.booked:
        add_event(session, _booked_event(appointment, by), subject=appointment.id)
    else:
        add_event(session, closed_event(appointment, by), subject=appointment.id)
    await session.flush()
    return appointment


async def day_list(
    session: AsyncSession, by: User, day: date, status: AppointmentStatus | None
) -> list[AppointmentRow]:
    query = (
        select(Appointment, Vehicle, Customer)
        .join(Vehicle, col(Vehicle.id) == col(Appointment.vehicle_id))
        .join(Customer, col(Customer.id) == col(Appointment.customer_id))
        .where(Appointment.branch == by.branch, Appointment.day == day)
    )
    if status is not None:
        query = query.where(Appointment.status == status)
    rows = (await session.exec(query.order_by(col(Appointment.starts_at)).limit(500))).all()
    return [
        AppointmentRow(
            **AppointmentPublic.model_validate(appointment, from_attributes=True).model_dump(),
            plate=vehicle.plate,
            vin=vehicle.vin,
            make=vehicle.make,
            model=vehicle.model,
            customer_name=customer.name,
            customer_mobile=customer.mobile,
        )
        for appointment, vehicle, customer in rows
    ]


async def show_rate(session: AsyncSession, by: User, start_on: date, end_on: date) -> ShowRate:
    """Arrived / (arrived + no-show) over days already past; cancellations do not count."""
    if end_on < start_on or (end_on - start_on).days > 366:
        raise InvalidInput("end_on", "give a range of at most a year, end after start")
    rows = (
        await session.exec(
            select(Appointment.status, func.count())
            .where(
                Appointment.branch == by.branch,
                col(Appointment.day) >= start_on,
                col(Appointment.day) <= end_on,
            )
            .group_by(Appointment.status)
        )
    ).all()
    counts = {status: int(n) for status, n in rows}
    arrived, no_show = counts.get(S.arrived, 0), counts.get(S.no_show, 0)
    rate = (
        (Decimal(arrived) / Decimal(arrived + no_show)).quantize(Decimal("0.0001"))
        if arrived + no_show
        else None
    )
    return ShowRate(
        start_on=start_on,
        end_on=end_on,
        booked=counts.get(S.booked, 0),
        arrived=arrived,
        no_show=no_show,
        cancelled=counts.get(S.cancelled, 0),
        show_rate=rate,
    )
