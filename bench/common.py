"""What the benchmarks share: a stack in a temporary directory, readiness, set-up data,
percentiles, markdown tables and process CPU/memory from /proc."""

import asyncio
import contextlib
import math
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from services.reception.vin import check_digit
from tests.harness import SERVICES, Stack, auth, backend

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running_stack(
    services: tuple[str, ...] | None = None,
    keep_logs: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """nats-server and the services in a temporary directory, stopped and removed after.

    `extra_env` goes to every service (`{SERVICE}` in a name becomes its prefix), e.g.
    {"{SERVICE}_CONSUMER_BATCH": "16"} for an experiment."""
    with tempfile.TemporaryDirectory(prefix="workshop-bench-") as tmp:
        stack = Stack(Path(tmp), services=services or SERVICES, extra_env=extra_env)
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
            if keep_logs:
                target = Path(tempfile.mkdtemp(prefix="workshop-bench-logs-"))
                for log in (Path(tmp) / "logs").glob("*.log"):
                    (target / log.name).write_bytes(log.read_bytes())
                print(f"\nservice logs kept in {target}")


def env_option(values: list[str] | None) -> dict[str, str] | None:
    """`--env NAME=VALUE` options as a dict for `running_stack(extra_env=...)`."""
    if not values:
        return None
    pairs = [v.split("=", 1) for v in values]
    if any(len(p) != 2 or not p[0] for p in pairs):
        raise SystemExit("--env takes NAME=VALUE, e.g. --env {SERVICE}_CONSUMER_BATCH=16")
    return {name: value for name, value in pairs}


def wait_ready(stack: Stack, timeout: float = 30) -> None:
    """Poll /readyz of every service until each answers 200 (database and NATS up)."""
    deadline = time.monotonic() + timeout
    pending = set(stack.services)
    while pending:
        for name in sorted(pending):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{stack.url(name)}/readyz", timeout=1).status_code == 200:
                    pending.discard(name)
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"not ready after {timeout}s: {sorted(pending)}")
        if pending:
            time.sleep(0.05)


def valid_vin(serial: int, prefix: str = "LSVAU2180N") -> str:
    raw = f"{prefix}{serial:07d}"
    return raw[:8] + check_digit(raw) + raw[9:]


async def register_vehicles(client: httpx.AsyncClient, reception: str, count: int) -> list[str]:
    """`count` customers with one vehicle each; returns the vehicle ids."""
    headers = auth("advisor")
    ids = []
    for i in range(count):
        r = await client.post(
            f"{reception}/customers",
            headers=headers,
            json={"name": f"压测客户{i}", "mobile": f"139{i:08d}"},
        )
        r.raise_for_status()
        r = await client.post(
            f"{reception}/vehicles",
            headers=headers,
            json={
                "customer_id": r.json()["id"],
                "vin": valid_vin(1_000_000 + i),
                "plate": f"沪B{i:05d}",
            },
        )
        r.raise_for_status()
        ids.append(r.json()["id"])
    return ids


async def all_repair_orders(client: httpx.AsyncClient, workorders: str) -> list[dict[str, Any]]:
    """Every repair order of branch BR01, through the API's keyset pages."""
    found: list[dict[str, Any]] = []
    cursor = None
    headers = auth("foreman")
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(f"{workorders}/repair-orders", params=params, headers=headers)
        r.raise_for_status()
        body = r.json()
        found += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return found


async def count_repair_orders(stack: Stack) -> int:
    """How many repair orders workorders has committed, read straight from its database
    (cheap enough to poll without loading the service it measures)."""
    url = stack.database_urls["workorders"]
    if backend() == "sqlite":
        import sqlite3

        path = url.split(":///", 1)[1]

        def count() -> int:
            with contextlib.closing(
                sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            ) as conn:
                return int(conn.execute("SELECT count(*) FROM repair_order").fetchone()[0])

        return await asyncio.to_thread(count)
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM repair_order"))
    finally:
        await conn.close()


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; floats get two decimals."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "n/a" if math.isnan(value) else f"{value:.2f}"
        return str(value)

    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def python_speed() -> float:
    """Seconds this machine takes for ten million Python additions: printed beside a
    result, it tells a slow phase of the machine from a slow build (this 2-core machine's
    speed has moved by half within an hour)."""
    started = time.perf_counter()
    total = 0
    for number in range(10_000_000):
        total += number
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_kb(pid: int, key: str) -> int:
    """A `kB` line of /proc/<pid>/status, e.g. VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def pid_of(stack: Stack, name: str) -> int:
    proc = stack.services[name].proc
    assert proc is not None, f"{name} is not running"
    return proc.pid
