"""The workshop status board and clocking under load, against workorders as a real process.

Seeds workorders' database with SQL: `--closed` delivered repair orders (default
1,000,000, generated inside the database by one INSERT … SELECT) and `--open` open orders
(default 200) in branch BR01, each with two jobs dispatched to `--technicians` (32)
technicians. Then it measures, one after another:

1. first render: `GET /board` (the HTML page with every card) and `GET /board/cards`,
   one request at a time (`--n` each); target p99 ≤ 50 ms;
2. fan-out: `--screens` (50) SSE streams on `/board/events`; `--updates` (100) clock-ons
   and clock-offs through the API, one at a time; per update and screen, the time from the
   API's answer (the change is committed) to the card event on that screen (and from the
   request's start); target p99 ≤ 100 ms;
3. clocking: every technician clocks on and off their own job `--rounds` times, all at
   once (32 concurrent keep-alive clients), with the screens still connected; target
   p99 ≤ 100 ms. It starts once the branch's first promise projection after the seed
   (set off by the fan-out's changes) has been written and announced, after `--warmup`
   unmeasured rounds (1): the fan-out ran one request at a time, so the first round at
   once opens the service's database connections (on PostgreSQL 30 ms and more each, 32 at
   once), which a running workshop has long had open.

`--replicas N` (PostgreSQL only: SQLite has one writer) starts N workorders processes on
the same database, as `deploy/` scales them: the screens and the technicians are spread
over them round-robin; first render and the fan-out's updates go to the first.

    .venv/bin/python -m bench.workorders_board [--closed 1000000] [--open 200] [--screens 50]
        [--updates 100] [--rounds 20] [--warmup 1] [--n 200] [--replicas 1]
"""

import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, text

from bench.common import (
    cpu_seconds,
    env_option,
    percentile,
    python_speed,
    running_stack,
    table,
    wait_ready,
)
from bench.loadgen import Connection, build_request
from services.workorders.models import Job, RepairOrder
from shared.db import Database
from shared.events import utcnow
from tests.harness import Stack, backend, token
from tools.processes import ServiceProcess

BRANCH = "BR01"

_SQLITE_CLOSED = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
INSERT INTO repair_order (id, number, branch, intake_id, customer_id, vehicle_id, vin, plate,
    customer_name, advisor, odometer_km, status, opened_at, currency, promises,
    declined_lines, other_lines, invoice_prints, version, delivered_at)
SELECT lower(hex(randomblob(16))), 'RO-2025-' || printf('%07d', i), :branch,
    lower(hex(randomblob(16))), lower(hex(randomblob(16))), lower(hex(randomblob(16))),
    'LSVAU2180N2183294', '沪C' || printf('%05d', i % 100000), '历史客户', 'adv-1', 10000,
    'delivered', datetime('2025-01-01', '+' || (i % 330) || ' days'), 'CNY', '[]', '[]',
    '[]', 0, 1, datetime('2025-01-01', '+' || (i % 330) || ' days', '+8 hours')
FROM n
"""

_PG_CLOSED = """
INSERT INTO repair_order (id, number, branch, intake_id, customer_id, vehicle_id, vin, plate,
    customer_name, advisor, odometer_km, status, opened_at, currency, promises,
    declined_lines, other_lines, invoice_prints, version, delivered_at)
SELECT gen_random_uuid(), 'RO-2025-' || lpad(i::text, 7, '0'), :branch,
    gen_random_uuid(), gen_random_uuid(), gen_random_uuid(),
    'LSVAU2180N2183294', '沪C' || lpad((i % 100000)::text, 5, '0'), '历史客户', 'adv-1', 10000,
    'delivered', timestamptz '2025-01-01' + (i % 330) * interval '1 day', 'CNY',
    '[]'::json, '[]'::json, '[]'::json, 0, 1,
    timestamptz '2025-01-01' + (i % 330) * interval '1 day' + interval '8 hours'
FROM generate_series(1, :count) AS i
"""


async def seed(url: str, closed: int, open_orders: int, technicians: int) -> list[dict[str, Any]]:
    """Returns one clockable job per technician: {job_id, order_id, technician}."""
    db = Database(url)
    now = utcnow()
    started = time.perf_counter()
    async with db.engine.begin() as conn:
        statement = _PG_CLOSED if backend() == "postgres" else _SQLITE_CLOSED
        await conn.execute(text(statement), {"count": closed, "branch": BRANCH})
    print(f"seeded {closed:,} closed orders in {time.perf_counter() - started:.1f} s")
    orders: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    mine: list[dict[str, Any]] = []
    for i in range(open_orders):
        order_id = uuid.uuid4()
        promised = now + timedelta(hours=2 + i % 6)
        orders.append(
            {
                "id": order_id,
                "number": f"RO-2026-{i + 1:06d}",
                "branch": BRANCH,
                "intake_id": uuid.uuid4(),
                "customer_id": uuid.uuid4(),
                "vehicle_id": uuid.uuid4(),
                "vin": "LSVAU2180N2183294",
                "plate": f"沪A{i:05d}",
                "customer_name": f"客户{i}",
                "advisor": f"advisor-{i % 6}",
                "odometer_km": 20000 + i,
                "status": "open",
                "opened_at": now - timedelta(hours=1),
                "currency": "CNY",
                "promised_at": promised,
                "promises": [],
                "declined_lines": [],
                "other_lines": [],
                "invoice_prints": 0,
                "version": 1,
            }
        )
        for k in range(2):
            job_id = uuid.uuid4()
            technician = f"tech-{(i * 2 + k) % technicians:02d}"
            line_id = uuid.uuid4()
            jobs.append(
                {
                    "id": job_id,
                    "repair_order_id": order_id,
                    "branch": BRANCH,
                    "line_id": line_id,
                    "op_code": f"OP-{k}",
                    "op_group": "gen",
                    "description": "保养 / service",
                    "kind": "repair",
                    "pay_type": "customer",
                    "line": {
                        "line_id": str(line_id),
                        "kind": "labour",
                        "flat_rate_hours": "1.0",
                    },
                    "parts": [],
                    "status": "assigned",
                    "technician_id": technician,
                    "bay": f"B{i % 10}",
                    "rework_count": 0,
                    "road_test": False,
                    "created_at": now,
                    "version": 1,
                }
            )
            if len(mine) < technicians and technician not in {m["technician"] for m in mine}:
                mine.append({"job_id": job_id, "order_id": order_id, "technician": technician})
    async with db.engine.begin() as conn:
        await conn.execute(insert(RepairOrder.__table__), orders)  # type: ignore[attr-defined]
        await conn.execute(insert(Job.__table__), jobs)  # type: ignore[attr-defined]
    await db.dispose()
    return mine


def stats(values_ms: list[float]) -> list[Any]:
    return [
        len(values_ms),
        percentile(values_ms, 50),
        percentile(values_ms, 90),
        percentile(values_ms, 99),
        max(values_ms) if values_ms else float("nan"),
    ]


async def first_render(host: str, port: int, n: int) -> list[list[Any]]:
    screen = token("screen", BRANCH)
    rows = []
    for name, path in [
        ("GET /board (HTML page)", f"/board?access_token={screen}"),
        ("GET /board/cards (JSON)", f"/board/cards?access_token={screen}"),
    ]:
        conn = Connection(host, port)
        raw = build_request("GET", path, host, port)
        size = 0
        for _ in range(20):
            status, body = await conn.request(raw)
            assert status == 200, body[:300]
        times = []
        for _ in range(n):
            started = time.perf_counter()
            status, body = await conn.request(raw)
            times.append((time.perf_counter() - started) * 1000)
            assert status == 200
            size = len(body)
        await conn.close()
        rows.append([name, *stats(times), f"{size / 1024:.0f} KiB"])
    return rows


class Screen:
    """One SSE client on raw asyncio streams: notes when a card of the awaited order arrives."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.buffer = ""
        self.marker: str | None = None
        self.arrived = asyncio.Event()
        self.arrived_at = 0.0
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        path = f"/board/events?access_token={token('screen', BRANCH)}"
        writer.write(build_request("GET", path, self.host, self.port))
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                now = time.perf_counter()
                self.buffer += data.decode("utf-8", "replace")
                if "event: snapshot" in self.buffer:
                    self.ready.set()
                if self.marker is not None and self.marker in self.buffer:
                    self.arrived_at, self.marker = now, None
                    self.arrived.set()
                if len(self.buffer) > 200_000:
                    self.buffer = self.buffer[-1000:]
        finally:
            writer.close()

    def expect(self, order_id: uuid.UUID) -> None:
        self.buffer = ""
        self.arrived.clear()
        self.marker = f'"id":"{order_id}","card":'


async def fan_out(
    host: str, port: int, screens: list[Screen], mine: list[dict[str, Any]], updates: int
) -> tuple[list[float], list[float], int]:
    conns = {m["technician"]: Connection(host, port) for m in mine}
    from_answer: list[float] = []
    from_request: list[float] = []
    missed = 0
    on = {m["technician"]: False for m in mine}
    for k in range(updates):
        job = mine[k % len(mine)]
        tech = job["technician"]
        headers = {"Authorization": f"Bearer {token('technician', BRANCH, sub=tech)}"}
        if on[tech]:
            raw = build_request(
                "POST",
                f"/jobs/{job['job_id']}/clock-off",
                host,
                port,
                headers,
                json.dumps({"reason": "break"}).encode(),
            )
        else:
            raw = build_request("POST", f"/jobs/{job['job_id']}/clock-on", host, port, headers)
        for screen in screens:
            screen.expect(job["order_id"])
        started = time.perf_counter()
        status, body = await conns[tech].request(raw)
        answered = time.perf_counter()
        assert status in (200, 201), body[:300]
        on[tech] = not on[tech]
        try:
            await asyncio.wait_for(asyncio.gather(*(s.arrived.wait() for s in screens)), 5)
        except TimeoutError:
            missed += sum(1 for s in screens if not s.arrived.is_set())
        for screen in screens:
            if screen.arrived.is_set():
                from_answer.append(max(0.0, screen.arrived_at - answered) * 1000)
                from_request.append((screen.arrived_at - started) * 1000)
    # Leave every technician clocked off for the clocking run.
    for job in mine:
        tech = job["technician"]
        if on[tech]:
            headers = {"Authorization": f"Bearer {token('technician', BRANCH, sub=tech)}"}
            raw = build_request(
                "POST",
                f"/jobs/{job['job_id']}/clock-off",
                host,
                port,
                headers,
                b'{"reason":"break"}',
            )
            await conns[tech].request(raw)
    for conn in conns.values():
        await conn.close()
    return from_answer, from_request, missed


async def clocking(
    host: str, ports: list[int], mine: list[dict[str, Any]], rounds: int
) -> tuple[list[float], list[float], int]:
    ons: list[float] = []
    offs: list[float] = []
    errors = 0

    async def technician(job: dict[str, Any], port: int) -> None:
        nonlocal errors
        conn = Connection(host, port)
        headers = {"Authorization": f"Bearer {token('technician', BRANCH, sub=job['technician'])}"}
        on = build_request("POST", f"/jobs/{job['job_id']}/clock-on", host, port, headers)
        off = build_request(
            "POST", f"/jobs/{job['job_id']}/clock-off", host, port, headers, b'{"reason":"break"}'
        )
        for _ in range(rounds):
            for raw, into, expected in ((on, ons, 201), (off, offs, 200)):
                started = time.perf_counter()
                status, body = await conn.request(raw)
                into.append((time.perf_counter() - started) * 1000)
                if status != expected:
                    errors += 1
                    if errors <= 3:
                        print(f"unexpected {status}: {body[:300]!r}")
        await conn.close()

    await asyncio.gather(*(technician(job, ports[n % len(ports)]) for n, job in enumerate(mine)))
    return ons, offs, errors


async def projections_settled(url: str, open_orders: int, timeout: float = 60) -> float:
    """The branch's first projection after the seed (every order's row written, the late
    ones flagged and announced) is a one-off burst that a running workshop went through
    long ago: wait it out, and for the outbox to drain, so clocking measures the steady
    state. Returns the seconds waited."""
    db = Database(url)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            async with db.engine.connect() as conn:
                checks = (await conn.execute(text("SELECT count(*) FROM promise_check"))).scalar()
                unsent = (
                    await conn.execute(
                        text("SELECT count(*) FROM outbox_event WHERE sent_at IS NULL")
                    )
                ).scalar()
            if (checks or 0) >= open_orders and not unsent:
                break
            await asyncio.sleep(0.2)
        return time.perf_counter() - started
    finally:
        await db.dispose()


def main(args: argparse.Namespace) -> None:
    if args.replicas > 1 and backend() != "postgres":
        raise SystemExit("--replicas needs PostgreSQL (WORKSHOP_TEST_BACKEND=postgres)")
    env = {
        "{SERVICE}_PROMISE_CHECK_INTERVAL": "600",
        **(env_option(args.env) or {}),
    }
    # The stack starts outside the event loop (it makes PostgreSQL databases with its own).
    with running_stack(services=("workorders",), extra_env=env) as stack:
        wait_ready(stack)
        first = stack.services["workorders"]
        more = [
            ServiceProcess("workorders", dict(first.env), stack.root / "logs" / f"replica{n}")
            for n in range(1, args.replicas)
        ]
        try:
            for replica in more:
                replica.start()
            asyncio.run(measure(stack, [first, *more], args))
        finally:
            for replica in more:
                replica.stop()


async def measure(stack: Stack, replicas: list[ServiceProcess], args: argparse.Namespace) -> None:
    mine = await seed(stack.database_urls["workorders"], args.closed, args.open, args.technicians)
    host, port = "127.0.0.1", replicas[0].port
    ports = [replica.port for replica in replicas]
    pids = [replica.proc.pid for replica in replicas if replica.proc]

    def cpu_seconds_all() -> float:
        return sum(cpu_seconds(pid) for pid in pids)

    print(f"\n## First render: {args.open} open orders, {args.closed:,} closed ({backend()})\n")
    render_rows = await first_render(host, port, args.n)
    print(table(["request", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "size"], render_rows))

    screens = [Screen(host, ports[n % len(ports)]) for n in range(args.screens)]
    for screen in screens:
        screen.task = asyncio.create_task(screen.run())
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in screens)), 30)
    cpu_before = cpu_seconds_all()
    started = time.perf_counter()
    from_answer, from_request, missed = await fan_out(host, port, screens, mine, args.updates)
    spent = time.perf_counter() - started
    cpu = cpu_seconds_all() - cpu_before
    print(f"\n## An update reaching {args.screens} screens ({args.updates} updates)\n")
    print(
        table(
            ["measured from", "deliveries", "p50 ms", "p90 ms", "p99 ms", "max ms"],
            [
                ["the API's answer (committed)", *stats(from_answer)],
                ["the request's start", *stats(from_request)],
            ],
        )
    )
    print(f"\nmissed deliveries: {missed}; workorders CPU {cpu / spent * 100:.0f}% during fan-out")

    waited = await projections_settled(stack.database_urls["workorders"], args.open)
    print(f"\nfirst promise projection of the branch settled after {waited:.1f} s more")
    warm_ons, warm_offs, warm_errors = await clocking(host, ports, mine, args.warmup)
    if args.warmup:
        warm_p99 = percentile(warm_ons + warm_offs, 99)
        print(
            f"warm-up ({args.warmup} unmeasured round): p99 {warm_p99:.1f} ms, "
            f"{warm_errors} unexpected answers"
        )
    cpu_before = cpu_seconds_all()
    started = time.perf_counter()
    ons, offs, errors = await clocking(host, ports, mine, args.rounds)
    spent = time.perf_counter() - started
    cpu = cpu_seconds_all() - cpu_before
    total = len(ons) + len(offs)
    print(
        f"\n## Clocking: {len(mine)} technicians at once, {args.rounds} rounds, "
        f"{args.screens} screens connected\n"
    )
    print(
        table(
            ["request", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"],
            [["clock-on", *stats(ons)], ["clock-off", *stats(offs)]],
        )
    )
    print(
        f"\n{total / spent:.0f} requests/s, {errors} unexpected answers; "
        f"workorders CPU {cpu / spent * 100:.0f}%, {cpu / total * 1000:.2f} ms a request; "
        f"ten million Python additions took {python_speed():.2f} s"
    )
    for screen in screens:
        if screen.task:
            screen.task.cancel()
    await asyncio.gather(*(s.task for s in screens if s.task), return_exceptions=True)
    print(f"\nload average: {os.getloadavg()}")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--closed", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=200)
    parser.add_argument("--technicians", type=int, default=32)
    parser.add_argument("--screens", type=int, default=50)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=1, help="PostgreSQL only")
    parser.add_argument("--env", action="append", help="NAME=VALUE for every service")
    return parser.parse_args()


if __name__ == "__main__":
    main(parse())
