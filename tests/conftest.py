"""Fixtures: real nats-server, real service processes, throwaway databases."""

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.harness import (
    NatsCluster,
    NatsServer,
    Stack,
    backend,
    create_pg_database,
    drop_pg_database,
    require_postgres,
    round_the_clock,
)

IN_CI = os.environ.get("CI", "").lower() == "true"

# The clock legs: WORKSHOP_TEST_NOW=2026-12-31T23:30:00+08:00 (or +366d, days from now)
# moves this process's wall clock to that instant for the whole run (it keeps ticking from
# there), so a test that holds a fixed date against the real time, or takes "today" in the
# wrong zone, fails on any day rather than on the day the edge comes round. Real-process
# tests are left out: their processes keep the real time.
TEST_NOW = os.environ.get("WORKSHOP_TEST_NOW", "").strip()


def pytest_configure(config: pytest.Config) -> None:
    if not TEST_NOW:
        return
    import time_machine

    try:
        if TEST_NOW.startswith("+") and TEST_NOW.endswith("d"):  # "+366d": days from now
            instant = datetime.now(UTC) + timedelta(days=float(TEST_NOW[1:-1]))
        else:
            instant = datetime.fromisoformat(TEST_NOW)
    except ValueError as error:
        raise pytest.UsageError(f"WORKSHOP_TEST_NOW={TEST_NOW!r}: {error}") from None
    if instant.tzinfo is None:
        raise pytest.UsageError("WORKSHOP_TEST_NOW needs an offset, e.g. 2026-12-31T23:30+08:00")
    traveller = time_machine.travel(instant, tick=True)
    traveller.start()
    config.add_cleanup(traveller.stop)


def pytest_report_header(config: pytest.Config) -> str | None:
    return f"clock moved to {TEST_NOW} (WORKSHOP_TEST_NOW)" if TEST_NOW else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not TEST_NOW:
        return
    real_processes = [item for item in items if item.get_closest_marker("e2e")]
    if real_processes:
        config.hook.pytest_deselected(items=real_processes)
        items[:] = [item for item in items if not item.get_closest_marker("e2e")]


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


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three JetStream nodes clustered on loopback, started once a meta leader is elected."""
    cluster = NatsCluster(tmp_path / "nats").start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if backend() == "postgres":
        require_postgres()
    running = Stack(tmp_path_factory.mktemp("stack"), extra_env=round_the_clock()).start()
    yield running
    running.stop()
