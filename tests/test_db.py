"""The connection pool on PostgreSQL: idle connections are checked before use, busy ones
are not (a ping is three round trips with asyncpg)."""

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.db import Database
from tests.harness import PG_ADMIN_URL

pytestmark = [pytest.mark.asyncio]


async def _backend_pid(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(pid: int) -> None:
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_a_connection_lost_while_idle_is_replaced_before_anyone_uses_it(
    pg_url: str,
) -> None:
    db = Database(pg_url, ping_after_idle=0.0)
    try:
        first = await _backend_pid(db)
        await _terminate(first)  # a server restart, say, while the connection sat pooled
        assert await _backend_pid(db) != first
    finally:
        await db.dispose()


async def test_a_connection_in_steady_use_is_handed_out_without_a_ping(pg_url: str) -> None:
    db = Database(pg_url, ping_after_idle=3600.0)
    try:
        first = await _backend_pid(db)
        await _terminate(first)
        # Not pinged: the transaction that meets the dead connection fails, as one in
        # flight when the server goes away would anyway ...
        with pytest.raises(DBAPIError) as failed:
            await _backend_pid(db)
        assert failed.value.connection_invalidated
        # ... and the pool replaces it for the next one.
        assert await _backend_pid(db) != first
    finally:
        await db.dispose()
