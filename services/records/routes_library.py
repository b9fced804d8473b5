"""The technical library's HTTP API."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from services.records import library
from services.records.models import (
    DocumentCategory,
    LibraryDocumentCreate,
    LibraryDocumentPublic,
    LibraryDocumentUpdate,
    LibraryDownloadPublic,
    LibraryHit,
    LibraryVersionPublic,
    StoredFile,
    VersionCreate,
)
from services.records.routes_files import file_response
from shared.auth import Role, User, require
from shared.concurrency import IfMatch, set_etag
from shared.idempotency import IdempotencyDep
from shared.openapi import content_of
from shared.pagination import Cursor, Limit, Page, whole
from shared.problems import InvalidInput, NotFound
from shared.service import ReadSessionDep, SessionDep, runtime

router = APIRouter(prefix="/library", tags=["library"])

Clerk = Annotated[User, Depends(require(Role.records_clerk, Role.admin))]
Reader = Annotated[
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
Make = Annotated[str | None, Query(max_length=80)]
Model = Annotated[str | None, Query(max_length=80)]
Year = Annotated[int | None, Query(ge=1950, le=2100)]
Vin = Annotated[
    str | None, Query(min_length=3, max_length=17, pattern=r"^[A-HJ-NPR-Za-hj-npr-z0-9]+$")
]
OpCodes = Annotated[list[str] | None, Query(alias="op_code", max_length=50)]


def _hits(rows) -> list[LibraryHit]:
    return [LibraryHit(document=library.public(d), rank=r) for d, r in rows]


@router.post(
    "/documents",
    status_code=status.HTTP_201_CREATED,
    response_model=LibraryDocumentPublic,
    summary="Add a document (version 1 is an uploaded file)",
)
async def create_document(
    body: LibraryDocumentCreate,
    request: Request,
    user: Clerk,
    idempotency: IdempotencyDep,
    response: Response,
):
    # A PDF's text is read before the write transaction opens (it can take a while).
    rt = runtime(request)
    extracted = (
        None if body.text else await library.file_text(rt.db, rt.settings, body.file_id, user)
    )

    async def work() -> LibraryDocumentPublic:
        document = await library.create(session, body, user, extracted)
        response.headers["ETag"] = document.etag
        return document

    async with rt.db.transaction() as session:
        return await idempotency(session).run(work, LibraryDocumentPublic, response=response)


@router.get("/documents/{document_id}", response_model=LibraryDocumentPublic)
async def get_document(
    document_id: uuid.UUID, session: ReadSessionDep, user: Reader, response: Response
):
    document = await library.get(session, document_id, user)
    set_etag(response, document.version)
    return library.public(document)


@router.patch(
    "/documents/{document_id}",
    response_model=LibraryDocumentPublic,
    summary="Edit a document's description (If-Match required)",
)
async def update_document(
    document_id: uuid.UUID,
    body: LibraryDocumentUpdate,
    session: SessionDep,
    user: Clerk,
    response: Response,
    if_match: IfMatch = None,
):
    result = await library.update(session, document_id, body, user, if_match)
    response.headers["ETag"] = result.etag
    return result


@router.post(
    "/documents/{document_id}/versions",
    status_code=status.HTTP_200_OK,
    response_model=LibraryDocumentPublic,
    summary="Make an uploaded file the current version (If-Match required)",
)
async def add_version(
    document_id: uuid.UUID,
    body: VersionCreate,
    request: Request,
    user: Clerk,
    idempotency: IdempotencyDep,
    response: Response,
    if_match: IfMatch = None,
):
    rt = runtime(request)
    extracted = await library.file_text(rt.db, rt.settings, body.file_id, user)

    async def work() -> LibraryDocumentPublic:
        document = await library.add_version(
            session, document_id, body.file_id, body.note, user, if_match, extracted
        )
        response.headers["ETag"] = document.etag
        return document

    async with rt.db.transaction() as session:
        return await idempotency(session).run(
            work, LibraryDocumentPublic, status_code=200, response=response
        )


@router.get(
    "/documents/{document_id}/versions",
    response_model=Page[LibraryVersionPublic],
    summary="The current version and its history, newest first (one page)",
)
async def list_versions(document_id: uuid.UUID, session: ReadSessionDep, user: Reader):
    return whole(await library.versions(session, document_id, user))


@router.get(
    "/documents/{document_id}/content",
    summary="Download the current (or a given) version; Range supported; every call logged",
    response_class=Response,
    responses={
        **content_of("*/*", description="the version's file, in its own media type"),
        **content_of("*/*", description="the range asked for", status=206),
        416: {},
    },
)
async def download(
    document_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    user: Reader,
    version: Annotated[int | None, Query(ge=1)] = None,
    range_header: Annotated[str | None, Header(alias="Range", max_length=200)] = None,
) -> Response:
    document, chosen = await library.version_for_download(
        session, document_id, version, user, ranged=range_header is not None
    )
    row = await session.get(StoredFile, chosen.file_id)
    if row is None:  # a version's file is referenced, so it is never collected
        raise NotFound(f"the file of version {chosen.number} is missing")
    name = f"{document.title}.v{chosen.number}.{row.original_name.rsplit('.', 1)[-1]}"
    return file_response(request, row.sha256, row.size, row.media_type, name, range_header)


@router.get(
    "/documents/{document_id}/downloads",
    response_model=Page[LibraryDownloadPublic],
    summary="Who downloaded the document, newest first",
)
async def list_downloads(
    document_id: uuid.UUID,
    session: ReadSessionDep,
    user: Clerk,
    limit: Limit = 100,
    cursor: Cursor = None,
):
    items, next_cursor = await library.downloads(
        session, document_id, user, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/search", response_model=Page[LibraryHit], summary="Full-text search with filters")
async def search(
    session: ReadSessionDep,
    user: Reader,
    q: Annotated[str | None, Query(max_length=200)] = None,
    category: DocumentCategory | None = None,
    make: Make = None,
    model: Model = None,
    year: Year = None,
    limit: Limit = 50,
):
    rows = await library.search(
        session, user, q=q, category=category, make=make, model=model, year=year, limit=limit
    )
    return whole(_hits(rows))


@router.get(
    "/for-vehicle",
    response_model=Page[LibraryHit],
    summary="Documents for a vehicle: by make, model and year, or by VIN prefix",
)
async def for_vehicle(
    session: ReadSessionDep,
    user: Reader,
    make: Make = None,
    model: Model = None,
    year: Year = None,
    vin: Vin = None,
    category: DocumentCategory | None = None,
    limit: Limit = 50,
):
    if not make and not vin:
        raise InvalidInput("make", "give a make (with model and year) or a VIN")
    rows = await library.search(
        session, user, make=make, model=model, year=year, vin=vin, category=category, limit=limit
    )
    return whole(_hits(rows))


@router.get(
    "/for-op-codes",
    response_model=Page[LibraryHit],
    summary="Documents for a repair order's op codes",
)
async def for_op_codes(
    session: ReadSessionDep,
    user: Reader,
    op_codes: OpCodes = None,
    make: Make = None,
    model: Model = None,
    year: Year = None,
    limit: Limit = 50,
):
    if not op_codes:
        raise InvalidInput("op_code", "give at least one op code")
    rows = await library.search(
        session, user, op_codes=op_codes, make=make, model=model, year=year, limit=limit
    )
    return whole(_hits(rows))
