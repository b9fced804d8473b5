"""The multi-point inspection over HTTP: the branch's template, and the inspection of a
repair order the technician fills on the phone (If-Match on every change)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status

from services.workorders import inspections
from services.workorders.inspections import (
    InspectionPublic,
    ItemFill,
    TemplatePublic,
    TemplateReplace,
)
from shared.auth import Role, User, require
from shared.concurrency import IfMatch, set_etag
from shared.events import utcnow
from shared.idempotency import IdempotencyDep
from shared.service import ReadSessionDep, SessionDep

router = APIRouter(tags=["inspection"])

Reader = Annotated[
    User, Depends(require(Role.advisor, Role.foreman, Role.technician, Role.manager))
]
Manager = Annotated[User, Depends(require(Role.manager))]
Technician = Annotated[User, Depends(require(Role.technician))]
ItemCode = Annotated[str, Path(max_length=32)]


def _public(inspection: object, response: Response) -> InspectionPublic:
    public = InspectionPublic.model_validate(inspection)
    set_etag(response, public.version)
    return public


@router.get(
    "/inspection-template",
    response_model=TemplatePublic,
    summary="Your branch's inspection template (the default until a manager replaces it); "
    "ETag for If-Match",
)
async def get_template(response: Response, session: ReadSessionDep, user: Reader):
    template = await inspections.read_template(session, user)
    set_etag(response, template.version)
    return template


@router.put(
    "/inspection-template",
    response_model=TemplatePublic,
    summary="Replace your branch's inspection template (If-Match; the default is version 0)",
)
async def replace_template(
    body: TemplateReplace,
    response: Response,
    session: SessionDep,
    user: Manager,
    idempotency: IdempotencyDep,
    if_match: IfMatch = None,
):
    async def work() -> TemplatePublic:
        template = await inspections.replace_template(
            session, body, user, utcnow(), if_match=if_match
        )
        set_etag(response, template.version)
        return template

    return await idempotency(session).run(work, TemplatePublic, status_code=200, response=response)


@router.post(
    "/repair-orders/{order_id}/inspection",
    status_code=status.HTTP_201_CREATED,
    response_model=InspectionPublic,
    summary="Start the order's inspection from the branch's template (one per order)",
)
async def start_inspection(
    order_id: uuid.UUID,
    response: Response,
    session: SessionDep,
    user: Technician,
    idempotency: IdempotencyDep,
):
    async def work() -> InspectionPublic:
        inspection = await inspections.start_inspection(session, order_id, user, utcnow())
        return _public(inspection, response)

    return await idempotency(session).run(work, InspectionPublic, response=response)


@router.get(
    "/repair-orders/{order_id}/inspection",
    response_model=InspectionPublic,
    summary="The order's inspection, item by item; ETag for If-Match",
)
async def get_inspection(
    order_id: uuid.UUID, response: Response, session: ReadSessionDep, user: Reader
):
    return _public(await inspections.get_inspection(session, order_id, user), response)


@router.put(
    "/repair-orders/{order_id}/inspection/items/{item_code}",
    response_model=InspectionPublic,
    summary="Record an item: green, amber or red, a note, a measurement, photos (If-Match)",
)
async def fill_item(
    order_id: uuid.UUID,
    item_code: ItemCode,
    body: ItemFill,
    response: Response,
    session: SessionDep,
    user: Technician,
    idempotency: IdempotencyDep,
    if_match: IfMatch = None,
):
    async def work() -> InspectionPublic:
        inspection = await inspections.fill_item(
            session, order_id, item_code, body, user, if_match=if_match
        )
        return _public(inspection, response)

    return await idempotency(session).run(
        work, InspectionPublic, status_code=200, response=response
    )


@router.post(
    "/repair-orders/{order_id}/inspection/completion",
    response_model=InspectionPublic,
    summary="Complete the inspection (If-Match): amber and red items go to the customer as "
    "extra work → workorders.inspection.completed.v1",
)
async def complete_inspection(
    order_id: uuid.UUID,
    response: Response,
    session: SessionDep,
    user: Technician,
    idempotency: IdempotencyDep,
    if_match: IfMatch = None,
):
    async def work() -> InspectionPublic:
        inspection = await inspections.complete_inspection(
            session, order_id, user, utcnow(), if_match=if_match
        )
        return _public(inspection, response)

    return await idempotency(session).run(
        work, InspectionPublic, status_code=200, response=response
    )
