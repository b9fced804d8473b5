"""Real processes for tests and benchmarks: nats-server from the wheel, uvicorn services,
throwaway PostgreSQL databases, and polling with a deadline."""

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import nats
from nats.js.errors import NotFoundError

from shared.auth import issue_dev_token
from shared.events import Envelope, encode
from shared.settings import ServiceSettings
from tools.processes import SERVICES, NatsCluster, NatsServer, ServiceProcess, free_port

JWT_SECRET = ServiceSettings().jwt_secret
PG_ADMIN_URL = os.environ.get("WORKSHOP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

__all__ = [
    "SERVICES",
    "NatsCluster",
    "NatsServer",
    "ServiceProcess",
    "Stack",
    "auth",
    "eventually",
    "free_port",
    "publish_at_once",
    "replicas",
]

T = TypeVar("T")


def token(role: str | list[str] = "advisor", branch: str = "BR01", sub: str | None = None) -> str:
    return issue_dev_token(JWT_SECRET, role=role, branch=branch, sub=sub)


def auth(role: str | list[str] = "advisor", branch: str = "BR01") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, branch)}"}


def round_the_clock(days: int = 3) -> dict[str, str]:
    """A `Stack`'s settings for a branch that works around the clock from yesterday to
    `days` ahead, holidays or not: real processes keep the real time, and a test of a day's
    flow (bookings, promises) must not depend on the hour or the date it runs on. The branch
    calendar's own rules are tested on set clocks (tests/test_calendar*.py)."""
    today = datetime.now(UTC).date()
    worked = [str(today + timedelta(days=i)) for i in range(-1, days + 1)]
    return {
        "{SERVICE}_BUSINESS_OPENS_HOUR": "0",
        "{SERVICE}_BUSINESS_CLOSES_HOUR": "24",
        "{SERVICE}_CALENDAR_WORKDAYS": json.dumps({"CN": worked}),
    }


def wall_clock() -> float:
    """The machine's clock in seconds since the epoch, even when the clock legs have moved
    this process's (`WORKSHOP_TEST_NOW`): the clock nats-server and PostgreSQL stamp with,
    for comparing an instant taken here with one they stored."""
    import time_machine

    if time_machine.escape_hatch.is_travelling():
        return time_machine.escape_hatch.time.time()
    return time.time()


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = 20,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `probe` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await probe()
            if last:
                return last
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last: {last!r}")
        await asyncio.sleep(interval)


# --- replicas and events straight onto the stream -------------------------------------


@contextlib.contextmanager
def replicas(
    name: str, database_url: str, nats_url: str, root: Path, count: int = 2
) -> Iterator[list[ServiceProcess]]:
    """`count` processes of one service on one database and one nats-server, sharing its
    durable consumers as a dealer group's replicas do; the first migrates."""
    prefix = name.upper()
    env = {
        f"{prefix}_DATABASE_URL": database_url,
        f"{prefix}_NATS_URL": nats_url,
        f"{prefix}_RELAY_POLL_INTERVAL": "0.5",
    }
    processes = [
        ServiceProcess(
            name, {**env, f"{prefix}_AUTO_MIGRATE": "false"} if n else env, root / f"logs-{n}"
        )
        for n in range(count)
    ]
    try:
        processes[0].start()
        for process in processes[1:]:
            process.start(wait=False)
        for process in processes[1:]:
            process.wait_healthy()
        yield processes
    finally:
        for process in processes:
            process.stop()


async def publish_at_once(
    nats_url: str,
    envelopes: list[Envelope],
    *,
    consumers: dict[str, str],
    replicas: int = 2,
) -> None:
    """Publish events in the contracts' format straight onto their streams, all in flight
    at once, as soon as every durable in `consumers` (durable: stream) has a pull request
    of each of the `replicas` waiting, so the replicas take the events up together."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()

        async def waiting() -> bool:
            for durable, stream in consumers.items():
                try:
                    info = await js.consumer_info(stream, durable)
                except NotFoundError:
                    return False
                if (info.num_waiting or 0) < replicas:
                    return False
            return True

        await eventually(waiting, timeout=30, what=f"{replicas} replicas pulling {consumers}")
        await asyncio.gather(
            *(js.publish(e.type, encode(e), headers={"Nats-Msg-Id": e.id}) for e in envelopes)
        )
    finally:
        await nc.close()


async def _waiting(admin: Any, count: int, unless: "asyncio.Task[None] | None" = None) -> bool:
    """At least `count` transactions of the admin's database wait for a lock (advisory or
    a row's), or `unless` finished without waiting."""
    if unless is not None and unless.done():
        return True
    waiting = await admin.fetchval(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE a.datname = current_database() AND NOT l.granted"
    )
    return bool(waiting >= count)


async def second_starts_before_first_commits(
    database_url: str,
    first: Callable[[], Coroutine[Any, Any, None]],
    second: Callable[[], Coroutine[Any, Any, None]],
    *,
    hold: str,
    args: tuple[Any, ...] = (),
) -> None:
    """Two transactions on PostgreSQL in the worst interleaving for a read-modify-write:
    `second` has started (and read) before `first` commits. An admin connection runs
    `hold` in a transaction of its own (taking a lock `first` needs), `first` starts and
    waits behind it, `second` starts and runs until it finishes or waits too, then the
    hold is let go and both end."""
    import asyncpg

    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    # Two connections: a transaction sees pg_stat_activity as it was at its first look.
    admin, watch = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        held = admin.transaction()
        await held.start()
        await admin.execute(hold, *args)
        tasks = [asyncio.create_task(first())]
        try:
            await eventually(lambda: _waiting(watch, 1, tasks[0]), what="the first one waiting")
            tasks.append(asyncio.create_task(second()))
            await eventually(lambda: _waiting(watch, 2, tasks[1]), what="the second one waiting")
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        finally:
            await held.rollback()
        for task in tasks:
            await task
    finally:
        await admin.close()
        await watch.close()


# --- databases ---------------------------------------------------------------------


def postgres_available() -> bool:
    """Whether PostgreSQL answers at 127.0.0.1:5432; callable from a test's running event
    loop too (the probe gets a loop of its own in a thread)."""
    import concurrent.futures

    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
        await conn.close()

    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, probe()).result()
        return True
    except Exception:
        return False


def require_postgres() -> None:
    """Skip the test when the machine has no PostgreSQL; under CI=true, fail it."""
    import pytest

    if not postgres_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is unreachable (CI requires it)")
        pytest.skip("PostgreSQL not reachable")


async def create_pg_database(prefix: str = "ws_test") -> str:
    """A throwaway database on the machine's PostgreSQL; returns its SQLAlchemy URL."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


async def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def backend() -> str:
    """`sqlite` (default) or `postgres`: which store the store and e2e tests run on."""
    return os.environ.get("WORKSHOP_TEST_BACKEND", "sqlite")


class Stack:
    """nats-server and the four services as real processes, on one store backend."""

    def __init__(
        self,
        root: Path,
        services: tuple[str, ...] = SERVICES,
        extra_env: dict[str, str] | None = None,
    ):
        self.root = root
        self.nats = NatsServer(root / "nats")
        self.services: dict[str, ServiceProcess] = {}
        self.database_urls: dict[str, str] = {}
        self.names = services
        self.extra_env = extra_env or {}

    def start(self) -> "Stack":
        self.nats.start()
        for name in self.names:
            if backend() == "postgres":
                url = asyncio.run(create_pg_database(f"ws_{name}"))
            else:
                url = f"sqlite+aiosqlite:///{self.root / f'{name}.db'}"
            self.database_urls[name] = url
            prefix = name.upper()
            env = {
                f"{prefix}_DATABASE_URL": url,
                f"{prefix}_NATS_URL": self.nats.url,
                f"{prefix}_LOG_LEVEL": "INFO",
                f"{prefix}_RELAY_POLL_INTERVAL": "0.5",
                **{k.replace("{SERVICE}", prefix): v for k, v in self.extra_env.items()},
            }
            self.services[name] = ServiceProcess(name, env, self.root / "logs")
        if "reception" in self.services and "records" in self.services:
            # Reception asks records to keep intake photos; records' port is chosen above.
            self.services["reception"].env.setdefault(
                "RECEPTION_RECORDS_URL", self.services["records"].url
            )
        if "reception" in self.services:
            # The approval link a customer opens is reception's own address here.
            reception = self.services["reception"]
            reception.env.setdefault("RECEPTION_PUBLIC_BASE_URL", reception.url)
        try:
            for svc in self.services.values():
                svc.start(wait=False)
            for svc in self.services.values():
                svc.wait_healthy()
        except BaseException:
            # A fixture whose set-up fails is never torn down: leave no process behind.
            self.stop()
            raise
        return self

    def url(self, name: str) -> str:
        return self.services[name].url

    def stop(self) -> None:
        for svc in self.services.values():
            svc.stop()
        self.nats.stop()
        if backend() == "postgres":
            for url in self.database_urls.values():
                with contextlib.suppress(Exception):
                    asyncio.run(drop_pg_database(url))


class Group:
    """Two replicas of each service on one PostgreSQL database per service, on a NATS
    cluster: what a dealer group runs (tests/test_cluster_e2e.py, bench/group_hour.py)."""

    def __init__(self, root: Path, cluster: NatsCluster, pool: tuple[int, int] = (4, 4)):
        self.root, self.cluster, self.pool = root, cluster, pool
        self.replicas: dict[str, list[ServiceProcess]] = {}
        self.urls: dict[str, str] = {}

    def start(self) -> "Group":
        for name in SERVICES:
            self.urls[name] = asyncio.run(create_pg_database(f"ws_cl_{name}"))
        for name in SERVICES:
            prefix = name.upper()
            env = {
                f"{prefix}_DATABASE_URL": self.urls[name],
                f"{prefix}_NATS_URL": self.cluster.url,
                f"{prefix}_STREAM_REPLICAS": "3",
                # Eight processes share the server's connections.
                f"{prefix}_DATABASE_POOL_SIZE": str(self.pool[0]),
                f"{prefix}_DATABASE_MAX_OVERFLOW": str(self.pool[1]),
                f"{prefix}_RELAY_POLL_INTERVAL": "0.5",
                f"{prefix}_CONSUMER_BACKOFF": "[0.5, 1, 2, 4, 8]",
            }
            if name == "records":
                env["RECORDS_FILES_DIR"] = str(self.root / "files")
            first = ServiceProcess(f"{name}", env, self.root / "logs")
            second = ServiceProcess(
                f"{name}", {**env, f"{prefix}_AUTO_MIGRATE": "false"}, self.root / "logs2"
            )
            self.replicas[name] = [first, second]
        reception_env = {"RECEPTION_RECORDS_URL": self.replicas["records"][0].url}
        for replica in self.replicas["reception"]:
            replica.env.update(reception_env)
        try:
            # The first of each migrates; the second starts on the migrated database.
            for name in SERVICES:
                self.replicas[name][0].start(wait=False)
            for name in SERVICES:
                self.replicas[name][0].wait_healthy()
            for name in SERVICES:
                self.replicas[name][1].start(wait=False)
            for name in SERVICES:
                self.replicas[name][1].wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for pair in self.replicas.values():
            for replica in pair:
                replica.stop()
        for url in self.urls.values():
            with contextlib.suppress(Exception):
                asyncio.run(drop_pg_database(url))
