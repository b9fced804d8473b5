"""The live status board for workshop screens: cards of every open car, a durable ordered
change log (`board_change`) and Server-Sent Events that resume from Last-Event-ID.

How a change reaches a screen:

1. Any transaction of this service that changes a repair order, one of its jobs or parts
   lines or its at-risk flag gets one change row per touched order, written by a session
   hook just before commit (so no use case can forget it; Core statements mark the order
   with `mark_changed`). The log's ids must become visible in id order: a reader that
   has seen id N never later finds a smaller id appear. SQLite has one writer, so its
   writers append to `board_change` directly. On PostgreSQL writers commit side by side,
   so they append to `board_pending` and wait for nobody; each feed first moves what is
   pending into `board_change` under the board's advisory lock, held to its commit, so
   the movers' ids commit in order. A move announces itself to the other replicas'
   feeds (NOTIFY).
2. One feed per process (`BoardHub`) reads, per branch with screens, the rows after that
   branch's cursor, woken at once by a local commit or another replica's move and
   polling every `board_poll_interval`, and hands each branch's changed cards (read once)
   to every connected screen of that branch.
3. A screen's stream starts with a snapshot, or with the cards changed after its
   Last-Event-ID; when that id is older than what is still kept it gets a snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
import weakref
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol, cast

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, event, func, insert, text
from sqlalchemy import select as core_select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import get_history
from sqlmodel import delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.workorders import screens as registered_screens
from services.workorders.config import Settings
from services.workorders.models import (
    BoardChange,
    Job,
    PartLine,
    PromiseCheck,
    RepairOrder,
    ScreenVariant,
)
from services.workorders.screens import WITHDRAWN, RegisteredScreen
from services.workorders.states import JobStatus, PartStatus, RepairOrderStatus
from shared import driver
from shared.auth import SCREEN_TOKEN_PREFIX, Authenticator, Role, User
from shared.driver import DriverStatement, DriverTransaction, Statements
from shared.events import utcnow
from shared.openapi import content_of
from shared.problems import Forbidden, Unauthorized
from shared.service import Runtime
from shared.types import UTCDateTime

log = logging.getLogger(__name__)

# Cars still in the shop: everything but delivered and cancelled.
OPEN_STATUSES = [
    s
    for s in RepairOrderStatus
    if s not in (RepairOrderStatus.delivered, RepairOrderStatus.cancelled)
]
# The board's advisory lock on PostgreSQL (any constant works): the feeds' movers of
# pending changes take turns with it; writers never take it.
BOARD_LOCK_CLASS = 0x574F4244  # "WOBD"
BOARD_CHANNEL = "workorders_board"
_TOUCHED = "board_touched"
_WRITTEN = "board_written"
_INPUTS = "projection_inputs"
READER_ROLES = frozenset(
    {
        Role.advisor,
        Role.foreman,
        Role.technician,
        Role.qc,
        Role.cashier,
        Role.manager,
        Role.screen,
    }
)


# --- the change log, written by session hooks ------------------------------------------


def _touched_key(session: Session, obj: object) -> tuple[str, uuid.UUID] | None:
    if isinstance(obj, RepairOrder):
        return obj.branch, obj.id
    if isinstance(obj, Job | PartLine):  # a parts line's ETA shows on the card
        return obj.branch, obj.repair_order_id
    if isinstance(obj, PromiseCheck):
        # The timer rewrites every projection each minute; only the flag shows on a card.
        if obj in session.new and obj.at_risk_since is None:
            return None
        if obj not in session.new and not get_history(obj, "at_risk_since").has_changes():
            return None
        return obj.branch, obj.repair_order_id
    return None


def mark_changed(
    session: AsyncSession | Session | Statements, branch: str, order_id: uuid.UUID
) -> None:
    """For a change made with Core statements, which the flush hook cannot see (it also
    counts as a change to what the branch's promise projection is made of)."""
    session.info.setdefault(_TOUCHED, set()).add((branch, order_id))
    session.info.setdefault(_INPUTS, set()).add(branch)


class ProjectionWatch(Protocol):
    def inputs_changed(self, branches: set[str]) -> None: ...


# Told after each commit that changed an order, a job or a parts line, with its branches:
# the promise projection of those branches is out of date (see promise.promise_timer).
PROJECTION_WATCHES: weakref.WeakSet[Any] = weakref.WeakSet()


@event.listens_for(Session, "before_flush")
def _collect_touched(session: Session, _context: Any, _instances: Any) -> None:
    for obj in [*session.new, *session.dirty]:
        key = _touched_key(session, obj)
        if key is not None:
            session.info.setdefault(_TOUCHED, set()).add(key)
            if not isinstance(obj, PromiseCheck):  # the projection's own result is no input
                session.info.setdefault(_INPUTS, set()).add(key[0])


# PostgreSQL: a writer commits its changes as pending rows, one round trip for all its
# branches, without waiting for any other writer; the feed's mover gives them their ids.
_PG_PENDING = DriverStatement(
    text(
        "INSERT INTO board_pending (branch, repair_order_id, changed_at) "
        "SELECT c.branch, c.id, :changed_at "
        "FROM unnest(CAST(:branches AS VARCHAR[]), CAST(:orders AS UUID[])) AS c(branch, id)"
    ).bindparams(bindparam("changed_at", type_=UTCDateTime()))
)
# SQLite: the one writer appends to the log itself.
_INSERT_CHANGE = DriverStatement(insert(BoardChange.__table__))  # type: ignore[attr-defined]
# The feed's mover, one statement run as its own transaction (autocommit: one round trip,
# no BEGIN or COMMIT): take the board's turn (held to the commit, so movers commit one
# after another and the log's ids become visible in id order), move what is pending into
# the log, oldest first, and announce it to the other replicas' feeds if anything moved.
# Its snapshot predates the turn: a row the previous mover moved meanwhile is skipped by
# the DELETE, which is READ COMMITTED's rule for a row deleted by a committed
# transaction, and no id is drawn before the turn (the rows come out of a join with the
# turn's row).
_PG_MOVE = text(
    "WITH turn AS (SELECT pg_advisory_xact_lock(:cls, 0)), "
    "moved AS (DELETE FROM board_pending p USING turn "
    "RETURNING p.id, p.branch, p.repair_order_id, p.changed_at), "
    "logged AS (INSERT INTO board_change (branch, repair_order_id, changed_at) "
    "SELECT branch, repair_order_id, changed_at FROM moved ORDER BY id RETURNING 1) "
    "SELECT n, CASE WHEN n > 0 THEN pg_notify(:channel, :origin) END "
    "FROM (SELECT count(*) AS n FROM logged) AS c"
)
# Who wrote a NOTIFY: this process's feed has just moved the rows and needs no wake-up.
PROCESS_ORIGIN = uuid.uuid4().hex


@event.listens_for(Session, "before_commit")
def _write_board_changes(session: Session) -> None:
    if not (session.info.get(_TOUCHED) or session.new or session.dirty):
        return
    session.flush()  # runs _collect_touched for what is still pending
    touched: set[tuple[str, uuid.UUID]] | None = session.info.pop(_TOUCHED, None)
    if not touched:
        return
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        _PG_PENDING.execute_in_greenlet(session.connection(), _pending(touched, now))
    else:
        session.execute(
            insert(BoardChange.__table__),  # type: ignore[attr-defined]
            [
                {"branch": branch, "repair_order_id": order_id, "changed_at": now}
                for branch, order_id in touched
            ],
        )
    session.info[_WRITTEN] = True


@driver.before_commit
async def _write_board_changes_on_driver(transaction: DriverTransaction) -> None:
    # A hot write (`Database.hot_transaction`) changes rows with Core statements and marks
    # them changed; it has no ORM objects to flush.
    touched: set[tuple[str, uuid.UUID]] | None = transaction.info.pop(_TOUCHED, None)
    if not touched:
        return
    now = utcnow()
    if transaction.dialect.name == "postgresql":
        await transaction.execute(_PG_PENDING, _pending(touched, now))
    else:
        for branch, order_id in sorted(touched):
            await transaction.execute(
                _INSERT_CHANGE, {"branch": branch, "repair_order_id": order_id, "changed_at": now}
            )
    transaction.info[_WRITTEN] = True


def _pending(touched: set[tuple[str, uuid.UUID]], now: datetime) -> dict[str, Any]:
    ordered = sorted(touched)
    return {
        "branches": [branch for branch, _ in ordered],
        "orders": [order_id for _, order_id in ordered],
        "changed_at": now,
    }


@event.listens_for(Session, "after_commit")
def _wake_feeds(session: Session) -> None:
    _committed(session.info)


@driver.after_commit
def _committed(info: dict[str, Any]) -> None:
    if info.pop(_WRITTEN, None):
        for hub in list(_HUBS):
            hub.wake()
    changed: dict[uuid.UUID, str | None] | None = info.pop(registered_screens.SCREENS_CHANGED, None)
    if changed:  # a screen revoked or given a new token here: its old streams end now
        for hub in list(_HUBS):
            hub.screens_changed(changed)
    branches: set[str] | None = info.pop(_INPUTS, None)
    if branches:
        for watch in list(PROJECTION_WATCHES):
            cast(ProjectionWatch, watch).inputs_changed(branches)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous: Any) -> None:
    # A savepoint's rollback keeps the rest of the transaction (an extra change row for
    # an order it touched is harmless; a missing one would not be).
    if getattr(previous, "nested", False):
        return
    session.info.pop(_TOUCHED, None)
    session.info.pop(_WRITTEN, None)
    session.info.pop(_INPUTS, None)
    session.info.pop(registered_screens.SCREENS_CHANGED, None)


# --- cards -----------------------------------------------------------------------------


def mask_plate(plate: str | None) -> str:
    """沪A12345 → 沪A***45: enough for an owner to spot their car, not to identify it."""
    if not plate:
        return ""
    if len(plate) <= 4:
        return plate[0] + "*" * (len(plate) - 1)
    return plate[:2] + "*" * (len(plate) - 4) + plate[-2:]


def lounge_card(card: dict[str, Any]) -> dict[str, Any]:
    """What the customer lounge may show: no names, the plate masked, no risk flags."""
    return {
        "id": card["id"],
        "plate": mask_plate(card.get("plate")),
        "status": card["status"],
        "promised_at": card["promised_at"],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def load_cards(
    session: AsyncSession, branch: str, order_ids: Iterable[uuid.UUID] | None = None
) -> dict[uuid.UUID, dict[str, Any] | None]:
    """Cards of the branch's open orders (all of them, or those of `order_ids`; an order
    that left the board maps to None). Four indexed queries, whatever the history size."""
    ro = RepairOrder.__table__  # type: ignore[attr-defined]
    query = core_select(
        ro.c.id, ro.c.number, ro.c.plate, ro.c.advisor, ro.c.status, ro.c.promised_at, ro.c.branch
    )
    wanted = None if order_ids is None else list(order_ids)
    if wanted is None:
        query = query.where(ro.c.branch == branch, ro.c.status.in_(OPEN_STATUSES))
    else:
        # By primary key only: with the branch in the condition SQLite walked the branch's
        # index (a million closed orders) instead of looking the ids up.
        query = query.where(ro.c.id.in_(wanted))
    found = (await session.exec(cast(Any, query))).all()
    rows: list[Any] = [r for r in found if r[4] in OPEN_STATUSES and r[6] == branch]
    result: dict[uuid.UUID, dict[str, Any] | None] = dict.fromkeys(wanted or [])
    if not rows:
        return result
    ids = [r.id for r in rows]
    jb = Job.__table__  # type: ignore[attr-defined]
    jobs: list[Any] = list(
        await session.exec(
            select(jb.c.repair_order_id, jb.c.technician_id, jb.c.status)
            .where(jb.c.repair_order_id.in_(ids))
            .order_by(jb.c.created_at)
        )
    )
    technicians: dict[uuid.UUID, list[str]] = {}
    for order_id, technician, status in sorted(
        jobs, key=lambda j: j.status != JobStatus.in_progress
    ):
        names = technicians.setdefault(order_id, [])
        if technician and status != JobStatus.cancelled and technician not in names:
            names.append(technician)
    pl = PartLine.__table__  # type: ignore[attr-defined]
    etas = dict(
        (
            await session.exec(
                select(pl.c.repair_order_id, func.max(pl.c.eta_at))
                .where(
                    pl.c.repair_order_id.in_(ids),
                    pl.c.status.in_([PartStatus.requested, PartStatus.ordered]),
                    pl.c.eta_at.is_not(None),
                )
                .group_by(pl.c.repair_order_id)
            )
        ).all()
    )
    pc = PromiseCheck.__table__  # type: ignore[attr-defined]
    risks: dict[Any, Any] = {
        r[0]: r
        for r in (
            await session.exec(
                select(pc.c.repair_order_id, pc.c.at_risk_since, pc.c.projected_finish_at).where(
                    pc.c.repair_order_id.in_(ids)
                )
            )
        ).all()
    }
    for r in rows:
        risk = risks.get(r.id)
        eta = etas.get(r.id)
        result[r.id] = {
            "id": str(r.id),
            "number": r.number,
            "plate": r.plate or "",
            "advisor": r.advisor,
            "technicians": technicians.get(r.id, []),
            "status": str(r.status),
            "promised_at": _iso(r.promised_at),
            "at_risk": bool(risk is not None and risk.at_risk_since is not None),
            "projected_finish_at": _iso(risk.projected_finish_at) if risk else None,
            # The last part it waits for (SQLite's max() gives text; fine for the page).
            "parts_eta_at": eta if isinstance(eta, str) else _iso(eta),
        }
    return result


def sort_cards(cards: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(cards, key=lambda c: (c["promised_at"] is None, c["promised_at"] or "", c["id"]))


async def snapshot(session: AsyncSession, branch: str) -> tuple[int, list[dict[str, Any]]]:
    """The board as it is now, and the change id it is at least as new as."""
    last = await last_change_id(session, branch)
    cards = await load_cards(session, branch)
    return last, sort_cards(c for c in cards.values() if c is not None)


async def last_change_id(session: AsyncSession, branch: str | None = None) -> int:
    """The newest change (of the branch). Ids become visible in order, so no change with
    a smaller id can still appear."""
    bc = BoardChange.__table__  # type: ignore[attr-defined]
    query = select(func.max(bc.c.id))
    if branch is not None:
        query = query.where(bc.c.branch == branch)
    value = (await session.exec(query)).one()
    return int(value or 0)


# --- one feed per process ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Batch:
    """One pump's changes for a branch's screens, encoded once for all of them: per
    change (change id, the workshop board's event, the lounge's event), and each variant's
    events already joined, which is what a screen that is keeping up writes."""

    changes: list[tuple[int, bytes, bytes]]
    board: bytes = b""
    lounge: bytes = b""

    @classmethod
    def of(cls, changes: list[tuple[int, bytes, bytes]]) -> Batch:
        return cls(
            changes,
            b"".join(board for _, board, _ in changes),
            b"".join(lounge for _, _, lounge in changes),
        )


NOTHING = Batch([])  # wakes a screen to look at its state (its access withdrawn)


@dataclass(eq=False)
class Screen:
    """One connected stream: the branch it shows, the batches waiting for it and, for a
    registered screen, which one it is (its access may be withdrawn while it runs)."""

    branch: str
    registered: RegisteredScreen | None = None
    queue: asyncio.Queue[Batch] = field(default_factory=lambda: asyncio.Queue(maxsize=512))
    overflowed: bool = False
    withdrawn: bool = False


class BoardHub:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.settings = cast(Settings, runtime.settings)
        # Per branch with screens: the last change handed to them (a read takes only its
        # branch's rows, through the branch's index).
        self.cursors: dict[str, int] = {}
        self.screens: dict[str, set[Screen]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = asyncio.Event()
        # The mover's statement is its own transaction: no BEGIN and COMMIT round trips.
        self._autocommit = runtime.db.engine.execution_options(isolation_level="AUTOCOMMIT")

    def wake(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def join(self, branch: str, registered: RegisteredScreen | None = None) -> Screen:
        """Call before the screen's catch-up read: the branch's cursor is then no newer
        than what the catch-up covers, so nothing falls in between."""
        if branch not in self.cursors:
            async with self.runtime.db.reader() as session:
                newest = await last_change_id(session, branch)
            # Whichever screen of the branch set it first: read before either catch-up.
            self.cursors.setdefault(branch, newest)
        screen = Screen(branch, registered)
        self.screens.setdefault(branch, set()).add(screen)
        return screen

    def screens_changed(self, changed: dict[uuid.UUID, str | None]) -> None:
        """Registered screens revoked (None) or given a new token hash: their streams
        opened with another token end at once (told so with a `revoked` event)."""

        def apply() -> None:
            for screens in list(self.screens.values()):
                for screen in list(screens):
                    registered = screen.registered
                    if registered is None or registered.id not in changed:
                        continue
                    if changed[registered.id] == registered.token_hash:
                        continue
                    screen.withdrawn = True
                    with contextlib.suppress(asyncio.QueueFull):  # busy: it looks soon anyway
                        screen.queue.put_nowait(NOTHING)

        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(apply)

    def leave(self, screen: Screen) -> None:
        screens = self.screens.get(screen.branch)
        if screens is None:
            return
        screens.discard(screen)
        if not screens:  # a later screen starts from its own read
            del self.screens[screen.branch]
            self.cursors.pop(screen.branch, None)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        _HUBS.add(self)
        last_trim = 0.0
        try:
            self.started.set()
            listener = (
                asyncio.create_task(self._listen(), name="board-listen")
                if not self.runtime.db.is_sqlite
                else None
            )
            try:
                await self._follow(last_trim)
            finally:
                if listener is not None:
                    listener.cancel()
                    with contextlib.suppress(BaseException):
                        await listener
        finally:
            _HUBS.discard(self)

    async def _follow(self, last_trim: float) -> None:
        assert self._loop is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.board_poll_interval)
            self._wake.clear()
            try:
                if await self.pump() > 1:
                    # Changes piled up while the last ones went out: a burst. What commits
                    # within the next moment then goes out together (one write per screen,
                    # not one per change); a lone change still goes out at once.
                    await asyncio.sleep(self.settings.board_batch_interval)
                if self._loop.time() - last_trim > 600:
                    last_trim = self._loop.time()
                    await self.trim()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("status board feed failed; retrying")
                await asyncio.sleep(1)

    async def _listen(self) -> None:
        """PostgreSQL: wake when another replica's feed moves changes into the log
        (NOTIFY), not at the next poll. Polling stays the fallback while this connection
        is down."""
        import asyncpg

        url = self.runtime.db.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while True:
            try:
                conn = await asyncpg.connect(dsn)
                try:
                    closed = asyncio.Event()
                    conn.add_termination_listener(lambda *_, done=closed: done.set())
                    await conn.add_listener(BOARD_CHANNEL, self._notified)
                    await closed.wait()
                finally:
                    with contextlib.suppress(Exception):
                        await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("status board listener down (%s); polling meanwhile", exc)
            await asyncio.sleep(5)

    def _notified(self, _conn: Any, _pid: int, _channel: str, origin: str) -> None:
        if origin != PROCESS_ORIGIN:  # another replica's feed moved changes into the log
            self.wake()

    async def move_pending(self) -> int:
        """PostgreSQL: give the changes writers have committed since the last move their
        place in the log, and wake the other replicas' feeds; returns how many moved."""
        async with self._autocommit.connect() as conn:
            moved, _ = (
                await conn.execute(
                    _PG_MOVE,
                    {"cls": BOARD_LOCK_CLASS, "channel": BOARD_CHANNEL, "origin": PROCESS_ORIGIN},
                )
            ).one()
        return int(moved)

    async def pump(self) -> int:
        """Hand every change after its branch's cursor to the screens of that branch;
        returns how many were handed out."""
        if not self.runtime.db.is_sqlite:
            await self.move_pending()  # whether or not this replica has screens
        handed = 0
        for branch in list(self.cursors):
            while True:
                count, more = await self._pump_branch(branch)
                handed += count
                if not more:
                    break
        return handed

    async def _pump_branch(self, branch: str) -> tuple[int, bool]:
        """One batch of the branch's changes: how many were handed out, and whether there
        may be more."""
        bc = BoardChange.__table__  # type: ignore[attr-defined]
        cursor = self.cursors.get(branch)
        if cursor is None:
            return 0, False
        async with self.runtime.db.reader() as session:
            rows: list[Any] = list(
                await session.exec(
                    select(bc.c.id, bc.c.repair_order_id)
                    .where(bc.c.branch == branch, bc.c.id > cursor)
                    .order_by(bc.c.id)
                    .limit(500)
                )
            )
            if not rows:
                return 0, False
            changed: dict[uuid.UUID, int] = {}
            for change_id, order_id in rows:
                changed[order_id] = int(change_id)
            screens = self.screens.get(branch)
            if branch not in self.cursors or not screens:
                return 0, False  # the last screen left meanwhile
            self.cursors[branch] = int(rows[-1].id)
            cards = await load_cards(session, branch, changed)
        changes: list[tuple[int, bytes, bytes]] = []
        for order_id, change_id in sorted(changed.items(), key=lambda kv: kv[1]):
            event: Event = ("card", {"id": str(order_id), "card": cards.get(order_id)}, change_id)
            changes.append((change_id, _shape(event, False), _shape(event, True)))
        batch = Batch.of(changes)
        for screen in list(screens):
            try:
                screen.queue.put_nowait(batch)
            except asyncio.QueueFull:
                # A screen that cannot keep up reconnects and resumes.
                screen.overflowed = True
                self.leave(screen)
        return len(rows), len(rows) == 500

    async def trim(self) -> None:
        """Drop changes older than the retention, never the newest (it keeps ids rising)."""
        cutoff = utcnow() - timedelta(hours=self.settings.board_retention_hours)
        async with self.runtime.db.transaction() as session:
            newest = await last_change_id(session)
            await session.exec(
                delete(BoardChange).where(
                    BoardChange.changed_at < cutoff,  # type: ignore[arg-type]
                    BoardChange.id < newest,  # type: ignore[arg-type,operator]
                )
            )


_HUBS: weakref.WeakSet[BoardHub] = weakref.WeakSet()
_BY_RUNTIME: weakref.WeakKeyDictionary[Runtime, BoardHub] = weakref.WeakKeyDictionary()


def hub_for(runtime: Runtime) -> BoardHub:
    hub = _BY_RUNTIME.get(runtime)
    if hub is None:
        hub = _BY_RUNTIME[runtime] = BoardHub(runtime)
    return hub


async def board_feed(runtime: Runtime) -> None:
    """Background job: the process's feed of board changes."""
    await hub_for(runtime).run()


# --- the stream --------------------------------------------------------------------------


def _sse(event_name: str, data: Any, event_id: int | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event_name}")
    lines.append("data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


Event = tuple[str, dict[str, Any], int]  # (SSE event name, data, change id)


async def _catch_up(
    session: AsyncSession, branch: str, after: int | None
) -> tuple[int, list[Event]]:
    """What a (re)connecting screen needs first, and the change id it covers."""
    bc = BoardChange.__table__  # type: ignore[attr-defined]
    oldest, newest = (await session.exec(select(func.min(bc.c.id), func.max(bc.c.id)))).one()
    newest = int(newest or 0)
    # Resume only when nothing after `after` was trimmed; else start over with a snapshot.
    if after is None or after > newest or (oldest is not None and after < int(oldest) - 1):
        last, cards = await snapshot(session, branch)
        return last, [("snapshot", {"cards": cards}, last)]
    changed = {
        order_id: int(change_id)
        for order_id, change_id in (
            await session.exec(
                select(bc.c.repair_order_id, func.max(bc.c.id))
                .where(bc.c.branch == branch, bc.c.id > after)
                .group_by(bc.c.repair_order_id)
            )
        ).all()
    }
    if not changed:
        return after, []
    changed_cards = await load_cards(session, branch, changed)
    events: list[Event] = [
        ("card", {"id": str(order_id), "card": changed_cards.get(order_id)}, change_id)
        for order_id, change_id in sorted(changed.items(), key=lambda kv: kv[1])
    ]
    return max(changed.values()), events


def _shape(event: Event, lounge: bool) -> bytes:
    name, data, change_id = event
    if lounge and name == "snapshot":
        data = {"cards": [lounge_card(c) for c in data["cards"]]}
    elif lounge and data.get("card") is not None:
        data = {"id": data["id"], "card": lounge_card(data["card"])}
    return _sse(name, data, change_id)


async def _mark_seen(runtime: Runtime, registered: RegisteredScreen, touched_at: float) -> float:
    """Marks a screen seen; returns when (the loop's clock), or `touched_at` if it failed."""
    try:
        await registered_screens.mark_seen(runtime, registered)
    except Exception:  # the database away: tried again at the next check
        log.warning("could not mark screen %s as seen", registered.id)
        return touched_at
    return asyncio.get_running_loop().time()


async def event_stream(
    runtime: Runtime,
    branch: str,
    after: int | None,
    lounge: bool,
    registered: RegisteredScreen | None = None,
) -> AsyncGenerator[bytes, None]:
    settings = cast(Settings, runtime.settings)
    hub = hub_for(runtime)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(hub.started.wait(), 10)
    screen = await hub.join(branch, registered)  # before the catch-up: nothing falls between
    try:
        yield b"retry: 500\n\n"  # a screen back within half a second of a drop
        if registered is not None:
            try:
                if not await registered_screens.still_valid(runtime, registered):
                    screen.withdrawn = True  # revoked between the check at the door and here
            except Exception:  # the door's check has just passed
                log.warning("could not check screen %s", registered.id)
        async with runtime.db.reader() as session:
            seen, first = await _catch_up(session, branch, after)
        if first and not screen.withdrawn:
            yield b"".join(_shape(e, lounge) for e in first)
        loop = asyncio.get_running_loop()
        touch_every = registered_screens.TOUCH_EVERY.total_seconds()
        touched_at = -touch_every  # online once it has its board
        if registered is not None and not screen.withdrawn:
            touched_at = await _mark_seen(runtime, registered, touched_at)
        ends_at = loop.time() + settings.board_stream_max_seconds
        ping_at = loop.time() + settings.board_heartbeat_seconds
        # A registered screen's row is read again this often: a revocation made on another
        # replica ends the stream within it (one made here ends it at once).
        check_every = settings.board_screen_check_seconds
        check_at = loop.time() + check_every if registered is not None else float("inf")
        while loop.time() < ends_at and not screen.overflowed and not screen.withdrawn:
            if loop.time() >= check_at:
                assert registered is not None
                try:
                    if not await registered_screens.still_valid(runtime, registered):
                        screen.withdrawn = True
                        break
                except Exception:  # the database away: the board goes on, checked later
                    log.warning("could not check screen %s; trying again", registered.id)
                if loop.time() - touched_at >= touch_every:
                    touched_at = await _mark_seen(runtime, registered, touched_at)
                check_at = loop.time() + check_every
            if screen.queue.empty():
                wake_at = min(ping_at, check_at, ends_at)
                try:
                    # A timeout scope, not wait_for: no task per wake-up of each screen.
                    async with asyncio.timeout_at(wake_at):
                        batch = await screen.queue.get()
                except TimeoutError:
                    if loop.time() >= ping_at:
                        yield _sse("ping", {"at": utcnow().isoformat()})
                        ping_at = loop.time() + settings.board_heartbeat_seconds
                    continue
            else:  # busy: no timer needed
                batch = screen.queue.get_nowait()
            # Everything queued meanwhile goes out in the same write.
            batches = [batch]
            while not screen.queue.empty():
                batches.append(screen.queue.get_nowait())
            if screen.withdrawn:
                break
            changes = [change for batch in batches for change in batch.changes]
            if not changes:
                continue
            if len(batches) == 1 and changes[0][0] > seen:
                chunk = batch.lounge if lounge else batch.board  # the usual case: all new
            else:
                chunk = b"".join(
                    lounge_event if lounge else board_event
                    for change_id, board_event, lounge_event in changes
                    if change_id > seen
                )
            seen = max(seen, max(change_id for change_id, _, _ in changes))
            if chunk:
                yield chunk
                ping_at = loop.time() + settings.board_heartbeat_seconds
        if screen.withdrawn:
            # The page shows that this screen's access was withdrawn and stops reconnecting.
            yield _sse("revoked", {"detail": WITHDRAWN})
    finally:
        hub.leave(screen)


# --- who may look ------------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False)


async def _look(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    access_token: str | None,
    variant: ScreenVariant | None,
) -> User:
    """A bearer header from any reader, or a token in the URL from a screen only: a URL
    ends up in browser history and proxy logs, so it may carry nothing that writes. A
    registered screen's token (header or URL) opens only its branch's board of its variant
    (`variant` None: either)."""
    token = credentials.credentials if credentials is not None else access_token
    if token and token.startswith(SCREEN_TOKEN_PREFIX):
        registered = await registered_screens.authenticate(_runtime(request), token)
        if variant is not None and registered.variant != variant:
            raise Forbidden(f"this screen is registered for the {registered.variant} board")
        request.state.screen = registered
        user = registered.as_user()
    elif credentials is not None:
        authenticator: Authenticator = request.app.state.authenticator
        user = await authenticator.authenticate(credentials.credentials)
        if not user.roles & READER_ROLES:
            raise Forbidden("needs a reading role")
    elif access_token:
        authenticator = request.app.state.authenticator
        user = await authenticator.authenticate(access_token)
        if user.roles != {Role.screen}:
            raise Forbidden("a token in the URL is accepted only for the screen role")
    else:
        raise Unauthorized("missing bearer token (or access_token for a screen)")
    request.state.user = user
    return user


def _viewer(variant: ScreenVariant | None, page: bool = False) -> Any:
    """The dependency for a board endpoint of `variant`; for a page (`page`), a revoked
    screen's own token gives None (the page says the access was withdrawn)."""

    async def viewer(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        access_token: Annotated[
            str | None,
            Query(
                max_length=4096,
                description="a screen's token, for browsers that cannot set headers (EventSource)",
            ),
        ] = None,
    ) -> User | None:
        try:
            return await _look(request, credentials, access_token, variant)
        except registered_screens.ScreenWithdrawn:
            if not page:
                raise
            return None

    viewer.allowed_roles = READER_ROLES  # type: ignore[attr-defined]  # shown in the OpenAPI
    return viewer


board_viewer = _viewer(ScreenVariant.board)
Viewer = Annotated[User, Depends(board_viewer)]
AnyViewer = Annotated[User, Depends(_viewer(None))]
PageViewer = Annotated[User | None, Depends(_viewer(ScreenVariant.board, page=True))]
LoungePageViewer = Annotated[User | None, Depends(_viewer(ScreenVariant.lounge, page=True))]
Lang = Annotated[str, Query(pattern="^(zh-CN|en)$", description="zh-CN or en")]


# --- routes ------------------------------------------------------------------------------

router = APIRouter(tags=["status board"])
EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An endless stream of board events",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}
# A revoked screen's own token gets the page saying so (HTML), any other refusal a problem.
PAGE_WITHDRAWN: dict[int | str, dict[str, Any]] = {
    401: {
        "description": "Not signed in; a withdrawn screen gets a page saying so",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}


def _runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


def _resume_from(last_event_id: str | None, after: int | None) -> int | None:
    if last_event_id and last_event_id.strip().isdigit():
        return int(last_event_id.strip())
    return after


@router.get(
    "/board/font.ttf",
    summary="The board's font (Chinese and Latin), cached by the screen",
    response_class=Response,
    responses=content_of("font/ttf", description="TrueType"),
)
async def board_font_file(user: AnyViewer) -> Response:
    # The CJK face of the printed documents, as plain TrueType: a TV browser without
    # Chinese fonts still shows 车牌 and 维修中.
    from shared import pdf  # reportlab loads on first use

    data = await asyncio.to_thread(pdf.font_ttf)
    return Response(
        data, media_type="font/ttf", headers={"Cache-Control": "private, max-age=604800"}
    )


@router.get(
    "/board/cards",
    summary="The board's cards now (JSON), with the change id",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
async def board_cards(request: Request, user: Viewer) -> Response:
    async with _runtime(request).db.reader() as session:
        last, cards = await snapshot(session, user.branch)
    # Cards are plain JSON already: skip the generic encoder (a third of the time).
    body = json.dumps({"last_id": last, "cards": cards}, ensure_ascii=False)
    return Response(body, media_type="application/json")


def _events(lounge: bool) -> Any:
    # A default, not an annotation: annotations here are strings resolved in the module.
    viewer = Depends(_viewer(ScreenVariant.lounge if lounge else ScreenVariant.board))

    async def stream(
        request: Request,
        after: Annotated[int | None, Query(ge=0, description="resume after this change id")] = None,
        last_event_id: Annotated[str | None, Header(max_length=32)] = None,
        user: User = viewer,
    ) -> StreamingResponse:
        return StreamingResponse(
            event_stream(
                _runtime(request),
                user.branch,
                _resume_from(last_event_id, after),
                lounge,
                getattr(request.state, "screen", None),
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return stream


router.add_api_route(
    "/board/events",
    _events(lounge=False),
    methods=["GET"],
    summary="Server-Sent Events of the board (resumes from Last-Event-ID)",
    response_class=StreamingResponse,
    responses=EVENT_STREAM,
)
router.add_api_route(
    "/board/lounge/events",
    _events(lounge=True),
    methods=["GET"],
    summary="Server-Sent Events of the customer-lounge board (no names, masked plates)",
    response_class=StreamingResponse,
    responses=EVENT_STREAM,
)


async def _page(request: Request, user: User | None, lang: str, lounge: bool) -> HTMLResponse:
    from services.workorders.board_page import render_page, render_withdrawn

    if user is None:
        return HTMLResponse(
            await asyncio.to_thread(render_withdrawn, lang),
            status_code=401,
            headers={"Cache-Control": "no-store", "WWW-Authenticate": "Bearer"},
        )

    settings = cast(Settings, _runtime(request).settings)
    async with _runtime(request).db.reader() as session:
        last, cards = await snapshot(session, user.branch)
    if lounge:
        cards = [lounge_card(c) for c in cards]
    html = render_page(
        cards=cards,
        last_id=last,
        lang=lang,
        lounge=lounge,
        branch=user.branch,
        time_zone=settings.zone_of(user.branch),
        events_path="/board/lounge/events" if lounge else "/board/events",
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get(
    "/board",
    response_class=HTMLResponse,
    summary="The workshop's status board (TV page)",
    responses=PAGE_WITHDRAWN,
)
async def board_page(request: Request, user: PageViewer, lang: Lang = "zh-CN") -> HTMLResponse:
    return await _page(request, user, lang, lounge=False)


@router.get(
    "/board/lounge",
    response_class=HTMLResponse,
    summary="The customer-lounge board: masked plates, no names",
    responses=PAGE_WITHDRAWN,
)
async def lounge_page(
    request: Request, user: LoungePageViewer, lang: Lang = "zh-CN"
) -> HTMLResponse:
    return await _page(request, user, lang, lounge=True)
