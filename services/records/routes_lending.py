"""Lending's HTTP API: items, loan requests and the clerk's transitions."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from services.records import lending
from services.records.config import SettingsDep
from services.records.models import (
    LendingItemCreate,
    LendingItemPublic,
    LoanAction,
    LoanPublic,
    LoanRequest,
    LoanStatus,
)
from shared.auth import Role, User, require
from shared.concurrency import IfMatch
from shared.idempotency import IdempotencyDep
from shared.pagination import Cursor, Limit, Page, whole
from shared.service import ReadSessionDep, SessionDep

router = APIRouter(prefix="/lending", tags=["lending"])

Clerk = Annotated[User, Depends(require(Role.records_clerk, Role.admin))]
Borrower = Annotated[
    User,
    Depends(
        require(
            Role.records_clerk,
            Role.admin,
            Role.technician,
            Role.advisor,
            Role.foreman,
            Role.qc,
            Role.manager,
        )
    ),
]


@router.post(
    "/items",
    status_code=status.HTTP_201_CREATED,
    response_model=LendingItemPublic,
    summary="Register an item that can be lent",
)
async def add_item(
    body: LendingItemCreate, session: SessionDep, user: Clerk, idempotency: IdempotencyDep
):
    return await idempotency(session).run(
        lambda: lending.add_item(session, body, user), LendingItemPublic
    )


@router.get(
    "/items",
    response_model=Page[LendingItemPublic],
    summary="The branch's items, newest first",
)
async def list_items(
    session: ReadSessionDep, user: Clerk, limit: Limit = 100, cursor: Cursor = None
):
    items, next_cursor = await lending.items_of_branch(session, user, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/items/{item_id}", response_model=LendingItemPublic)
async def get_item(item_id: uuid.UUID, session: ReadSessionDep, user: Borrower):
    return await lending.get_item(session, item_id, user)


@router.get(
    "/items/{item_id}/loans",
    response_model=Page[LoanPublic],
    summary="The item's full lending history, newest first",
)
async def item_history(
    item_id: uuid.UUID,
    session: ReadSessionDep,
    settings: SettingsDep,
    user: Clerk,
    limit: Limit = 100,
    cursor: Cursor = None,
):
    items, next_cursor = await lending.loans_of_item(
        session, settings, item_id, user, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/loans",
    status_code=status.HTTP_201_CREATED,
    response_model=LoanPublic,
    summary="Ask to borrow an item",
)
async def request_loan(
    body: LoanRequest,
    session: SessionDep,
    settings: SettingsDep,
    user: Borrower,
    idempotency: IdempotencyDep,
    response: Response,
):
    async def work() -> LoanPublic:
        loan = await lending.request(session, settings, body.item_id, body.purpose, user)
        response.headers["ETag"] = loan.etag
        return loan

    return await idempotency(session).run(work, LoanPublic, response=response)


@router.get(
    "/loans",
    response_model=Page[LoanPublic],
    summary="The branch's loans in the given states (`status` repeated; all without), "
    "newest request first",
)
async def list_loans(
    session: ReadSessionDep,
    settings: SettingsDep,
    user: Clerk,
    states: Annotated[list[LoanStatus] | None, Query(alias="status")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
):
    items, next_cursor = await lending.loans_of_branch(
        session, settings, user, states or [], limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/loans/{loan_id}", response_model=LoanPublic)
async def get_loan(
    loan_id: uuid.UUID,
    session: ReadSessionDep,
    settings: SettingsDep,
    user: Borrower,
    response: Response,
):
    loan = await lending.get_loan(session, loan_id, user)
    response.headers["ETag"] = lending.etag(loan.version)
    return lending.public(loan, on=lending.today(settings, loan.branch))


@router.post(
    "/loans/{loan_id}/{action}",
    response_model=LoanPublic,
    summary="Move a loan on: approve (due_on), reject, cancel, hand-out, return (condition), "
    "report-lost. If-Match required.",
)
async def act_on_loan(
    loan_id: uuid.UUID,
    action: Annotated[lending.LoanAct, Path()],
    session: SessionDep,
    settings: SettingsDep,
    user: Borrower,
    idempotency: IdempotencyDep,
    response: Response,
    body: LoanAction | None = None,
    if_match: IfMatch = None,
):
    async def work() -> LoanPublic:
        loan = await lending.transition(
            session, settings, loan_id, action, body or LoanAction(), user, if_match
        )
        response.headers["ETag"] = loan.etag
        return loan

    return await idempotency(session).run(work, LoanPublic, status_code=200, response=response)


@router.get(
    "/people/{person_id}/loans",
    response_model=Page[LoanPublic],
    summary="A person's loans, newest first (the clerk, or the person themselves)",
)
async def person_history(
    person_id: Annotated[str, Path(max_length=64)],
    session: ReadSessionDep,
    settings: SettingsDep,
    user: Borrower,
    limit: Limit = 100,
    cursor: Cursor = None,
):
    items, next_cursor = await lending.loans_of_person(
        session, settings, person_id, user, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/overdue",
    response_model=Page[LoanPublic],
    summary="Loans past their due date, longest overdue first (the first `limit`; one page, "
    "as the items on loan bound it)",
)
async def overdue(session: ReadSessionDep, settings: SettingsDep, user: Clerk, limit: Limit = 100):
    return whole(await lending.overdue(session, settings, user, limit))
