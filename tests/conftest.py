"""Fixtures: real nats-server, real service processes, throwaway databases."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import (
    NatsServer,
    Stack,
    backend,
    create_pg_database,
    drop_pg_database,
    require_postgres,
)


@pytest.fixture(params=["sqlite", "postgres"] if backend() == "postgres" else ["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite always; PostgreSQL too in the PostgreSQL leg."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    require_postgres()
    url = asyncio.run(create_pg_database())
    yield url
    asyncio.run(drop_pg_database(url))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database, whatever the leg: for what only PostgreSQL does."""
    require_postgres()
    url = asyncio.run(create_pg_database())
    yield url
    asyncio.run(drop_pg_database(url))


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if backend() == "postgres":
        require_postgres()
    running = Stack(tmp_path_factory.mktemp("stack")).start()
    yield running
    running.stop()
