"""Appointments and daily capacity over HTTP."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from services.reception import appointments
from services.reception.config import Settings
from services.reception.models import (
    Appointment,
    AppointmentCreate,
    AppointmentPublic,
    AppointmentReschedule,
    AppointmentRow,
    AppointmentStatus,
    DayCapacityPublic,
    DayCapacitySet,
    ShowRate,
)
from services.reception.routes import Advisor, PlanReader
from shared.auth import Role, User, require
from shared.concurrency import IfMatch, set_etag
from shared.idempotency import IdempotencyDep
from shared.pagination import Page, whole
from shared.service import ReadSessionDep, SessionDep
from shared.types import Day

router = APIRouter(tags=["appointments"])
Manager = Annotated[User, Depends(require(Role.manager))]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


@router.put(
    "/capacity/{day}",
    response_model=DayCapacityPublic,
    summary="Set a day's bays and bookable technician hours (manager)",
)
async def set_capacity(
    day: Day, body: DayCapacitySet, session: SessionDep, user: Manager, settings: SettingsDep
):
    return await appointments.set_capacity(session, day, body, user, settings)


@router.get("/capacity/{day}", response_model=DayCapacityPublic, summary="A day's capacity")
async def get_capacity(day: Day, session: ReadSessionDep, user: PlanReader, settings: SettingsDep):
    return await appointments.capacity(session, user.branch, day, settings)


@router.post(
    "/appointments",
    status_code=status.HTTP_201_CREATED,
    response_model=AppointmentPublic,
    summary="Book an appointment; an over-full day is refused naming the next free days",
)
async def book(
    body: AppointmentCreate,
    session: SessionDep,
    user: Advisor,
    idempotency: IdempotencyDep,
    settings: SettingsDep,
    response: Response,
):
    async def work() -> Appointment:
        appointment = await appointments.book(session, body, user, settings)
        set_etag(response, appointment.version)
        return appointment

    return await idempotency(session).run(work, AppointmentPublic, response=response)


@router.get(
    "/appointments",
    response_model=Page[AppointmentRow],
    summary="A day's appointments (today's arrivals: status=booked), by time; one page, "
    "as a day's capacity bounds it",
)
async def day_list(
    session: ReadSessionDep,
    user: PlanReader,
    day: Annotated[Day, Query()],
    status: AppointmentStatus | None = None,
):
    return whole(await appointments.day_list(session, user, day, status))


@router.get("/appointments/show-rate", response_model=ShowRate, summary="Show rate over days")
async def show_rate(
    session: ReadSessionDep,
    user: PlanReader,
    start_on: Annotated[Day, Query()],
    end_on: Annotated[Day, Query()],
):
    return await appointments.show_rate(session, user, start_on, end_on)


@router.get("/appointments/{appointment_id}", response_model=AppointmentPublic)
async def get_appointment(
    appointment_id: uuid.UUID, session: ReadSessionDep, user: PlanReader, response: Response
):
    appointment = await appointments.get(session, appointment_id, user)
    set_etag(response, appointment.version)
    return appointment


async def _move(
    appointment_id: uuid.UUID,
    to: AppointmentStatus,
    session: SessionDep,
    user: User,
    if_match: str | None,
    settings: Settings,
    response: Response,
    body: AppointmentReschedule | None = None,
) -> AppointmentPublic:
    appointment = await appointments.move(
        session,
        appointment_id,
        to,
        user,
        if_match,
        settings,
        starts_at=body.starts_at if body else None,
        planned_hours=body.planned_hours if body else None,
    )
    set_etag(response, appointment.version)
    return AppointmentPublic.model_validate(appointment, from_attributes=True)


@router.post(
    "/appointments/{appointment_id}/reschedule",
    response_model=AppointmentPublic,
    summary="Move a booked appointment (If-Match)",
)
async def reschedule(
    appointment_id: uuid.UUID,
    body: AppointmentReschedule,
    session: SessionDep,
    user: Advisor,
    settings: SettingsDep,
    response: Response,
    if_match: IfMatch = None,
):
    return await _move(
        appointment_id, AppointmentStatus.booked, session, user, if_match, settings, response, body
    )


for _path, _to in (
    ("cancel", AppointmentStatus.cancelled),
    ("no-show", AppointmentStatus.no_show),
    ("arrived", AppointmentStatus.arrived),
):

    def _route(to: AppointmentStatus = _to, path: str = _path) -> None:
        async def change(
            appointment_id: uuid.UUID,
            session: SessionDep,
            user: Advisor,
            settings: SettingsDep,
            response: Response,
            if_match: IfMatch = None,
        ) -> AppointmentPublic:
            return await _move(appointment_id, to, session, user, if_match, settings, response)

        router.add_api_route(
            f"/appointments/{{appointment_id}}/{path}",
            change,
            methods=["POST"],
            response_model=AppointmentPublic,
            summary=f"Mark the appointment {to.value} (If-Match)",
            name=f"appointment_{to.value}",
        )

    _route()
