"""Real processes for tests and benchmarks: nats-server from the wheel, uvicorn services,
throwaway PostgreSQL databases, and polling with a deadline."""

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from shared.auth import issue_dev_token
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
]

T = TypeVar("T")


def token(role: str | list[str] = "advisor", branch: str = "BR01", sub: str | None = None) -> str:
    return issue_dev_token(JWT_SECRET, role=role, branch=branch, sub=sub)


def auth(role: str | list[str] = "advisor", branch: str = "BR01") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, branch)}"}


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


# --- databases ---------------------------------------------------------------------


def postgres_available() -> bool:
    try:
        import asyncpg

        async def probe() -> None:
            conn = await asyncpg.connect(PG_ADMIN_URL, timeout=3)
            await conn.close()

        asyncio.run(probe())
        return True
    except Exception:
        return False


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
