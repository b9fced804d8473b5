"""Registered status-board screens: the foreman registers a TV and gets its page's URL with
a token of its own (shown once), sees which screens are on, and withdraws one screen's
access at once without touching the others.

A token is `scr_<screen id hex>_<secret>`; only the SHA-256 of the secret is stored. It
opens the board endpoints of its branch and its variant, nothing else (shared.auth refuses
it everywhere else with 401).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select as core_select
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.workorders.models import BoardScreen, ScreenLang, ScreenVariant
from shared.auth import SCREEN_TOKEN_PREFIX, Role, User, require
from shared.concurrency import IfMatch, check_if_match, set_etag
from shared.events import utcnow
from shared.idempotency import IdempotencyDep
from shared.pagination import Cursor, Limit, Page, after, page
from shared.problems import Conflict, NotFound, Unauthorized
from shared.service import ReadSessionDep, Runtime, SessionDep

# Told to the screen (401 detail, the stream's `revoked` event) once its access is gone.
WITHDRAWN = "this screen's access was withdrawn"
# The session key under which a commit carries {screen id: its token hash now, or None
# when revoked}: board.py ends the streams that no longer match, right after the commit.
SCREENS_CHANGED = "board_screens_changed"
# A screen counts as online while its stream touched it this recently (streams touch it
# once they have sent the board and about once a minute while they run).
TOUCH_EVERY = timedelta(seconds=60)
ONLINE_WITHIN = timedelta(seconds=90)


class ScreenWithdrawn(Unauthorized):
    """The right token of a revoked screen (its page shows the message, not JSON)."""

    def __init__(self) -> None:
        super().__init__(WITHDRAWN)


# --- tokens ------------------------------------------------------------------------------


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token(screen_id: uuid.UUID) -> tuple[str, str]:
    """A fresh token for the screen and the hash to store."""
    secret = secrets.token_urlsafe(32)
    return f"{SCREEN_TOKEN_PREFIX}{screen_id.hex}_{secret}", _hash(secret)


def parse_token(token: str) -> tuple[uuid.UUID, str] | None:
    if not token.startswith(SCREEN_TOKEN_PREFIX):
        return None
    screen_hex, sep, secret = token.removeprefix(SCREEN_TOKEN_PREFIX).partition("_")
    if not sep or not secret or len(screen_hex) != 32:
        return None
    try:
        return uuid.UUID(hex=screen_hex), secret
    except ValueError:
        return None


@dataclass(frozen=True)
class RegisteredScreen:
    """Who is looking, when a registered screen's token opened the board."""

    id: uuid.UUID
    branch: str
    name: str
    variant: ScreenVariant
    token_hash: str

    def as_user(self) -> User:
        return User(
            id=f"screen:{self.id}",
            name=self.name,
            roles=frozenset({Role.screen}),
            branch=self.branch,
        )


async def authenticate(runtime: Runtime, token: str) -> RegisteredScreen:
    """The screen a token belongs to; 401 for a malformed, unknown, replaced or revoked one.
    Why it was refused is told only to whoever holds the right secret."""
    parsed = parse_token(token)
    if parsed is None:
        raise Unauthorized("not a screen token")
    screen_id, secret = parsed
    async with runtime.db.reader() as session:
        bs = BoardScreen.__table__  # type: ignore[attr-defined]
        row = (
            await session.exec(
                cast(
                    Any,
                    core_select(
                        bs.c.branch, bs.c.name, bs.c.variant, bs.c.token_hash, bs.c.revoked_at
                    ).where(bs.c.id == screen_id),
                )
            )
        ).first()
    # Compared in constant time; an unknown id compares against a dummy all the same.
    stored = row[3] if row is not None else "0" * 64
    if not hmac.compare_digest(stored, _hash(secret)) or row is None:
        raise Unauthorized("unknown or replaced screen token")
    branch, name, variant, token_hash, revoked_at = row
    if revoked_at is not None:
        raise ScreenWithdrawn()
    return RegisteredScreen(screen_id, branch, name, ScreenVariant(variant), token_hash)


async def still_valid(runtime: Runtime, registered: RegisteredScreen) -> bool:
    """Whether the token a stream was opened with still opens the board (not revoked, not
    replaced)."""
    async with runtime.db.reader() as session:
        row = (
            await session.exec(
                select(BoardScreen.token_hash, BoardScreen.revoked_at).where(
                    BoardScreen.id == registered.id
                )
            )
        ).first()
    return row is not None and row[1] is None and row[0] == registered.token_hash


async def mark_seen(runtime: Runtime, registered: RegisteredScreen) -> None:
    """The screen's stream has its board: shown online (for `ONLINE_WITHIN`). The version
    stays: a foreman's If-Match is not spoilt by a TV."""
    async with runtime.db.transaction() as session:
        await session.exec(
            cast(
                Any,
                update(BoardScreen)
                .where(col(BoardScreen.id) == registered.id)
                .values(last_seen_at=utcnow())
                .execution_options(synchronize_session=False),
            )
        )


# --- schemas -----------------------------------------------------------------------------

ScreenName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]


class ScreenCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Workshop TV 1", "variant": "board", "lang": "zh-CN"}]
        },
    )

    name: ScreenName
    variant: ScreenVariant
    lang: ScreenLang = ScreenLang.zh_cn


class _ScreenFields(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    variant: ScreenVariant
    lang: ScreenLang
    created_by: str
    created_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    last_seen_at: datetime | None = None
    # A stream of it was open within the last 90 seconds (on any replica).
    online: bool = False
    version: int


class ScreenPublic(_ScreenFields):
    """A registered screen as the foreman sees it: never its token nor the token's hash."""


class ScreenIssued(_ScreenFields):
    """The answer that hands out a token: the only place it is ever shown. Not a
    ScreenPublic subclass, so nothing that takes it as a ScreenPublic (the idempotency
    record stores the answer as one) can carry the token along."""

    token: str = Field(description="the screen's token; shown only in this answer")
    url: str = Field(description="the page to open on the TV (path and query)")


# --- use cases ---------------------------------------------------------------------------


def _public(screen: BoardScreen, now: datetime) -> ScreenPublic:
    online = (
        screen.revoked_at is None
        and screen.last_seen_at is not None
        and screen.last_seen_at >= now - ONLINE_WITHIN
    )
    return ScreenPublic.model_validate(screen).model_copy(update={"online": online})


def _issued(screen: BoardScreen, token: str) -> ScreenIssued:
    path = "/board/lounge" if screen.variant == ScreenVariant.lounge else "/board"
    url = f"{path}?{urlencode({'access_token': token, 'lang': str(screen.lang)})}"
    public = _public(screen, utcnow())
    return ScreenIssued(**public.model_dump(), token=token, url=url)


def _changed(session: AsyncSession, screen: BoardScreen) -> None:
    """After the commit, streams of this screen whose token no longer matches end."""
    current = None if screen.revoked_at is not None else screen.token_hash
    session.info.setdefault(SCREENS_CHANGED, {})[screen.id] = current


async def register(session: AsyncSession, body: ScreenCreate, by: User) -> ScreenIssued:
    screen_id = uuid.uuid4()
    token, token_hash = new_token(screen_id)
    screen = BoardScreen(
        id=screen_id,
        branch=by.branch,
        name=body.name,
        variant=body.variant,
        lang=body.lang,
        token_hash=token_hash,
        created_by=by.id,
        created_at=utcnow(),
    )
    session.add(screen)
    await session.flush()
    return _issued(screen, token)


async def get_screen(session: AsyncSession, screen_id: uuid.UUID, by: User) -> BoardScreen:
    screen = await session.get(BoardScreen, screen_id)
    if screen is None or screen.branch != by.branch:
        raise NotFound(f"screen {screen_id} not found")
    return screen


async def list_screens(
    session: AsyncSession, by: User, *, limit: int, cursor: str | None
) -> tuple[list[ScreenPublic], str | None]:
    rows = list(
        (
            await session.exec(
                select(BoardScreen)
                .where(
                    BoardScreen.branch == by.branch,
                    after(col(BoardScreen.created_at), col(BoardScreen.id), cursor),
                )
                .order_by(col(BoardScreen.created_at).desc(), col(BoardScreen.id).desc())
                .limit(limit + 1)
            )
        ).all()
    )
    rows, next_cursor = page(rows, limit, "created_at")
    now = utcnow()
    return [_public(s, now) for s in rows], next_cursor


async def revoke(
    session: AsyncSession, screen_id: uuid.UUID, by: User, *, if_match: str | None
) -> None:
    """Withdraw the screen's access. Revoking a revoked screen changes nothing (204)."""
    screen = await get_screen(session, screen_id, by)
    if screen.revoked_at is not None:
        return
    check_if_match(if_match, screen.version, required=False)
    screen.revoked_at, screen.revoked_by = utcnow(), by.id
    session.add(screen)
    await session.flush()
    _changed(session, screen)


async def reissue_token(
    session: AsyncSession, screen_id: uuid.UUID, by: User, *, if_match: str | None
) -> ScreenIssued:
    """A new token for the same screen (re-pair a TV); the old one stops working."""
    screen = await get_screen(session, screen_id, by)
    if screen.revoked_at is not None:
        raise Conflict(f"{WITHDRAWN}; register the TV again")
    check_if_match(if_match, screen.version, required=False)
    token, screen.token_hash = new_token(screen.id)
    session.add(screen)
    await session.flush()
    _changed(session, screen)
    return _issued(screen, token)


# --- routes ------------------------------------------------------------------------------

router = APIRouter(tags=["status board screens"])
ScreenKeeper = Annotated[User, Depends(require(Role.foreman, Role.manager, Role.admin))]


@router.post(
    "/board/screens",
    status_code=status.HTTP_201_CREATED,
    response_model=ScreenIssued,
    summary="Register a TV screen: its token and page URL are in this answer only",
    description="A retry with the same Idempotency-Key registers nothing more: it answers "
    "the same screen with a new token (the first one's secret is kept nowhere, so it cannot "
    "be shown again, and it stops working).",
)
async def register_screen(
    body: ScreenCreate,
    response: Response,
    session: SessionDep,
    user: ScreenKeeper,
    idempotency: IdempotencyDep,
) -> Any:
    async def work() -> ScreenIssued:
        issued = await register(session, body, user)
        set_etag(response, issued.version)
        return issued

    async def again(stored: dict[str, Any]) -> ScreenIssued:
        return await _reissued(session, uuid.UUID(stored["id"]), user, response)

    # The stored answer is the screen without its token: the secret is kept nowhere.
    return await idempotency(session).run(
        work, ScreenPublic, status_code=201, response=response, replay=again
    )


async def _reissued(
    session: AsyncSession, screen_id: uuid.UUID, user: User, response: Response
) -> ScreenIssued:
    """A retry's answer: the first request's If-Match was checked when it ran."""
    issued = await reissue_token(session, screen_id, user, if_match=None)
    set_etag(response, issued.version)
    return issued


@router.get(
    "/board/screens",
    response_model=Page[ScreenPublic],
    summary="Your branch's screens, newest first (revoked ones too)",
)
async def list_board_screens(
    session: ReadSessionDep, user: ScreenKeeper, limit: Limit = 50, cursor: Cursor = None
) -> Any:
    items, next_cursor = await list_screens(session, user, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/board/screens/{screen_id}",
    response_model=ScreenPublic,
    summary="One screen (ETag for If-Match)",
)
async def get_board_screen(
    screen_id: uuid.UUID, response: Response, session: ReadSessionDep, user: ScreenKeeper
) -> Any:
    screen = await get_screen(session, screen_id, user)
    set_etag(response, screen.version)
    return _public(screen, utcnow())


@router.delete(
    "/board/screens/{screen_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Withdraw a screen's access at once; its open streams end (If-Match honoured)",
)
async def revoke_board_screen(
    screen_id: uuid.UUID, session: SessionDep, user: ScreenKeeper, if_match: IfMatch = None
) -> Response:
    await revoke(session, screen_id, user, if_match=if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/board/screens/{screen_id}/token",
    response_model=ScreenIssued,
    summary="A new token for the screen (re-pair a TV); the old one stops working at once",
    description="A retry with the same Idempotency-Key answers with yet another new token "
    "(the lost answer's secret is kept nowhere).",
)
async def reissue_board_screen_token(
    screen_id: uuid.UUID,
    response: Response,
    session: SessionDep,
    user: ScreenKeeper,
    idempotency: IdempotencyDep,
    if_match: IfMatch = None,
) -> Any:
    async def work() -> ScreenIssued:
        issued = await reissue_token(session, screen_id, user, if_match=if_match)
        set_etag(response, issued.version)
        return issued

    async def again(stored: dict[str, Any]) -> ScreenIssued:
        return await _reissued(session, screen_id, user, response)

    return await idempotency(session).run(
        work, ScreenPublic, status_code=200, response=response, replay=again
    )
