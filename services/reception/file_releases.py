"""Releasing records' references to photos and signatures an intake no longer shows.

A removed or replaced file becomes a `file_release` row in the same transaction as the
intake change. Right after the commit the request releases its branch's due rows with the
advisor's own token; what records did not take (unreachable, failing) is retried by a
background job with backoff, so a release is never lost, only late. A file the intake
shows again is kept again (its pending release is cancelled in the intake's transaction,
and a release that raced it re-asks records to keep the file)."""

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from fastapi import Request
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reception import stored_files
from services.reception.config import Settings
from services.reception.models import FileRelease, Intake
from shared.auth import User, issue_dev_token
from shared.db import Database
from shared.events import utcnow
from shared.problems import DomainError
from shared.service import runtime

log = logging.getLogger(__name__)

# Backoff between attempts of one release: the job's interval × 2, 4, 8 …, at most an hour.
MAX_BACKOFF_SECONDS = 3600


def intake_uses(intake: Intake) -> set[tuple[uuid.UUID, str]]:
    """The (file, owner) pairs an intake refers to now."""
    uses = {
        (uuid.UUID(str(mark["photo_file_id"])), stored_files.INTAKE_PHOTO)
        for mark in intake.damage_marks
        if mark.get("photo_file_id")
    }
    if intake.signature_file_id is not None:
        uses.add((intake.signature_file_id, stored_files.INTAKE_SIGNATURE))
    return uses


async def schedule(
    session: AsyncSession, intake: Intake, before: set[tuple[uuid.UUID, str]]
) -> list[FileRelease]:
    """In the intake's transaction: a release for every file the intake dropped, and the
    cancellation of pending releases of files it shows again. Returns the cancelled ones."""
    now_used = intake_uses(intake)
    pending = {
        (row.file_id, row.owner): row
        for row in (
            await session.exec(select(FileRelease).where(FileRelease.owner_id == intake.id))
        ).all()
    }
    cancelled = []
    for use in now_used & pending.keys():
        cancelled.append(pending[use])
        await session.delete(pending[use])
    for file_id, owner in before - now_used:
        if (file_id, owner) not in pending:
            session.add(
                FileRelease(file_id=file_id, owner=owner, owner_id=intake.id, branch=intake.branch)
            )
    return cancelled


async def pending(session: AsyncSession, intake_id: uuid.UUID) -> set[tuple[uuid.UUID, str]]:
    rows = await session.exec(
        select(FileRelease.file_id, FileRelease.owner).where(FileRelease.owner_id == intake_id)
    )
    return {(file_id, owner) for file_id, owner in rows.all()}


async def after_change(request: Request, user: User, again: list[stored_files.FileUse]) -> None:
    """After an intake change is committed: keep again what it shows again, and release
    the branch's due references with the advisor's token. Best effort: what fails here is
    left to the background job."""
    try:
        await stored_files.keep(request, again)
    except DomainError:
        log.warning("keeping files shown again failed; the release job re-checks them")
    token = (request.headers.get("authorization") or "").removeprefix("Bearer ").strip()
    settings: Settings = request.app.state.settings
    transport = getattr(request.app.state, "records_transport", None)
    try:
        await release_due(
            runtime(request).db,
            settings,
            transport,
            lambda branch: token if branch == user.branch else None,
            branch=user.branch,
            limit=10,
        )
    except Exception:
        log.exception("file releases after an intake change failed; the job tries again")


@dataclass(frozen=True)
class Due:
    file_id: uuid.UUID
    owner: str
    owner_id: uuid.UUID
    branch: str


def _client(settings: Settings, transport: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=settings.records_url,
        timeout=settings.records_timeout_seconds,
        transport=transport,
    )


async def release_due(
    db: Database,
    settings: Settings,
    transport: Any,
    token_for: Callable[[str], str | None],
    *,
    branch: str | None = None,
    limit: int = 50,
) -> int:
    """Release due references (of one branch, or all); returns how many records dropped.
    `token_for(branch)` gives the bearer token to act with, or None to leave a branch be."""
    now = utcnow()
    async with db.reader() as session:
        query = select(
            FileRelease.file_id, FileRelease.owner, FileRelease.owner_id, FileRelease.branch
        ).where(col(FileRelease.next_attempt_at) <= now)
        if branch is not None:
            query = query.where(FileRelease.branch == branch)
        due = [
            Due(*row)
            for row in (
                await session.exec(query.order_by(col(FileRelease.next_attempt_at)).limit(limit))
            ).all()
        ]
    released = 0
    async with _client(settings, transport) as client:
        for row in due:
            token = token_for(row.branch)
            if token is None:
                continue
            headers = {"Authorization": f"Bearer {token}"}
            error: str | None = None
            try:
                r = await client.delete(
                    f"/files/{row.file_id}/references/{row.owner}/{row.owner_id}",
                    headers=headers,
                )
                # 404: records holds no such reference (already dropped, or the file is gone)
                if r.status_code not in (204, 404):
                    error = f"records answered {r.status_code}"
            except httpx.HTTPError as exc:
                error = f"records did not answer ({type(exc).__name__})"
            if error is not None:
                await _postpone(db, row, error, settings.file_release_interval_seconds)
                continue
            released += 1
            if await _done(db, row):
                # The intake shows the file again: records must keep it after all.
                await _keep_again(client, row, headers)
    return released


async def _postpone(db: Database, row: Due, error: str, interval: float) -> None:
    async with db.transaction() as session:
        # Held: the request and the job (or two replicas) may both fail on it at once, and
        # each attempt must count for the backoff.
        current = await session.get(
            FileRelease, (row.file_id, row.owner, row.owner_id), with_for_update=True
        )
        if current is None:
            return
        current.attempts += 1
        delay = min(interval * 2**current.attempts, MAX_BACKOFF_SECONDS)
        current.next_attempt_at = utcnow() + timedelta(seconds=delay)
        current.last_error = error[:300]
        session.add(current)
    log.warning("file release %s %s postponed: %s", row.owner, row.file_id, error)


async def _done(db: Database, row: Due) -> bool:
    """Delete the release; True when the intake refers to the file again meanwhile."""
    async with db.transaction() as session:
        current = await session.get(FileRelease, (row.file_id, row.owner, row.owner_id))
        if current is not None:
            await session.delete(current)
        intake = await session.get(Intake, row.owner_id)
        return intake is not None and (row.file_id, row.owner) in intake_uses(intake)


async def _keep_again(client: httpx.AsyncClient, row: Due, headers: dict[str, str]) -> None:
    try:
        await client.post(
            f"/files/{row.file_id}/references",
            headers=headers,
            json={"owner": row.owner, "owner_id": str(row.owner_id)},
        )
    except httpx.HTTPError:
        log.exception("file %s shown again on intake %s: keeping failed", row.file_id, row.owner_id)


def service_token(settings: Settings) -> Callable[[str], str | None]:
    """The background job's token for a branch: signed with the shared secret when tokens
    are HS256. With an OIDC provider (JWKS) reception cannot sign one; pending releases then
    wait for the next walk-around change in their branch, which releases them with the
    advisor's token."""

    def token_for(branch: str) -> str | None:
        if settings.jwt_jwks_url:
            return None
        return issue_dev_token(
            settings.jwt_secret,
            role="records_clerk",
            branch=branch,
            sub="reception",
            name="Reception",
            ttl=300,
        )

    return token_for


def release_job(app_holder: dict[str, Any]) -> Callable[[Any], Any]:
    """The background job retrying pending releases every `file_release_interval_seconds`."""

    async def file_release_job(runtime: Any) -> None:
        settings: Settings = runtime.settings
        token_for = service_token(settings)
        while True:
            try:
                app = app_holder.get("app")
                transport = getattr(app.state, "records_transport", None) if app else None
                await release_due(runtime.db, settings, transport, token_for)
            except Exception:
                log.exception("file releases failed; trying again later")
            await asyncio.sleep(settings.file_release_interval_seconds)

    return file_release_job
