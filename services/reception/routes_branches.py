"""The branch directory and the staff roster over HTTP."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from services.reception import branches
from services.reception.branch_models import (
    BranchPublic,
    BranchSet,
    StaffMemberPublic,
    StaffMemberSet,
    WorkingMember,
)
from shared.auth import Role, User, require
from shared.concurrency import IfMatch, set_etag
from shared.pagination import Cursor, Limit, Page
from shared.service import ReadSessionDep, SessionDep
from shared.types import Day

router = APIRouter(tags=["branches"])

# The manager keeps their branch's record and roster; the group's admin any branch's.
BranchAdmin = Annotated[User, Depends(require(Role.manager, Role.admin))]
# Every member of staff reads their branch and who works in it.
StaffReader = Annotated[
    User,
    Depends(
        require(
            Role.advisor,
            Role.foreman,
            Role.technician,
            Role.qc,
            Role.cashier,
            Role.followup_agent,
            Role.records_clerk,
            Role.manager,
            Role.admin,
        )
    ),
]
BranchCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
StaffId = Annotated[str, Path(min_length=1, max_length=64)]
RoleFilter = Annotated[Role | None, Query(description="only members holding this role")]


@router.get("/branches", response_model=Page[BranchPublic], summary="The branches you see")
async def list_branches(session: ReadSessionDep, user: StaffReader):
    return await branches.list_branches(session, user)


@router.get("/branches/{branch}", response_model=BranchPublic, summary="A branch, with ETag")
async def get_branch(
    branch: BranchCode, response: Response, session: ReadSessionDep, user: StaffReader
):
    row = await branches.get_branch(session, branch, user)
    set_etag(response, row.version)
    return branches.branch_public(row)


@router.put(
    "/branches/{branch}",
    response_model=BranchPublic,
    summary="Create a branch, or replace its record (If-Match)",
    responses={201: {"model": BranchPublic, "description": "created"}},
)
async def put_branch(
    branch: BranchCode,
    body: BranchSet,
    response: Response,
    session: SessionDep,
    user: BranchAdmin,
    if_match: IfMatch = None,
):
    row, created = await branches.put_branch(session, branch, body, user, if_match=if_match)
    if created:
        response.status_code = status.HTTP_201_CREATED
    set_etag(response, row.version)
    return branches.branch_public(row)


@router.get(
    "/branches/{branch}/staff",
    response_model=Page[StaffMemberPublic],
    summary="The branch's staff roster",
)
async def list_staff(
    branch: BranchCode,
    session: ReadSessionDep,
    user: StaffReader,
    role: RoleFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    return await branches.roster(session, branch, user, role=role, limit=limit, cursor=cursor)


@router.get(
    "/branches/{branch}/staff/{staff_id}",
    response_model=StaffMemberPublic,
    summary="A member of staff, with ETag",
)
async def get_staff_member(
    branch: BranchCode,
    staff_id: StaffId,
    response: Response,
    session: ReadSessionDep,
    user: StaffReader,
):
    row = await branches.get_member(session, branch, staff_id, user)
    set_etag(response, row.version)
    return branches.member_public(row)


@router.put(
    "/branches/{branch}/staff/{staff_id}",
    response_model=StaffMemberPublic,
    summary="Put a member on the roster, or replace them (If-Match)",
    responses={201: {"model": StaffMemberPublic, "description": "created"}},
)
async def put_staff_member(
    branch: BranchCode,
    staff_id: StaffId,
    body: StaffMemberSet,
    response: Response,
    session: SessionDep,
    user: BranchAdmin,
    if_match: IfMatch = None,
):
    row, created = await branches.put_member(
        session, branch, staff_id, body, user, if_match=if_match
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    set_etag(response, row.version)
    return branches.member_public(row)


@router.get(
    "/branches/{branch}/working",
    response_model=Page[WorkingMember],
    summary="Who works on a day (the branch's local day), by start of shift",
)
async def working(
    branch: BranchCode,
    on: Annotated[Day, Query(description="YYYY-MM-DD")],
    session: ReadSessionDep,
    user: StaffReader,
    role: RoleFilter = None,
):
    return await branches.working_on(session, branch, on, user, role=role)
