"""Stored files' HTTP API: upload, metadata, ranged download, references."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse

from services.records import files
from services.records.models import (
    FileReferenceCreate,
    FileReferencePublic,
    StoredFilePublic,
)
from shared.auth import Role, User, require
from shared.downloads import file_headers
from shared.idempotency import IdempotencyDep
from shared.openapi import content_of
from shared.pagination import Page, whole
from shared.service import ReadSessionDep, SessionDep, runtime

router = APIRouter(tags=["files"])

STAFF = (
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
Staff = Annotated[User, Depends(require(*STAFF))]


@router.post(
    "/files",
    response_model=StoredFilePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Upload a file (JPEG, PNG, WEBP, HEIC or PDF; 201 new, 200 same content again)",
    responses={200: {"model": StoredFilePublic}, 413: {}, 415: {}, 422: {}},
)
async def upload_file(
    request: Request,
    user: Staff,
    filename: Annotated[str | None, Query(max_length=255)] = None,
):
    # No session dependency: the body streams to storage first, and only then does a
    # short write transaction record it. Uploads are idempotent by content, so a retry
    # (with or without Idempotency-Key) gets the same file.
    settings = request.app.state.settings
    storage = files.storage_for(settings)
    received = await files.receive(
        request.stream(),
        request.headers.get("content-type", "application/octet-stream"),
        filename,
        storage,
        settings.max_upload_bytes,
    )
    row, created = await files.store(runtime(request).db, storage, received, user)
    body = StoredFilePublic.model_validate(row, from_attributes=True).model_dump(mode="json")
    return JSONResponse(
        body,
        status_code=201 if created else 200,
        headers={"Location": f"/files/{row.id}", "ETag": f'"{row.sha256}"'},
    )


@router.get("/files/{file_id}", response_model=StoredFilePublic, summary="A file's metadata")
async def get_file(file_id: uuid.UUID, session: ReadSessionDep, user: Staff):
    return await files.get_file(session, file_id, user)


@router.get(
    "/files/{file_id}/content",
    summary="The file's bytes; a single Range gets 206",
    response_class=StreamingResponse,
    responses={
        **content_of("*/*", description="the file, in its own media type"),
        **content_of("*/*", description="the range asked for", status=206),
        416: {},
    },
)
async def download_file(
    file_id: uuid.UUID,
    request: Request,
    session: ReadSessionDep,
    user: Staff,
    range_header: Annotated[str | None, Header(alias="Range", max_length=200)] = None,
) -> Response:
    row = await files.get_file(session, file_id, user)
    return file_response(
        request, row.sha256, row.size, row.media_type, row.original_name, range_header
    )


def file_response(
    request: Request,
    sha256: str,
    size: int,
    media_type: str,
    name: str,
    range_header: str | None,
) -> Response:
    storage = files.storage_for(request.app.state.settings)
    try:
        wanted = files.parse_range(range_header, size)
    except files.RangeNotSatisfiable:
        response = JSONResponse(
            {
                "type": "urn:workshop:problem:range-not-satisfiable",
                "title": "Range not satisfiable",
                "status": 416,
                "detail": f"the file has {size} bytes",
                "instance": request.url.path,
            },
            status_code=416,
            media_type="application/problem+json",
        )
        response.headers["Content-Range"] = f"bytes */{size}"
        return response
    start, end = wanted if wanted is not None else (0, size - 1)
    served_as, safety = file_headers(media_type, name)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": f'"{sha256}"',
        "Content-Length": str(end - start + 1),
        "Cache-Control": "private, max-age=31536000, immutable",
        **safety,
    }
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(
        storage.read(sha256, start, end),
        status_code=206 if wanted is not None else 200,
        media_type=served_as,
        headers=headers,
    )


@router.post(
    "/files/{file_id}/references",
    response_model=FileReferencePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Record that something needs the file (it is then never collected)",
)
async def add_reference(
    file_id: uuid.UUID,
    body: FileReferenceCreate,
    session: SessionDep,
    user: Staff,
    idempotency: IdempotencyDep,
):
    return await idempotency(session).run(
        lambda: files.add_reference(session, file_id, body.owner, body.owner_id, user),
        FileReferencePublic,
    )


@router.get(
    "/files/{file_id}/references",
    response_model=Page[FileReferencePublic],
    summary="What refers to the file (one page)",
)
async def list_references(file_id: uuid.UUID, session: ReadSessionDep, user: Staff):
    return whole(await files.references(session, file_id, user))


@router.delete(
    "/files/{file_id}/references/{owner}/{owner_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Drop a reference; a file left with none is collected after the grace period",
)
async def remove_reference(
    file_id: uuid.UUID,
    owner: Annotated[str, Path(max_length=60)],
    owner_id: Annotated[str, Path(max_length=64)],
    session: SessionDep,
    user: Staff,
) -> Response:
    await files.remove_reference(session, file_id, owner, owner_id, user)
    return Response(status_code=204)
