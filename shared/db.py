"""Async engine and sessions for SQLite (default) or PostgreSQL, chosen by URL."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import metrics

EVENTS_ADDED = "events_added"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # WAL with NORMAL is durable across a process crash; only an OS crash may lose
    # the last transactions, never corrupt the file.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """One per service process: the engine, the session factory and the write discipline.

    SQLite allows one writer at a time. Write transactions take a per-process asyncio
    lock, so concurrent requests queue in the event loop instead of spinning in SQLite's
    busy handler; reads run without it (WAL readers never block). PostgreSQL needs no lock.
    """

    def __init__(self, url: str, *, echo: bool = False, info: dict[str, Any] | None = None):
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 10}
            kwargs["pool_size"] = 8
        else:
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 10
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, info=info or {}
        )
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._commit_listeners: list[Callable[[], None]] = []

    def on_events_committed(self, listener: Callable[[], None]) -> None:
        """Call `listener` right after a transaction that added outbox events commits."""
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
            if session.info.pop(EVENTS_ADDED, False):
                for listener in self._commit_listeners:
                    listener()

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
