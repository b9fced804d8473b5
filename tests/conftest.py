"""Fixtures: real nats-server, real service processes, throwaway databases."""

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import (
    NatsCluster,
    NatsServer,
    Stack,
    backend,
    create_pg_database,
    drop_pg_database,
    postgres_available,
)

IN_CI = os.environ.get("CI", "").lower() == "true"


def _require_postgres() -> None:
    if not postgres_available():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is unreachable (CI requires it)")
        pytest.skip("PostgreSQL not reachable")


@pytest.fixture(params=["sqlite", "postgres"] if backend() == "postgres" else ["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite always; PostgreSQL too in the PostgreSQL leg."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    _require_postgres()
    url = asyncio.run(create_pg_database())
    yield url
    asyncio.run(drop_pg_database(url))


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database, whatever the leg: for what only PostgreSQL does."""
    _require_postgres()
    url = asyncio.run(create_pg_database())
    yield url
    asyncio.run(drop_pg_database(url))


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three JetStream nodes clustered on loopback, started once a meta leader is elected."""
    cluster = NatsCluster(tmp_path / "nats").start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if backend() == "postgres":
        _require_postgres()
    running = Stack(tmp_path_factory.mktemp("stack")).start()
    yield running
    running.stop()
