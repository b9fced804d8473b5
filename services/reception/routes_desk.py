"""The desk over HTTP: search, odometer readings and owner changes."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from services.reception import desk
from services.reception.models import (
    Customer,
    CustomerPublic,
    DeskHit,
    MobileAdd,
    OdometerReadingCreate,
    OdometerReadingPublic,
    OwnerChangeCreate,
    OwnerChangePublic,
    VehiclePublic,
    VinCheck,
)
from services.reception.routes import Advisor, Reader
from shared.concurrency import set_etag
from shared.idempotency import IdempotencyDep
from shared.pagination import Cursor, Limit, Page, whole
from shared.service import ReadSessionDep, SessionDep

router = APIRouter(tags=["desk"])


@router.get(
    "/search",
    response_model=Page[DeskHit],
    summary="Find a vehicle and its owner: plate (partial), last six of the VIN, phone, name",
)
async def search(
    session: ReadSessionDep,
    user: Reader,
    plate: Annotated[str | None, Query(min_length=2, max_length=16)] = None,
    vin_last6: Annotated[str | None, Query(pattern=r"^[A-HJ-NPR-Za-hj-npr-z0-9]{6}$")] = None,
    phone: Annotated[str | None, Query(min_length=5, max_length=24)] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
):
    items, next_cursor = await desk.search(
        session,
        user,
        plate=plate,
        vin_last6=vin_last6,
        phone=phone,
        name=name,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/vins/{vin}",
    response_model=VinCheck,
    summary="Check a VIN as it is typed: form and check digit, decoded, already registered?",
)
async def check_vin(
    vin: Annotated[str, Path(max_length=40)], session: ReadSessionDep, user: Reader
):
    return await desk.check_vin(session, user, vin)


@router.post(
    "/vehicles/{vehicle_id}/odometer",
    status_code=status.HTTP_201_CREATED,
    response_model=OdometerReadingPublic,
    summary="Record an odometer reading (a lower one needs override_reason)",
)
async def add_reading(
    vehicle_id: uuid.UUID,
    body: OdometerReadingCreate,
    session: SessionDep,
    user: Advisor,
    idempotency: IdempotencyDep,
):
    return await idempotency(session).run(
        lambda: desk.add_reading(session, vehicle_id, body.km, body.override_reason, user),
        OdometerReadingPublic,
    )


@router.get(
    "/vehicles/{vehicle_id}/odometer",
    response_model=Page[OdometerReadingPublic],
    summary="Odometer readings of a vehicle, newest first",
)
async def list_readings(
    vehicle_id: uuid.UUID,
    session: ReadSessionDep,
    user: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    items, next_cursor = await desk.readings(session, vehicle_id, user, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/vehicles/{vehicle_id}/owner",
    status_code=status.HTTP_201_CREATED,
    response_model=OwnerChangePublic,
    summary="Change the vehicle's owner (the history is kept)",
)
async def change_owner(
    vehicle_id: uuid.UUID,
    body: OwnerChangeCreate,
    session: SessionDep,
    user: Advisor,
    idempotency: IdempotencyDep,
):
    return await idempotency(session).run(
        lambda: desk.change_owner(session, vehicle_id, body.customer_id, body.reason, user),
        OwnerChangePublic,
    )


@router.get(
    "/vehicles/{vehicle_id}/owners",
    response_model=Page[OwnerChangePublic],
    summary="Owner changes of a vehicle, oldest first (one page)",
)
async def owner_history(vehicle_id: uuid.UUID, session: ReadSessionDep, user: Reader):
    return whole(await desk.owner_history(session, vehicle_id, user))


@router.post(
    "/customers/{customer_id}/mobiles",
    response_model=CustomerPublic,
    summary="Add a mobile number the customer answers on (found by the phone search)",
)
async def add_mobile(
    customer_id: uuid.UUID,
    body: MobileAdd,
    session: SessionDep,
    user: Advisor,
    idempotency: IdempotencyDep,
    response: Response,
):
    async def work() -> Customer:
        customer = await desk.add_mobile(session, customer_id, body.mobile, user)
        set_etag(response, customer.version)
        return customer

    return await idempotency(session).run(work, CustomerPublic, status_code=200, response=response)


@router.get(
    "/customers/{customer_id}/vehicles",
    response_model=Page[VehiclePublic],
    summary="The vehicles a customer, company or fleet account owns now, newest first",
)
async def customer_vehicles(
    customer_id: uuid.UUID,
    session: ReadSessionDep,
    user: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    items, next_cursor = await desk.customer_vehicles(
        session, customer_id, user, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)
