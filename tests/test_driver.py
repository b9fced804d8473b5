"""Statements run straight on the driver, inside the session's transaction (asyncpg;
SQLAlchemy on SQLite) or in a hot transaction without a session (asyncpg or sqlite3): the
same rows, counts, errors and rollback as through SQLAlchemy."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from shared.db import Database
from shared.driver import DriverStatement
from shared.types import UTCDateTime
from tests.harness import PG_ADMIN_URL

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

metadata = MetaData()
card = Table(
    "card",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("status", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("seen_at", UTCDateTime(), nullable=True),
)

ADD = DriverStatement(insert(card))
MOVE = DriverStatement(
    update(card)
    .where(card.c.id == bindparam("card_id"), card.c.status == bindparam("from_status"))
    .values(status=bindparam("to_status"), version=card.c.version + 1)
)


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


def _through_sqlalchemy(db: Database) -> list[str]:
    """The statements SQLAlchemy itself sends from now on."""
    seen: list[str] = []
    event.listen(
        db.engine.sync_engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_: seen.append(statement),
    )
    return seen


async def _row(db: Database, card_id: uuid.UUID) -> tuple[str, int, datetime | None] | None:
    async with db.engine.connect() as conn:
        query = select(card.c.status, card.c.version, card.c.seen_at).where(card.c.id == card_id)
        row = (await conn.execute(query)).first()
        return None if row is None else (row[0], row[1], row[2])


async def _begun(session: AsyncSession) -> AsyncConnection:
    """The session's connection with its transaction begun on the server, as clocking's
    state read leaves it."""
    conn = await session.connection()
    await conn.execute(select(card.c.id))
    return conn


async def _open_card(db: Database) -> uuid.UUID:
    card_id = uuid.uuid4()
    async with db.transaction() as session:
        await ADD.execute(
            await session.connection(), {"id": card_id, "status": "open", "version": 1}
        )
    return card_id


async def test_a_statement_changes_rows_in_the_sessions_transaction(db: Database) -> None:
    card_id = uuid.uuid4()
    seen_at = datetime(2026, 11, 29, 17, 30, tzinfo=timezone(timedelta(hours=8)))
    sent = _through_sqlalchemy(db)
    async with db.transaction() as session:
        conn = await _begun(session)
        assert (
            await ADD.execute(
                conn, {"id": card_id, "status": "open", "version": 1, "seen_at": seen_at}
            )
            == 1
        )
        moved = {"card_id": card_id, "from_status": "open", "to_status": "done"}
        assert await MOVE.execute(conn, moved) == 1
        assert await MOVE.execute(conn, moved) == 0  # no longer open: nothing changed
        # The session sees its own transaction's rows.
        assert (await conn.execute(select(card.c.version))).scalar_one() == 2
    # Stored as the same instant, in UTC; the version moved once.
    assert await _row(db, card_id) == ("done", 2, seen_at.astimezone(UTC))
    on_the_driver = db.engine.dialect.driver == "asyncpg"
    assert any(s.startswith("INSERT INTO card") for s in sent) is not on_the_driver
    assert any(s.startswith("UPDATE card") for s in sent) is not on_the_driver


async def test_its_changes_roll_back_with_the_transaction(db: Database) -> None:
    card_id = await _open_card(db)
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            conn = await _begun(session)
            moved = {"card_id": card_id, "from_status": "open", "to_status": "done"}
            assert await MOVE.execute(conn, moved) == 1
            raise RuntimeError("the request failed after the update")
    assert await _row(db, card_id) == ("open", 1, None)


async def test_a_constraint_violation_is_sqlalchemys_integrity_error(db: Database) -> None:
    card_id = await _open_card(db)
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            conn = await _begun(session)
            await ADD.execute(conn, {"id": card_id, "status": "twice", "version": 1})
    assert await _row(db, card_id) == ("open", 1, None)
    # The connection went back to the pool in order: the next transaction works.
    async with db.transaction() as session:
        conn = await _begun(session)
        assert await ADD.execute(conn, {"id": uuid.uuid4(), "status": "open", "version": 1})


Run = Callable[[DriverStatement, dict[str, Any]], Awaitable[int]]


@contextlib.asynccontextmanager
async def _writing(db: Database, hot: bool) -> AsyncIterator[tuple[Run, int]]:
    """A session's transaction begun on the server, or a hot transaction: how to run a
    statement in it, and its server process."""
    if hot:
        async with db.hot_transaction() as tx:
            yield tx.execute, tx.driver.get_server_pid()  # type: ignore[attr-defined]
        return
    async with db.transaction() as session:
        conn = await _begun(session)
        driver: Any = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]

        async def run(statement: DriverStatement, params: dict[str, Any]) -> int:
            return await statement.execute(conn, params)

        yield run, driver.get_server_pid()


@pytest.mark.parametrize("hot", [False, True], ids=["session", "hot"])
async def test_a_connection_lost_mid_transaction_fails_once_and_is_replaced(
    pg_url: str, hot: bool
) -> None:
    db = Database(pg_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        with pytest.raises(DBAPIError):
            async with _writing(db, hot) as (run, pid):
                admin = await asyncpg.connect(PG_ADMIN_URL)
                await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
                await admin.close()
                await run(ADD, {"id": uuid.uuid4(), "status": "open", "version": 1})
        card_id = uuid.uuid4()
        async with _writing(db, hot) as (run, _):
            assert await run(ADD, {"id": card_id, "status": "open", "version": 1})
        assert await _row(db, card_id) == ("open", 1, None)
    finally:
        await db.dispose()


ADD_RETURNING = DriverStatement(insert(card).returning(card.c.version))


async def test_synchronous_code_of_the_session_runs_statements_the_same_way(
    db: Database,
) -> None:
    """What a commit hook does: the statements from the session's synchronous side."""
    card_id = uuid.uuid4()
    async with db.transaction() as session:
        await _begun(session)

        def in_the_session(sync_session: Session) -> tuple[list[Any], int]:
            conn = sync_session.connection()
            versions = ADD_RETURNING.first_column_in_greenlet(
                conn, {"id": card_id, "status": "open", "version": 7}
            )
            moved = MOVE.execute_in_greenlet(
                conn, {"card_id": card_id, "from_status": "open", "to_status": "done"}
            )
            return versions, moved

        assert await session.run_sync(in_the_session) == ([7], 1)
    assert await _row(db, card_id) == ("done", 8, None)


SEEN = DriverStatement(
    select(card.c.id, card.c.status, card.c.seen_at).where(card.c.id == bindparam("card_id"))
)


async def test_a_hot_transaction_runs_its_statements_on_the_driver_and_commits_at_the_end(
    db: Database,
) -> None:
    card_id = uuid.uuid4()
    seen_at = datetime(2026, 11, 29, 17, 30, tzinfo=timezone(timedelta(hours=8)))
    sent = _through_sqlalchemy(db)
    async with db.hot_transaction() as tx:
        added = {"id": card_id, "status": "open", "version": 1, "seen_at": seen_at}
        assert await tx.execute(ADD, added) == 1
        moved = {"card_id": card_id, "from_status": "open", "to_status": "done"}
        assert await tx.execute(MOVE, moved) == 1
        # Its own rows, read back the way SQLAlchemy returns them (a UUID, an aware UTC
        # time).
        assert await tx.first(SEEN, {"card_id": card_id}) == (
            card_id,
            "done",
            seen_at.astimezone(UTC),
        )
        assert await tx.first(SEEN, {"card_id": uuid.uuid4()}) is None
        assert await _row(db, card_id) is None  # not committed yet
    assert await _row(db, card_id) == ("done", 2, seen_at.astimezone(UTC))
    # On the driver (asyncpg or sqlite3), not through SQLAlchemy.
    ours = ("INSERT INTO card", "UPDATE card", "SELECT card.id")
    assert not any(statement.startswith(ours) for statement in sent)


async def test_hot_transactions_at_once_both_commit(db: Database) -> None:
    """On SQLite the second waits for the process's writer lock: its BEGIN IMMEDIATE on
    another connection while the first holds the file would stall the event loop in
    SQLite's busy handler and fail. On PostgreSQL they run side by side."""
    first_id, second_id = uuid.uuid4(), uuid.uuid4()
    first_wrote, second_began = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with db.hot_transaction() as tx:
            await tx.execute(ADD, {"id": first_id, "status": "open", "version": 1})
            first_wrote.set()
            await second_began.wait()

    async def second() -> None:
        await first_wrote.wait()
        second_began.set()
        async with db.hot_transaction() as tx:
            await tx.execute(ADD, {"id": second_id, "status": "open", "version": 1})

    await asyncio.wait_for(asyncio.gather(first(), second()), timeout=30)
    assert await _row(db, first_id) == ("open", 1, None)
    assert await _row(db, second_id) == ("open", 1, None)


async def test_a_hot_transaction_rolls_back_on_error(db: Database) -> None:
    card_id = await _open_card(db)
    with pytest.raises(IntegrityError):
        async with db.hot_transaction() as tx:
            moved = {"card_id": card_id, "from_status": "open", "to_status": "done"}
            assert await tx.execute(MOVE, moved) == 1
            await tx.execute(ADD, {"id": card_id, "status": "twice", "version": 1})
    assert await _row(db, card_id) == ("open", 1, None)
    async with db.hot_transaction() as tx:  # the connection went back to the pool in order
        assert await tx.execute(ADD, {"id": uuid.uuid4(), "status": "open", "version": 1})
