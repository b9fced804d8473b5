"""Stored files: streamed uploads checked by content, kept once per hash, read by range,
referenced by whatever needs them, and collected when nothing has for a grace period."""

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import filetype
from python_multipart import MultipartParser
from python_multipart.multipart import MultipartState, parse_options_header
from sqlalchemy import delete, exists
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.records.models import FileReference, StoredFile
from services.records.storage import FileStorage, StagedUpload, make_storage
from shared.auth import User
from shared.db import Database
from shared.events import utcnow
from shared.problems import DomainError, InvalidInput, NotFound, PayloadTooLarge
from shared.text import check_line

if TYPE_CHECKING:
    from services.records.config import Settings
    from shared.service import Runtime

log = logging.getLogger(__name__)

# What the workshop keeps: photos from tablets and phones, and documents.
ALLOWED_TYPES = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/heic": "heic",
    "application/pdf": "pdf",
}
SNIFF_BYTES = 8192


class UnsupportedMediaType(DomainError):
    status, slug, title = 415, "unsupported-media-type", "File type not accepted"


class RangeNotSatisfiable(DomainError):
    status, slug, title = 416, "range-not-satisfiable", "Range not satisfiable"


@dataclass
class Received:
    staged: StagedUpload
    sha256: str
    size: int
    head: bytes
    name: str


class _Sink:
    """Hashes, counts and stages the bytes of one upload as they arrive."""

    def __init__(self, staged: StagedUpload, limit: int):
        self.staged, self.limit = staged, limit
        self.hash = hashlib.sha256()
        self.size = 0
        self.head = b""

    async def write(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size > self.limit:
            raise PayloadTooLarge(f"a file may be at most {self.limit} bytes")
        if len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]
        self.hash.update(data)
        await self.staged.write(data)


def _clean_name(name: str | None) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    return name[:255] or "file"


async def receive(
    chunks: AsyncIterator[bytes],
    content_type: str,
    filename: str | None,
    storage: FileStorage,
    limit: int,
) -> Received:
    """Stream the body into staging, through the hash; the body is never held whole.

    multipart/form-data takes the part named `file`; any other body is the file itself
    (its name from `filename`). Whatever goes wrong, the staged bytes are thrown away.
    """
    staged = await storage.stage()
    sink = _Sink(staged, limit)
    try:
        mime, options = parse_options_header(content_type)
        if mime == b"multipart/form-data":
            name = await _receive_multipart(chunks, options.get(b"boundary"), sink)
        else:
            async for chunk in chunks:
                await sink.write(chunk)
            name = filename
        if sink.size == 0:
            raise InvalidInput("file", "the file is empty")
        return Received(staged, sink.hash.hexdigest(), sink.size, sink.head, _clean_name(name))
    except BaseException:
        await asyncio.shield(staged.discard())
        raise


async def _receive_multipart(
    chunks: AsyncIterator[bytes], boundary: bytes | None, sink: _Sink
) -> str | None:
    if not boundary:
        raise InvalidInput("file", "multipart body without a boundary")
    pending: list[bytes] = []
    headers: dict[bytes, bytes] = {}
    field_name: list[bytes] = []
    field_value: list[bytes] = []
    state: dict[str, bool] = {"in_file": False, "found": False}
    names: list[str | None] = []

    def on_part_begin() -> None:
        headers.clear()
        state["in_file"] = False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field_name.append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        field_value.append(data[start:end])

    def on_header_end() -> None:
        headers[b"".join(field_name).lower()] = b"".join(field_value)
        field_name.clear()
        field_value.clear()

    def on_headers_finished() -> None:
        _, params = parse_options_header(headers.get(b"content-disposition", b""))
        if params.get(b"name") == b"file" and not state["found"]:
            state["in_file"] = state["found"] = True
            raw = params.get(b"filename")
            name = raw.decode("utf-8", "replace") if raw else None
            check_line("filename", name)  # before the file's bytes are read
            names.append(name)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["in_file"]:
            pending.append(data[start:end])

    def on_part_end() -> None:
        state["in_file"] = False

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in chunks:
            parser.write(chunk)
            for data in pending:
                await sink.write(data)
            pending.clear()
        parser.finalize()
    except DomainError:
        raise
    except Exception as exc:
        raise InvalidInput("file", f"malformed multipart body: {exc}") from exc
    if parser.state != MultipartState.END:
        # The parser keeps what it has read when the body stops early; a form cut before
        # its closing boundary may carry a file cut short.
        raise InvalidInput("file", "multipart body ends before its closing boundary")
    if not state["found"]:
        raise InvalidInput("file", "no part named 'file' in the form")
    return names[0]


def media_type_of(head: bytes) -> str:
    kind = filetype.guess(head)
    if kind is None or kind.mime not in ALLOWED_TYPES:
        found = kind.mime if kind else "unknown"
        raise UnsupportedMediaType(
            f"content is {found}; accepted: {', '.join(sorted(ALLOWED_TYPES))}",
            errors=[{"field": "file", "message": f"content type {found} is not accepted"}],
        )
    return kind.mime


async def store(
    db: Database, storage: FileStorage, received: Received, by: User
) -> tuple[StoredFile, bool]:
    """Keep the upload: the blob is in place before the row commits, so a row always has
    its bytes; a blob left without a row (a crash in between) is collected later."""
    try:
        media_type = media_type_of(received.head)
        async with db.transaction() as session:
            found = (
                await session.exec(
                    select(StoredFile).where(
                        StoredFile.branch == by.branch, StoredFile.sha256 == received.sha256
                    )
                )
            ).first()
            await storage.place(received.staged, received.sha256)
            now = utcnow()
            if found is not None:
                found.last_seen_at = now
                return found, False
            row = StoredFile(
                sha256=received.sha256,
                size=received.size,
                media_type=media_type,
                original_name=received.name,
                uploaded_by=by.id,
                branch=by.branch,
                created_at=now,
                last_seen_at=now,
            )
            session.add(row)
            return row, True
    finally:
        await asyncio.shield(received.staged.discard())


async def get_file(session: AsyncSession, file_id: uuid.UUID, by: User) -> StoredFile:
    row = await session.get(StoredFile, file_id)
    if row is None or row.branch != by.branch:
        raise NotFound(f"no file {file_id}")
    return row


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range asked for, or None for the whole file.

    A header this service does not understand (other units, several ranges) is ignored, as
    RFC 9110 allows; a well-formed range that lies outside the file is a 416.
    """
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable("an empty suffix range", size=size)
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(f"the file has {size} bytes", size=size)
    return start, min(end, size - 1)


async def add_reference(
    session: AsyncSession, file_id: uuid.UUID, owner: str, owner_id: str, by: User
) -> FileReference:
    await get_file(session, file_id, by)
    found = await session.get(FileReference, (file_id, owner, owner_id))
    if found is not None:
        return found
    reference = FileReference(file_id=file_id, owner=owner, owner_id=owner_id, created_at=utcnow())
    session.add(reference)
    await session.flush()
    return reference


async def remove_reference(
    session: AsyncSession, file_id: uuid.UUID, owner: str, owner_id: str, by: User
) -> None:
    await get_file(session, file_id, by)
    found = await session.get(FileReference, (file_id, owner, owner_id))
    if found is None:
        raise NotFound(f"file {file_id} has no reference from {owner} {owner_id}")
    await session.delete(found)


async def references(session: AsyncSession, file_id: uuid.UUID, by: User) -> list[FileReference]:
    await get_file(session, file_id, by)
    query = (
        select(FileReference)
        .where(FileReference.file_id == file_id)
        .order_by(col(FileReference.created_at))
    )
    return list((await session.exec(query)).all())


async def collect_unreferenced(
    db: Database, storage: FileStorage, *, grace: timedelta, now: datetime | None = None
) -> int:
    """Delete files nothing refers to and nobody uploaded within `grace`; returns how many.

    A blob goes only when no branch's row names it and it was not placed within the grace,
    and inside the write transaction, so an upload of the same content racing the
    collector either keeps the blob or finds the row gone and places it again.
    """
    cutoff = (now or utcnow()) - grace
    removed = 0
    async with db.transaction() as session:
        unreferenced = ~exists().where(col(FileReference.file_id) == col(StoredFile.id))
        rows = (
            await session.exec(
                select(StoredFile.id, StoredFile.sha256).where(
                    col(StoredFile.last_seen_at) < cutoff, unreferenced
                )
            )
        ).all()
        ids = [row[0] for row in rows]
        if ids:
            await session.exec(delete(StoredFile).where(col(StoredFile.id).in_(ids), unreferenced))
            removed = len(ids)
        hashes = {row[1] for row in rows}
        for sha256 in hashes:
            still_used = (
                await session.exec(select(StoredFile.id).where(StoredFile.sha256 == sha256))
            ).first()
            if still_used is None:
                await storage.delete_if_idle(sha256, idle_seconds=0)
    # Blobs a crash left without a row.
    idle = grace.total_seconds()
    orphans = await storage.idle_blobs(idle_seconds=idle)
    if orphans:
        async with db.reader() as session:
            known = set(
                (
                    await session.exec(
                        select(StoredFile.sha256).where(col(StoredFile.sha256).in_(orphans))
                    )
                ).all()
            )
        for sha256 in orphans:
            if sha256 not in known:
                await storage.delete_if_idle(sha256, idle_seconds=idle)
    return removed


# References that keep a file through a customer's erasure: the library's own versions,
# and invoices (kept as the law requires, like the invoice entries of the archive).
KEPT_THROUGH_ERASURE = ("records.library_version", "invoice")


async def erase_owned_files(
    session: AsyncSession, branch: str, owner_ids: set[str], file_ids: set[uuid.UUID]
) -> list[StoredFile]:
    """Delete the branch's files that only the given owners refer to (a customer's
    intake photos and signatures: references whose `owner_id` is the customer, their car,
    intake, repair order, …) and the files named in their records (`file_ids`) that
    nothing else refers to; returns the deleted rows. Their blobs go after the commit
    (`delete_unused_blobs`), or by the collector's sweep should that not happen."""
    candidates: set[uuid.UUID] = set(file_ids)
    if owner_ids:
        named = await session.exec(
            select(FileReference.file_id).where(col(FileReference.owner_id).in_(owner_ids))
        )
        candidates |= set(named.all())
    if not candidates:
        return []
    rows = (
        await session.exec(
            select(StoredFile).where(
                col(StoredFile.id).in_(candidates), StoredFile.branch == branch
            )
        )
    ).all()
    references = (
        await session.exec(
            select(FileReference).where(col(FileReference.file_id).in_([r.id for r in rows]))
        )
    ).all()
    by_file: dict[uuid.UUID, list[FileReference]] = {}
    for reference in references:
        by_file.setdefault(reference.file_id, []).append(reference)
    erased = []
    for row in rows:
        refs = by_file.get(row.id, [])
        if any(
            ref.owner_id not in owner_ids or any(k in ref.owner for k in KEPT_THROUGH_ERASURE)
            for ref in refs
        ):
            continue
        for ref in refs:
            await session.delete(ref)
        await session.flush()
        await session.delete(row)
        erased.append(row)
    await session.flush()
    return erased


async def delete_unused_blobs(db: Database, storage: FileStorage, hashes: list[str]) -> None:
    """Delete each blob no branch's file names any more (checked in a write transaction,
    so an upload of the same content at the same moment keeps it)."""
    for sha256 in hashes:
        async with db.transaction() as session:
            used = (
                await session.exec(select(StoredFile.id).where(StoredFile.sha256 == sha256))
            ).first()
            if used is None:
                await storage.delete_if_idle(sha256, idle_seconds=0)


_storages: dict[tuple[object, ...], FileStorage] = {}


def storage_for(settings: "Settings") -> FileStorage:
    """The storage the settings name, made once (an S3 client keeps its connection pool
    between requests)."""
    key = tuple(
        getattr(settings, name, None)
        for name in (
            "files_backend",
            "files_dir",
            "s3_endpoint_url",
            "s3_bucket",
            "s3_region",
            "s3_access_key_id",
            "s3_secret_access_key",
            "s3_prefix",
            "s3_part_bytes",
        )
    )
    storage = _storages.get(key)
    if storage is None:
        storage = _storages[key] = make_storage(settings)
    return storage


async def open_storage_on_start(runtime: "Runtime") -> None:
    """Make the storage before the first request, and find out at start, not at the first
    upload, when it is unreachable or misnamed."""
    storage = storage_for(runtime.settings)  # type: ignore[arg-type]
    await storage.check()


async def file_collector(runtime: "Runtime") -> None:
    """Background job: collect unreferenced files every interval."""
    settings = runtime.settings
    interval = getattr(settings, "file_gc_interval_seconds", 3600.0)
    grace = timedelta(seconds=getattr(settings, "file_gc_grace_seconds", 86400.0))
    storage = storage_for(settings)  # type: ignore[arg-type]
    while True:
        try:
            removed = await collect_unreferenced(runtime.db, storage, grace=grace)
            if removed:
                log.info("collected %d unreferenced files", removed)
        except Exception:
            log.exception("collecting unreferenced files failed; trying again later")
        await asyncio.sleep(interval)
