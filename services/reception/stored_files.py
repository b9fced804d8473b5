"""Intake photos and signatures live in records' file storage; reception keeps their ids
and tells records, through its `POST /files/{id}/references`, that an intake needs them
(a file nothing refers to is collected after records' grace period)."""

import asyncio
import uuid
from dataclasses import dataclass

import httpx
from fastapi import Request

from services.reception.config import Settings
from services.reception.models import IntakeWalkaround
from shared.problems import DomainError, InvalidInput

INTAKE_PHOTO = "reception.intake_photo"
INTAKE_SIGNATURE = "reception.intake_signature"
CONSENT_SIGNATURE = "reception.consent_signature"


class RecordsUnavailable(DomainError):
    status, slug, title = 503, "records-unavailable", "The file storage did not answer"


@dataclass(frozen=True)
class FileUse:
    """One file an intake (or a consent) refers to, and the request field that named it."""

    file_id: uuid.UUID
    owner: str
    owner_id: uuid.UUID
    field: str


def intake_files(intake_id: uuid.UUID, data: IntakeWalkaround) -> list[FileUse]:
    uses = [
        FileUse(mark.photo_file_id, INTAKE_PHOTO, intake_id, f"damage_marks[{i}].photo_file_id")
        for i, mark in enumerate(data.damage_marks or [])
        if mark.photo_file_id is not None
    ]
    if data.signature_file_id is not None:
        uses.append(
            FileUse(data.signature_file_id, INTAKE_SIGNATURE, intake_id, "signature_file_id")
        )
    return uses


async def keep(request: Request, uses: list[FileUse]) -> None:
    """Ask records to keep every file before reception writes the reference.

    Called before the write transaction opens, so no database lock is held while records
    answers. A file records does not have in the user's branch is a 422 naming the field;
    records unreachable is a 503 and nothing is written. Records' references are
    idempotent, so a retry of the same request asks again harmlessly; should reception's
    write then fail, the file stays kept (never the other way round: a saved intake whose
    photo records would collect).
    """
    if not uses:
        return
    settings: Settings = request.app.state.settings
    transport = getattr(request.app.state, "records_transport", None)
    headers = {"Authorization": request.headers.get("authorization", "")}
    async with httpx.AsyncClient(
        base_url=settings.records_url,
        timeout=settings.records_timeout_seconds,
        transport=transport,
    ) as client:
        for use in uses:
            try:
                r = await client.post(
                    f"/files/{use.file_id}/references",
                    headers=headers,
                    json={"owner": use.owner, "owner_id": str(use.owner_id)},
                )
            except httpx.HTTPError as exc:
                raise RecordsUnavailable(
                    f"records at {settings.records_url} did not answer ({type(exc).__name__}); "
                    "nothing was saved, try again"
                ) from exc
            if r.status_code == 404:
                raise InvalidInput(
                    use.field, f"no stored file {use.file_id} in your branch; upload it first"
                )
            if r.status_code not in (200, 201):
                raise RecordsUnavailable(
                    f"records refused to keep file {use.file_id} ({r.status_code}); "
                    "nothing was saved, try again"
                )


# What the intake sheet prints at most: pictures beyond these stay "on file".
MAX_PRINTED_FILES = 12
MAX_PRINTED_BYTES = 8 * 1024 * 1024


async def fetch_for_print(request: Request, file_ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes]:
    """The bytes of the files a printed sheet shows, read from records with the user's
    token. Best effort: a file records does not give (gone, too large, records down) is
    left out and the sheet says the picture is on file; printing never fails for it."""
    wanted = list(dict.fromkeys(file_ids))[:MAX_PRINTED_FILES]
    if not wanted:
        return {}
    settings: Settings = request.app.state.settings
    transport = getattr(request.app.state, "records_transport", None)
    headers = {"Authorization": request.headers.get("authorization", "")}
    async with httpx.AsyncClient(
        base_url=settings.records_url,
        timeout=settings.records_timeout_seconds,
        transport=transport,
    ) as client:

        async def one(file_id: uuid.UUID) -> tuple[uuid.UUID, bytes | None]:
            try:
                async with client.stream("GET", f"/files/{file_id}/content", headers=headers) as r:
                    if r.status_code != 200:
                        return file_id, None
                    data = bytearray()
                    async for chunk in r.aiter_bytes():
                        data += chunk
                        if len(data) > MAX_PRINTED_BYTES:
                            return file_id, None
                    return file_id, bytes(data)
            except httpx.HTTPError:
                return file_id, None

        found = await asyncio.gather(*(one(file_id) for file_id in wanted))
    return {file_id: data for file_id, data in found if data is not None}
