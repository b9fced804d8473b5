"""Async engine and sessions for SQLite (default) or PostgreSQL, chosen by URL."""

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import metrics
from shared.driver import (
    AFTER_COMMIT,
    AsyncpgTransaction,
    DriverTransaction,
    SqliteTransaction,
    Statements,
)

EVENTS_ADDED = "events_added"
# PostgreSQL: a pooled connection idle this long is pinged before it is handed out.
PING_AFTER_IDLE = 2.0
_IDLE_SINCE = "idle_since"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # WAL with NORMAL is durable across a process crash; only an OS crash may lose
    # the last transactions, never corrupt the file.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class InlineSqliteConnection(aiosqlite.Connection):
    """aiosqlite's interface, but each call runs right on the event loop.

    aiosqlite hands every call to a worker thread; on a small machine that hand-off costs
    more than the SQLite work itself (a transaction makes dozens of calls). Running inline
    is safe here because a service is the only process on its file, writes are
    serialized by the writer lock before they start, and WAL readers never wait.
    """

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> "InlineSqliteConnection":
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Any:
        return self._connect().__await__()

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The sqlite3 connection itself (`Database.hot_transaction` runs on it)."""
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return self._connection

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def _idle_from_now(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _ping_after_idle(seconds: float) -> Callable[[Any, Any, Any], None]:
    """A pool checkout hook: a connection that sat in the pool `seconds` or more (the
    server may have restarted or dropped it meanwhile) is pinged first; a dead one is
    replaced before anyone uses it. SQLAlchemy's `pool_pre_ping` pings every checkout,
    which with asyncpg is three round trips (BEGIN, a query, ROLLBACK) on each
    transaction: a fifth of a clocking's CPU. A connection in steady use is not pinged;
    if the server goes away under it, that transaction fails as it would anyway and the
    pool replaces every older connection."""

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < seconds:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError(f"pooled connection lost while idle: {exc}") from exc

    return checkout


def _inline_sqlite_creator(path: str) -> Callable[[], Any]:
    async def create() -> InlineSqliteConnection:
        def connect() -> sqlite3.Connection:
            return sqlite3.connect(path, timeout=5, check_same_thread=False)

        return await InlineSqliteConnection(connect, iter_chunk_size=64)

    return create


class Database:
    """One per service process: the engine, the session factory and the write discipline.

    SQLite allows one writer at a time. Write transactions take a per-process asyncio
    lock, so concurrent requests queue in the event loop instead of spinning in SQLite's
    busy handler; reads run without it (WAL readers never block). PostgreSQL needs no lock.
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        info: dict[str, Any] | None = None,
        ping_after_idle: float = PING_AFTER_IDLE,
        pool_size: int = 40,
        max_overflow: int = 10,
    ):
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["async_creator"] = _inline_sqlite_creator(database or ":memory:")
            kwargs["pool_size"] = 8
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = max_overflow
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            pool = self.engine.sync_engine.pool
            event.listen(pool, "checkin", _idle_from_now)
            event.listen(pool, "checkout", _ping_after_idle(ping_after_idle))
        self._info = info or {}
        self.sessionmaker = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, info=self._info
        )
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._commit_listeners: list[Callable[[list[Any]], None]] = []

    def on_events_committed(self, listener: Callable[[list[Any]], None]) -> None:
        """Call `listener(rows)` right after a transaction that added outbox rows commits."""
        self._commit_listeners.append(listener)

    @contextlib.asynccontextmanager
    async def _writer(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
            return
        started = time.perf_counter()
        async with self._write_lock:
            metrics.WRITE_LOCK_WAIT.observe(time.perf_counter() - started)
            yield

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed when the block ends, rolled back on error."""
        async with self._writer(), self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            rows = session.info.pop(EVENTS_ADDED, None)
            if rows:
                for listener in self._commit_listeners:
                    listener(rows)

    @contextlib.asynccontextmanager
    async def hot_transaction(self) -> AsyncIterator[Statements]:
        """A write transaction for a hot path's `DriverStatement`s, committed when the block
        ends and rolled back on error.

        It runs straight on the driver (asyncpg, or sqlite3 under the writer lock), on a
        connection from the engine's pool: no session, whose begin and commit cost more
        than a clocking's four statements between them. Its commit runs the hooks a
        session's commit runs (the outbox's events, the board's changes;
        `driver.before_commit`), then tells the commit listeners."""
        async with self._writer():
            async with self.engine.connect() as conn:
                driver: Any = (await conn.get_raw_connection()).driver_connection
                info = dict(self._info)
                transaction: DriverTransaction = (
                    SqliteTransaction(driver.sqlite, self.engine.dialect, info)
                    if self.is_sqlite
                    else AsyncpgTransaction(driver, self.engine.dialect, info)
                )
                try:
                    await transaction.begin()
                    yield transaction
                    await transaction.commit()
                except BaseException:
                    if not await transaction.rollback():  # lost: not back into the pool
                        await conn.invalidate()
                    raise
            rows = transaction.info.pop(EVENTS_ADDED, None)
            for hook in AFTER_COMMIT:
                hook(transaction.info)
            if rows:
                for listener in self._commit_listeners:
                    listener(rows)

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A read-only session; whatever it may have changed is rolled back."""
        async with self.sessionmaker() as session:
            try:
                yield session
            finally:
                await session.rollback()

    async def ping(self) -> None:
        async with self.reader() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
