"""Workorders' HTTP API."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from services.workorders import service
from services.workorders.models import RepairOrderPublic, RepairOrderStatus
from shared.auth import Role, User, require
from shared.pagination import Cursor, Limit, Page
from shared.service import ReadSessionDep

router = APIRouter(tags=["repair orders"])

Reader = Annotated[
    User,
    Depends(
        require(Role.advisor, Role.foreman, Role.technician, Role.qc, Role.cashier, Role.manager)
    ),
]


@router.get(
    "/repair-orders",
    response_model=Page[RepairOrderPublic],
    summary="Repair orders of your branch, newest first",
)
async def list_repair_orders(
    session: ReadSessionDep,
    user: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    intake_id: Annotated[uuid.UUID | None, Query()] = None,
    status: Annotated[RepairOrderStatus | None, Query()] = None,
):
    items, next_cursor = await service.list_repair_orders(
        session, user, intake_id=intake_id, status=status, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/repair-orders/{order_id}", response_model=RepairOrderPublic)
async def get_repair_order(order_id: uuid.UUID, session: ReadSessionDep, user: Reader):
    return await service.get_repair_order(session, order_id, user)
