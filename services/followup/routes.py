"""Followup's HTTP API."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from services.followup import service
from services.followup.models import ContactPublic
from shared.auth import Role, User, require
from shared.pagination import Cursor, Limit, Page
from shared.service import ReadSessionDep

router = APIRouter(tags=["contacts"])

Agent = Annotated[User, Depends(require(Role.followup_agent, Role.manager, Role.advisor))]


@router.get(
    "/contacts",
    response_model=Page[ContactPublic],
    summary="Customers the agents may call, most recently updated first",
)
async def list_contacts(
    session: ReadSessionDep, user: Agent, limit: Limit = 50, cursor: Cursor = None
):
    items, next_cursor = await service.list_contacts(session, user, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/contacts/{customer_id}", response_model=ContactPublic)
async def get_contact(customer_id: uuid.UUID, session: ReadSessionDep, user: Agent):
    return await service.get_contact(session, customer_id, user)
