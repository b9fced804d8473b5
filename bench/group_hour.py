"""A dealer group's busiest hour as a load model, replayed against two replicas of every
service on PostgreSQL and a three-node JetStream cluster (streams with three replicas).

    .venv/bin/python -m bench.group_hour [--branches 20] [--at-once 4] [--in-flight 4]

One branch-hour is the busiest hour of a branch that takes about 60 visits a day: the
demo's branch (tools/demo.py) with its eleven cars registered and taken through every
stage of a visit (a booking, the intake, the estimate, consent with a line declined,
dispatch, clocking, a part on order, QC, washing, settlement, the invoice print,
delivery) and eleven bookings, plus what the screens and the follow-up desk read meanwhile
(`BOARD_READS` board reads and `FOLLOWUP_READS` follow-up work lists). `--branches`
branches (BR001, BR002, ...) are replayed `--at-once` at a time, each on one replica of
each service (alternating), as fast as the services answer: the rate this machine
sustains. Printed: p99 per operation against 150 ms; the oldest unsent outbox event at
its worst (every replica's /metrics read each 0.5 s) against 1 s; branch-hours per hour;
and the CPU seconds the services and the NATS nodes spent per branch-hour, so a reader can
size a group's installation (200 branches' busiest hour = 200 branch-hours in one hour).
"""

import argparse
import asyncio
import contextlib
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench.common import cpu_seconds, percentile, python_speed, table
from shared.auth import issue_dev_token
from tests.harness import JWT_SECRET, Group, auth
from tools import demo
from tools.processes import SERVICES, NatsCluster

TARGET_P99_MS, TARGET_OUTBOX_S = 150.0, 1.0
BOARD_READS, FOLLOWUP_READS = 2, 10
ZONE = "Asia/Shanghai"
_IDS = re.compile(
    r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|/\d{4}-\d{2}-\d{2}|/BR\d+|(?<=/staff)/[^/]+"
)


def operation(request: httpx.Request) -> str:
    path = _IDS.sub("/{id}", request.url.path)
    return f"{request.method} {path}"


class Timings(httpx.AsyncBaseTransport):
    """Sends at most `in_flight` requests at once (the group's tablets and phones together:
    a real branch-hour spreads its requests over an hour, so few are ever in flight at
    once) and times each from when it is sent to its answer's headers."""

    def __init__(self, in_flight: int) -> None:
        self.by_operation: dict[str, list[float]] = defaultdict(list)
        self.errors = 0
        self.inner = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100)
        )
        self.gate = asyncio.Semaphore(in_flight)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self.gate:
            started = time.perf_counter()
            response = await self.inner.handle_async_request(request)
            await response.aread()
            took = time.perf_counter() - started
        self.by_operation[operation(request)].append(took * 1000)
        if response.status_code >= 500:
            self.errors += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def watch_outbox(
    group: Group, stop: asyncio.Event, worst: list[float], where: list[str]
) -> None:
    urls = [replica.url for pair in group.replicas.values() for replica in pair]
    names = {
        r.url: f"{n}-{i + 1}" for n, pair in group.replicas.items() for i, r in enumerate(pair)
    }
    async with httpx.AsyncClient(timeout=5) as client:
        while not stop.is_set():
            for url in urls:
                try:
                    text = (await client.get(f"{url}/metrics", headers=auth("manager"))).text
                except httpx.HTTPError:
                    continue
                for line in text.splitlines():
                    if line.startswith("outbox_oldest_unsent_age_seconds "):
                        age = float(line.split()[1])
                        if age > worst[0]:
                            worst[0], where[0] = age, names[url]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)


async def branch_hour(client: httpx.AsyncClient, urls: dict[str, str], code: str) -> None:
    """The branch's busiest hour: the demo's visits and bookings, the board and the
    follow-up desk reading meanwhile."""

    async def readers() -> None:
        foreman = issue_dev_token(JWT_SECRET, role="foreman", branch=code, sub="f")
        agent = issue_dev_token(JWT_SECRET, role="followup_agent", branch=code, sub="a")
        for i in range(max(BOARD_READS, FOLLOWUP_READS)):
            if i < BOARD_READS:
                r = await client.get(
                    f"{urls['workorders']}/board", headers={"Authorization": f"Bearer {foreman}"}
                )
                r.raise_for_status()
            if i < FOLLOWUP_READS:
                r = await client.get(
                    f"{urls['followup']}/visits", headers={"Authorization": f"Bearer {agent}"}
                )
                r.raise_for_status()

    summary, _ = await asyncio.gather(
        demo.load_async(urls, JWT_SECRET, ZONE, code=code, client=client), readers()
    )
    assert summary is not None, f"{code} had customers already"


async def replay(group: Group, branches: int, at_once: int, in_flight: int) -> dict[str, Any]:
    timings = Timings(in_flight)
    stop, worst, where = asyncio.Event(), [0.0], [""]
    watcher = asyncio.create_task(watch_outbox(group, stop, worst, where))
    gate = asyncio.Semaphore(at_once)
    async with httpx.AsyncClient(timeout=60, transport=timings) as client:

        async def one(n: int) -> None:
            urls = {name: group.replicas[name][n % 2].url for name in SERVICES}
            async with gate:
                await branch_hour(client, urls, f"BR{n + 1:03d}")

        started = time.monotonic()
        await asyncio.gather(*(one(n) for n in range(branches)))
        elapsed = time.monotonic() - started
    # Two more scrapes of the outbox after the load.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), 1.5)
    stop.set()
    await watcher
    return {"timings": timings, "elapsed": elapsed, "outbox_worst": worst[0], "where": where[0]}


def process_cpu(group: Group, cluster: NatsCluster) -> float:
    pids = [r.proc.pid for pair in group.replicas.values() for r in pair if r.proc]
    pids += [node.proc.pid for node in cluster.nodes if node.proc]
    return sum(cpu_seconds(pid) for pid in pids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--branches", type=int, default=20)
    parser.add_argument("--at-once", type=int, default=4, help="branches replayed at once")
    parser.add_argument("--in-flight", type=int, default=4, help="requests in flight at most")
    args = parser.parse_args()
    speed = python_speed()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cluster = NatsCluster(root / "nats").start()
        group: Group | None = None
        try:
            group = Group(root, cluster, pool=(10, 5)).start()
            cpu_before = process_cpu(group, cluster)
            result = asyncio.run(replay(group, args.branches, args.at_once, args.in_flight))
            cpu = process_cpu(group, cluster) - cpu_before
        finally:
            if group is not None:
                group.stop()
            cluster.stop()
    timings: Timings = result["timings"]
    everything = [t for values in timings.by_operation.values() for t in values]
    rows = []
    for name, values in sorted(timings.by_operation.items(), key=lambda kv: -len(kv[1])):
        rows.append((name, len(values), percentile(values, 50), percentile(values, 99)))
    print(table(("operation", "requests", "p50 ms", "p99 ms"), rows))
    hours = result["elapsed"] / 3600
    slowest = max(rows, key=lambda row: row[3])
    print()
    print(
        table(
            ("measure", "value", "target"),
            [
                ("branches (branch-hours)", args.branches, ""),
                ("branches at once / requests in flight", f"{args.at_once} / {args.in_flight}", ""),
                ("requests", len(everything), ""),
                ("5xx answers", timings.errors, "0"),
                ("p99 of all requests, ms", percentile(everything, 99), f"≤ {TARGET_P99_MS:.0f}"),
                (f"worst operation p99, ms ({slowest[0]})", slowest[3], f"≤ {TARGET_P99_MS:.0f}"),
                (
                    f"outbox oldest unsent, worst, s ({result['where']})",
                    result["outbox_worst"],
                    f"≤ {TARGET_OUTBOX_S}",
                ),
                ("wall time, s", result["elapsed"], ""),
                ("branch-hours per hour sustained", args.branches / hours, "200"),
                ("CPU s per branch-hour (services + NATS)", cpu / args.branches, ""),
                ("requests per second", len(everything) / result["elapsed"], ""),
                ("python speed (s per 10M additions)", speed, ""),
            ],
        )
    )


if __name__ == "__main__":
    main()
