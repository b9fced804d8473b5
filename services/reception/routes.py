"""Reception's HTTP API: parse, authorize, call the use case, return."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from services.reception import file_releases, service, stored_files
from services.reception.models import (
    Customer,
    CustomerCreate,
    CustomerPublic,
    CustomerUpdate,
    Intake,
    IntakeCreate,
    IntakePublic,
    IntakeStatus,
    IntakeWalkaround,
    VehicleCreate,
    VehiclePublic,
)
from shared.auth import Role, User, require
from shared.concurrency import IfMatch, set_etag
from shared.idempotency import IdempotencyDep
from shared.pagination import Cursor, Limit, Page
from shared.service import ReadSessionDep, SessionDep, runtime

router = APIRouter()

Advisor = Annotated[User, Depends(require(Role.advisor, Role.manager))]
Reader = Annotated[
    User,
    Depends(
        require(
            Role.advisor,
            Role.manager,
            Role.foreman,
            Role.cashier,
            Role.followup_agent,
            Role.records_clerk,
        )
    ),
]
# Who books the workshop's time and sees its days: not the cashier.
PlanReader = Annotated[
    User,
    Depends(
        require(Role.advisor, Role.manager, Role.foreman, Role.followup_agent, Role.records_clerk)
    ),
]
# Printed sheets carry the customer's numbers and the prices: the desk's, not the floor's.
DocumentReader = Annotated[
    User,
    Depends(
        require(Role.advisor, Role.manager, Role.cashier, Role.followup_agent, Role.records_clerk)
    ),
]


@router.post(
    "/customers",
    status_code=status.HTTP_201_CREATED,
    response_model=CustomerPublic,
    tags=["customers"],
    summary="Register a customer",
)
async def register_customer(
    body: CustomerCreate,
    session: SessionDep,
    user: Advisor,
    idempotency: IdempotencyDep,
    response: Response,
):
    async def work() -> Customer:
        customer = await service.register_customer(session, body, user)
        set_etag(response, customer.version)
        return customer

    return await idempotency(session).run(work, CustomerPublic, response=response)


@router.get(
    "/customers",
    response_model=Page[CustomerPublic],
    tags=["customers"],
    summary="Customers of your branch, newest first",
)
async def list_customers(
    session: ReadSessionDep,
    user: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    q: Annotated[str | None, Query(max_length=100, description="name prefix or mobile")] = None,
):
    items, next_cursor = await service.list_customers(
        session, user, q=q, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/customers/{customer_id}", response_model=CustomerPublic, tags=["customers"])
async def get_customer(
    customer_id: uuid.UUID, session: ReadSessionDep, user: Reader, response: Response
):
    customer = await service.get_customer(session, customer_id, user)
    set_etag(response, customer.version)
    return customer


@router.patch(
    "/customers/{customer_id}",
    response_model=CustomerPublic,
    tags=["customers"],
    summary="Edit a customer's details (If-Match): name, numbers, channel, language, "
    "consent to be contacted, account",
)
async def update_customer(
    customer_id: uuid.UUID,
    body: CustomerUpdate,
    session: SessionDep,
    user: Advisor,
    response: Response,
    if_match: IfMatch = None,
):
    customer = await service.update_customer(session, customer_id, body, user, if_match)
    public = CustomerPublic.model_validate(customer, from_attributes=True)
    set_etag(response, public.version)
    return public


@router.post(
    "/vehicles",
    status_code=status.HTTP_201_CREATED,
    response_model=VehiclePublic,
    tags=["vehicles"],
    summary="Register a vehicle (VIN checked and decoded)",
)
async def register_vehicle(
    body: VehicleCreate, session: SessionDep, user: Advisor, idempotency: IdempotencyDep
):
    return await idempotency(session).run(
        lambda: service.register_vehicle(session, body, user), VehiclePublic
    )


@router.get("/vehicles/{vehicle_id}", response_model=VehiclePublic, tags=["vehicles"])
async def get_vehicle(vehicle_id: uuid.UUID, session: ReadSessionDep, user: Reader):
    return await service.get_vehicle(session, vehicle_id, user)


@router.post(
    "/intakes",
    status_code=status.HTTP_201_CREATED,
    response_model=IntakePublic,
    tags=["intakes"],
    summary="Open an intake (walk-in or from an appointment)",
)
async def open_intake(
    body: IntakeCreate,
    session: SessionDep,
    user: Advisor,
    idempotency: IdempotencyDep,
    response: Response,
):
    async def work() -> Intake:
        intake = await service.open_intake(session, body, user)
        set_etag(response, intake.version)
        return intake

    return await idempotency(session).run(work, IntakePublic, response=response)


@router.get("/intakes/{intake_id}", response_model=IntakePublic, tags=["intakes"])
async def get_intake(
    intake_id: uuid.UUID, session: ReadSessionDep, user: Reader, response: Response
):
    intake = await service.get_intake(session, intake_id, user)
    set_etag(response, intake.version)
    return intake


@router.patch(
    "/intakes/{intake_id}",
    response_model=IntakePublic,
    tags=["intakes"],
    summary="Record the walk-around: fuel or charge, checklist, damage marks, valuables, "
    "signature (If-Match); photo and signature ids are files stored in records",
)
async def record_walkaround(
    intake_id: uuid.UUID,
    body: IntakeWalkaround,
    request: Request,
    user: Advisor,
    response: Response,
    if_match: IfMatch = None,
):
    # Records is asked to keep the files before the write transaction opens (no database
    # lock is held while it answers); then the intake is written and committed here.
    db = runtime(request).db
    async with db.reader() as session:
        current = await service.get_intake(session, intake_id, user)
        # Files already on the intake were kept before they were written: not asked again.
        on_file = {str(m.get("photo_file_id")) for m in current.damage_marks}
        on_file.add(str(current.signature_file_id))
        releasing = await file_releases.pending(session, intake_id)
    uses = stored_files.intake_files(intake_id, body)
    await stored_files.keep(request, [u for u in uses if str(u.file_id) not in on_file])
    async with db.transaction() as session:
        intake = await service.record_walkaround(session, intake_id, body, user, if_match)
        public = IntakePublic.model_validate(intake, from_attributes=True)
    # A file shown again while its release was pending: a release that ran meanwhile may
    # have dropped the reference just kept, so records is asked once more (idempotent).
    again = [u for u in uses if (u.file_id, u.owner) in releasing]
    await file_releases.after_change(request, user, again)
    set_etag(response, public.version)
    return public


@router.post(
    "/intakes/{intake_id}/complete",
    response_model=IntakePublic,
    tags=["intakes"],
    summary="Complete the intake: needs the valuables reminder acknowledged and the "
    "signature (If-Match)",
)
async def complete_intake(
    intake_id: uuid.UUID,
    session: SessionDep,
    user: Advisor,
    response: Response,
    if_match: IfMatch = None,
):
    intake = await service.move_intake(session, intake_id, IntakeStatus.completed, user, if_match)
    set_etag(response, intake.version)
    return intake


@router.post(
    "/intakes/{intake_id}/cancel",
    response_model=IntakePublic,
    tags=["intakes"],
    summary="Cancel an open intake (If-Match)",
)
async def cancel_intake(
    intake_id: uuid.UUID,
    session: SessionDep,
    user: Advisor,
    response: Response,
    if_match: IfMatch = None,
):
    intake = await service.move_intake(session, intake_id, IntakeStatus.cancelled, user, if_match)
    set_etag(response, intake.version)
    return intake
