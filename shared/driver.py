"""A hot path's statements straight on the database driver (asyncpg or sqlite3).

SQLAlchemy spends about 150,000 instructions around each statement it runs (compiled-cache
lookup, execution context, result wrapping, two greenlet hops); asyncpg itself about
70,000. `DriverStatement` compiles a Core statement once per dialect and runs it on a
driver connection: the same SQL, the same bind and result processing, the same exceptions.
Inside a session it runs on the connection the session already holds, in its transaction,
when that is asyncpg with the transaction begun on the server; otherwise it runs through
SQLAlchemy, so the caller never has to care.

A whole hot write can skip the session too (`Database.hot_transaction`): a session's begin
and commit cost more than the statements between them. Its statements run on a
`Statements`: a `DriverTransaction` (`AsyncpgTransaction` or `SqliteTransaction`), whose
commit runs the hooks registered with `before_commit` and `after_commit` (what a session's
commit events do for the outbox and the status board), or `SessionStatements` on a session.
"""

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.expression import Executable
from sqlalchemy.util import await_


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    defaults: dict[str, Any]
    results: tuple[Callable[[Any], Any] | None, ...]


class DriverStatement:
    """A Core statement compiled once per dialect and run straight on the driver."""

    def __init__(self, statement: Executable):
        self.statement = statement
        # Per dialect and set of parameter names (an INSERT's columns follow them).
        self._compiled: dict[tuple[str, frozenset[str]], _Compiled] = {}

    def _compile(self, dialect: Dialect, keys: frozenset[str]) -> _Compiled:
        compiled = self._compiled.get((dialect.name, keys))
        if compiled is not None:
            return compiled
        done = self.statement.compile(dialect=dialect, column_keys=sorted(keys))  # type: ignore[attr-defined]
        names = tuple(done.positiontup or ())
        binds = {name: done.binds[name] for name in names}
        compiled = _Compiled(
            sql=done.string,
            names=names,
            processors=tuple(
                binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
            ),
            defaults={
                name: bind.effective_value for name, bind in binds.items() if name not in keys
            },
            results=tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in done._result_columns
            ),
        )
        self._compiled[(dialect.name, keys)] = compiled
        return compiled

    @staticmethod
    def _driver(conn: Connection) -> Any:
        """asyncpg's connection when the session's transaction is open on it, else None."""
        if conn.dialect.driver != "asyncpg" or conn.invalidated or not conn.in_transaction():
            return None
        driver = conn.connection.driver_connection
        return driver if driver is not None and driver.is_in_transaction() else None

    def _values(self, compiled: _Compiled, params: dict[str, Any]) -> list[Any]:
        values = []
        for name, process in zip(compiled.names, compiled.processors, strict=True):
            value = params[name] if name in params else compiled.defaults[name]
            values.append(process(value) if process is not None else value)
        return values

    async def execute(self, conn: AsyncConnection, params: dict[str, Any]) -> int:
        """Runs the statement; returns the number of rows it changed."""
        driver = self._driver(conn.sync_connection) if conn.sync_connection else None
        if driver is None:
            result: Any = await conn.execute(self.statement, params)
            return int(result.rowcount)
        return await self.execute_on(driver, conn.dialect, params)

    async def first(self, conn: AsyncConnection, params: dict[str, Any]) -> Sequence[Any] | None:
        """The first row the statement returns, or None."""
        driver = self._driver(conn.sync_connection) if conn.sync_connection else None
        if driver is None:
            return (await conn.execute(self.statement, params)).first()
        rows = await self.fetch_on(driver, conn.dialect, params)
        return rows[0] if rows else None

    async def execute_on(self, driver: Any, dialect: Dialect, params: dict[str, Any]) -> int:
        """Runs the statement on an asyncpg connection; returns the number of rows changed."""
        compiled = self._compile(dialect, frozenset(params))
        try:
            status: str = await driver.execute(compiled.sql, *self._values(compiled, params))
        except Exception as exc:
            raise _translated(exc, compiled.sql, params) from exc
        return _count(status)

    async def fetch_on(
        self, driver: Any, dialect: Dialect, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """The rows the statement returns on an asyncpg connection, each value processed as
        SQLAlchemy would (JSON decoded, say)."""
        compiled = self._compile(dialect, frozenset(params))
        try:
            rows = await driver.fetch(compiled.sql, *self._values(compiled, params))
        except Exception as exc:
            raise _translated(exc, compiled.sql, params) from exc
        return _processed(compiled, rows)

    def execute_sqlite(
        self, conn: sqlite3.Connection, dialect: Dialect, params: dict[str, Any]
    ) -> int:
        """Runs the statement on a sqlite3 connection; returns the number of rows changed."""
        compiled = self._compile(dialect, frozenset(params))
        try:
            return conn.execute(compiled.sql, self._values(compiled, params)).rowcount
        except sqlite3.Error as exc:
            raise _translated(exc, compiled.sql, params) from exc

    def fetch_sqlite(
        self, conn: sqlite3.Connection, dialect: Dialect, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """The rows the statement returns on a sqlite3 connection, processed as `fetch_on`'s."""
        compiled = self._compile(dialect, frozenset(params))
        try:
            rows = conn.execute(compiled.sql, self._values(compiled, params)).fetchall()
        except sqlite3.Error as exc:
            raise _translated(exc, compiled.sql, params) from exc
        return _processed(compiled, rows)

    def execute_in_greenlet(self, conn: Connection, params: dict[str, Any]) -> int:
        """`execute` from the synchronous code SQLAlchemy runs for an async session, such
        as a session's commit hook."""
        driver = self._driver(conn)
        if driver is None:
            result: Any = conn.execute(self.statement, params)
            return int(result.rowcount)
        compiled = self._compile(conn.dialect, frozenset(params))
        try:
            status: str = await_(driver.execute(compiled.sql, *self._values(compiled, params)))
        except Exception as exc:
            raise _translated(exc, compiled.sql, params) from exc
        return _count(status)

    def first_column_in_greenlet(self, conn: Connection, params: dict[str, Any]) -> list[Any]:
        """The first column of the rows the statement returns (say, INSERT … RETURNING)."""
        driver = self._driver(conn)
        if driver is None:
            return list(conn.execute(self.statement, params).scalars().all())
        compiled = self._compile(conn.dialect, frozenset(params))
        try:
            rows = await_(driver.fetch(compiled.sql, *self._values(compiled, params)))
        except Exception as exc:
            raise _translated(exc, compiled.sql, params) from exc
        return [row[0] for row in rows]


def _processed(compiled: _Compiled, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    results = compiled.results
    if not any(results):
        return [tuple(row) for row in rows]
    return [
        tuple(
            value if process is None or value is None else process(value)
            for value, process in zip(row, results, strict=True)
        )
        for row in rows
    ]


def _count(status: str) -> int:
    # "UPDATE 1", "INSERT 0 1", "DELETE 3": the count is the last word.
    return int(status.rsplit(" ", 1)[-1])


def _translated(exc: Exception, sql: str, params: dict[str, Any]) -> Exception:
    """SQLAlchemy's exception for a driver's, as if SQLAlchemy had run the statement."""
    if isinstance(exc, sqlite3.Error):  # a DB-API error: SQLAlchemy's class of its name
        return DBAPIError.instance(sql, params, exc, sqlite3.Error)
    import asyncpg

    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(sql, params, exc)
    if isinstance(
        exc,
        asyncpg.PostgresError | asyncpg.InterfaceError | asyncpg.InternalClientError | OSError,
    ):
        return DBAPIError(sql, params, exc)
    return exc


class Statements(Protocol):
    """Where a hot write runs its statements; `info` holds what its commit writes (the
    outbox's events, the board's changes), as a session's `info` does."""

    info: dict[str, Any]
    dialect: Dialect

    async def execute(self, statement: DriverStatement, params: dict[str, Any]) -> int: ...

    async def first(
        self, statement: DriverStatement, params: dict[str, Any]
    ) -> Sequence[Any] | None: ...

    async def first_column(
        self, statement: DriverStatement, params: dict[str, Any]
    ) -> list[Any]: ...


class SessionStatements:
    """`Statements` on a session's transaction: SQLite, or whatever else has no driver."""

    def __init__(self, session: AsyncSession):
        self.session = session
        self.info = session.info
        self.dialect = session.get_bind().dialect
        self._conn: AsyncConnection | None = None

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            self._conn = await self.session.connection()
        return self._conn

    async def execute(self, statement: DriverStatement, params: dict[str, Any]) -> int:
        return await statement.execute(await self._connection(), params)

    async def first(
        self, statement: DriverStatement, params: dict[str, Any]
    ) -> Sequence[Any] | None:
        return await statement.first(await self._connection(), params)

    async def first_column(self, statement: DriverStatement, params: dict[str, Any]) -> list[Any]:
        result = await (await self._connection()).execute(statement.statement, params)
        return list(result.scalars().all())


class DriverTransaction:
    """`Statements` on a driver connection's own transaction (`Database.hot_transaction`)."""

    def __init__(self, dialect: Dialect, info: dict[str, Any]):
        self.dialect, self.info = dialect, info

    async def begin(self) -> None:
        raise NotImplementedError

    async def commit(self) -> None:
        """Writes what the hooks collected (`before_commit`), then commits."""
        for write in BEFORE_COMMIT:
            await write(self)
        await self._commit()

    async def _commit(self) -> None:
        raise NotImplementedError

    async def rollback(self) -> bool:
        """Rolls back what is left of the transaction; False when the connection can no
        longer be trusted (lost, or the rollback itself failed): it must not be reused."""
        raise NotImplementedError

    async def execute(self, statement: DriverStatement, params: dict[str, Any]) -> int:
        raise NotImplementedError

    async def fetch(
        self, statement: DriverStatement, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def first(
        self, statement: DriverStatement, params: dict[str, Any]
    ) -> Sequence[Any] | None:
        rows = await self.fetch(statement, params)
        return rows[0] if rows else None

    async def first_column(self, statement: DriverStatement, params: dict[str, Any]) -> list[Any]:
        return [row[0] for row in await self.fetch(statement, params)]


class AsyncpgTransaction(DriverTransaction):
    """A hot transaction on an asyncpg connection (PostgreSQL)."""

    def __init__(self, driver: Any, dialect: Dialect, info: dict[str, Any]):
        super().__init__(dialect, info)
        self.driver = driver
        self._transaction: Any = None

    async def begin(self) -> None:
        self._transaction = self.driver.transaction()
        await self._control("BEGIN", self._transaction.start)

    async def _commit(self) -> None:
        await self._control("COMMIT", self._transaction.commit)

    async def rollback(self) -> bool:
        if self.driver.is_closed() or self._transaction is None:
            return False
        try:
            await self._transaction.rollback()
        except Exception:
            return False
        return True

    @staticmethod
    async def _control(sql: str, call: Callable[[], Awaitable[None]]) -> None:
        try:
            await call()
        except Exception as exc:
            raise _translated(exc, sql, {}) from exc

    async def execute(self, statement: DriverStatement, params: dict[str, Any]) -> int:
        return await statement.execute_on(self.driver, self.dialect, params)

    async def fetch(
        self, statement: DriverStatement, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        return await statement.fetch_on(self.driver, self.dialect, params)


class SqliteTransaction(DriverTransaction):
    """A hot transaction on a sqlite3 connection, run inline on the event loop as every
    SQLite call of a service is (`shared.db.InlineSqliteConnection`). The caller holds the
    process's writer lock; BEGIN IMMEDIATE takes the file's write lock at once, so the
    reads see what the writes will be checked against."""

    def __init__(self, conn: sqlite3.Connection, dialect: Dialect, info: dict[str, Any]):
        super().__init__(dialect, info)
        self.conn = conn

    async def begin(self) -> None:
        self._control("BEGIN IMMEDIATE")

    async def _commit(self) -> None:
        self._control("COMMIT")

    async def rollback(self) -> bool:
        try:
            if self.conn.in_transaction:
                self.conn.rollback()
        except sqlite3.Error:
            return False
        return True

    def _control(self, sql: str) -> None:
        try:
            self.conn.execute(sql)
        except sqlite3.Error as exc:
            raise _translated(exc, sql, {}) from exc

    async def execute(self, statement: DriverStatement, params: dict[str, Any]) -> int:
        return statement.execute_sqlite(self.conn, self.dialect, params)

    async def fetch(
        self, statement: DriverStatement, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        return statement.fetch_sqlite(self.conn, self.dialect, params)


BeforeCommit = Callable[[DriverTransaction], Awaitable[None]]
AfterCommit = Callable[[dict[str, Any]], None]
BEFORE_COMMIT: list[BeforeCommit] = []
AFTER_COMMIT: list[AfterCommit] = []


def before_commit(hook: BeforeCommit) -> BeforeCommit:
    """Run `hook(transaction)` last in every `DriverTransaction`, as a session's
    before_commit event: it writes what the transaction's `info` collected."""
    BEFORE_COMMIT.append(hook)
    return hook


def after_commit(hook: AfterCommit) -> AfterCommit:
    """Run `hook(info)` right after every `DriverTransaction` commits, as a session's
    after_commit event."""
    AFTER_COMMIT.append(hook)
    return hook
