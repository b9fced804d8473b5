"""Every service migrates from empty on SQLite and PostgreSQL, and its models match."""

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.db import Database
from shared.migrations import upgrade
from tools.processes import SERVICES

pytestmark = [pytest.mark.asyncio, pytest.mark.store]


@pytest.mark.parametrize("service", SERVICES)
async def test_upgrade_from_empty_matches_the_models(service: str, database_url: str) -> None:
    spec = importlib.import_module(f"services.{service}.main").SPEC
    db = Database(database_url)
    try:
        await upgrade(db, spec.migrations)
        await upgrade(db, spec.migrations)  # a second run is a no-op

        def diff(connection):
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, spec.metadata)

        async with db.engine.connect() as connection:
            differences = await connection.run_sync(diff)
            tables = await connection.run_sync(lambda c: set(c.dialect.get_table_names(c)))
        assert differences == [], f"{service}: models and migrations differ: {differences}"
        assert {"outbox_event", "inbox_event", "alembic_version"} <= tables
        assert set(spec.metadata.tables) <= tables
    finally:
        await db.dispose()
