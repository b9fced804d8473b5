"""Event propagation latency: reception's committed intake to workorders' repair order.

    .venv/bin/python -m bench.propagation [--n 1000]

Intakes are opened one at a time (latency, not throughput); the next is sent only when
the previous one's repair-order event has been seen or has timed out.
"""

import argparse
import asyncio
import contextlib
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import nats
import orjson
import uvloop

from bench.common import (
    all_repair_orders,
    env_option,
    percentile,
    register_vehicles,
    running_stack,
    table,
    wait_ready,
)
from bench.loadgen import Connection, build_request
from tests.harness import Stack, auth

SUBJECT = "workorders.repair_order.opened.v1"
TARGET_P50_MS, TARGET_P99_MS = 5.0, 20.0


class Measured:
    def __init__(self) -> None:
        self.post_ms: list[float] = []  # POST /intakes round trip
        self.e2e_ms: dict[str, float] = {}  # intake id -> 201 received .. event received
        self.intake_opened: dict[str, datetime] = {}
        self.missing: list[str] = []  # no event within the timeout


async def measure(stack: Stack, n: int, warmup: int, timeout: float) -> tuple[Measured, dict]:
    loop = asyncio.get_running_loop()
    seen: dict[str, float] = {}
    waiting: dict[str, asyncio.Future[float]] = {}

    async def on_event(msg: Any) -> None:
        at = time.perf_counter()
        intake_id = orjson.loads(msg.data)["data"]["intake_id"]
        seen.setdefault(intake_id, at)
        future = waiting.get(intake_id)
        if future is not None and not future.done():
            future.set_result(at)

    nc = await nats.connect(stack.nats.url)
    await nc.subscribe(SUBJECT, cb=on_event)
    await nc.flush()

    reception = urlsplit(stack.url("reception"))
    assert reception.hostname and reception.port
    headers = {"Authorization": auth("advisor")["Authorization"]}
    async with httpx.AsyncClient(timeout=30) as client:
        vehicles = await register_vehicles(client, stack.url("reception"), 10)
    connection = Connection(reception.hostname, reception.port)
    await connection.open()

    async def one(i: int, result: Measured | None) -> None:
        body = orjson.dumps(
            {"vehicle_id": vehicles[i % len(vehicles)], "odometer_km": 1000 + i, "concerns": []}
        )
        raw = build_request(
            "POST", "/intakes", reception.hostname or "", reception.port or 0, headers, body
        )
        sent = time.perf_counter()
        status, payload = await connection.request(raw)
        received = time.perf_counter()
        if status != 201:
            raise RuntimeError(f"POST /intakes answered {status}: {payload[:300]!r}")
        intake = orjson.loads(payload)
        intake_id = intake["id"]
        if intake_id in seen:  # the event overtook our reading of the response
            at = seen[intake_id]
        else:
            future: asyncio.Future[float] = loop.create_future()
            waiting[intake_id] = future
            try:
                at = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                if result is not None:
                    result.missing.append(intake_id)
                return
            finally:
                waiting.pop(intake_id, None)
        if result is not None:
            result.post_ms.append((received - sent) * 1000)
            result.e2e_ms[intake_id] = (at - received) * 1000
            result.intake_opened[intake_id] = datetime.fromisoformat(intake["opened_at"])

    try:
        for i in range(warmup):
            await one(i, None)
        result = Measured()
        started = time.perf_counter()
        for i in range(n):
            await one(warmup + i, result)
        elapsed = time.perf_counter() - started
        async with httpx.AsyncClient(timeout=30) as client:
            orders = await all_repair_orders(client, stack.url("workorders"))
    finally:
        await connection.close()
        await nc.close()
    opened = {o["intake_id"]: datetime.fromisoformat(o["opened_at"]) for o in orders}
    return result, {"orders": opened, "elapsed": elapsed}


def report(result: Measured, extra: dict, n: int) -> str:
    orders: dict[str, datetime] = extra["orders"]
    db_ms = [
        (orders[i] - t).total_seconds() * 1000
        for i, t in result.intake_opened.items()
        if i in orders
    ]
    e2e = list(result.e2e_ms.values())

    def row(name: str, values: list[float], target: str) -> list[Any]:
        return [
            name,
            len(values),
            percentile(values, 50),
            percentile(values, 90),
            percentile(values, 99),
            max(values) if values else float("nan"),
            target,
        ]

    rows = [
        row(
            "(a) repair_order.opened_at − intake.opened_at (DB clocks)",
            db_ms,
            f"p50 ≤ {TARGET_P50_MS:g}, p99 ≤ {TARGET_P99_MS:g}",
        ),
        row(
            "(b) 201 received → NATS core sub gets repair_order.opened",
            e2e,
            f"p50 ≤ {TARGET_P50_MS:g}, p99 ≤ {TARGET_P99_MS:g}",
        ),
        row("POST /intakes round trip (context)", result.post_ms, "—"),
    ]
    out = [
        f"### Event propagation, reception → workorders ({n} intakes, one at a time)",
        "",
        table(["measure", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "target"], rows),
        "",
        f"Events not seen within the timeout: {len(result.missing)}; "
        f"intakes without a repair order in the API: "
        f"{sum(1 for i in result.intake_opened if i not in orders)}; "
        f"wall time {extra['elapsed']:.1f} s.",
    ]
    verdict = []
    for name, values in (("(a)", db_ms), ("(b)", e2e)):
        if values:
            ok = percentile(values, 50) <= TARGET_P50_MS and percentile(values, 99) <= TARGET_P99_MS
            verdict.append(f"{name} {'meets' if ok else 'MISSES'} the target")
    out.append("; ".join(verdict) + ".")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="intakes measured (default 1000)")
    parser.add_argument("--warmup", type=int, default=20, help="intakes before measuring")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for one event")
    parser.add_argument("--keep-logs", action="store_true", help="copy service logs out")
    parser.add_argument(
        "--env",
        action="append",
        metavar="NAME=VALUE",
        help="extra environment for every service, {SERVICE} becomes its prefix "
        "(repeatable), e.g. --env {SERVICE}_CONSUMER_BATCH=16",
    )
    args = parser.parse_args()
    if args.n < 1 or args.n > 100_000:
        parser.error("--n must be between 1 and 100000")
    with running_stack(keep_logs=args.keep_logs, extra_env=env_option(args.env)) as stack:
        wait_ready(stack)
        result, extra = uvloop.run(measure(stack, args.n, args.warmup, args.timeout))
    print(report(result, extra, args.n))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
