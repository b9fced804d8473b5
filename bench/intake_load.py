"""POST /intakes under concurrent load on SQLite, then the event backlog drain.

    .venv/bin/python -m bench.intake_load [--requests 10000] [--concurrency 32]

Closed loop: each of `--concurrency` keep-alive connections sends its next request as
soon as the previous answer is in. After the load, the time until workorders has a
repair order for every intake created, and an exact check of those repair orders.
"""

import argparse
import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import uvloop

from bench.common import (
    all_repair_orders,
    count_repair_orders,
    cpu_seconds,
    env_option,
    percentile,
    pid_of,
    register_vehicles,
    running_stack,
    table,
    wait_ready,
)
from bench.loadgen import LoadResult, build_request, run_load
from tests.harness import Stack, auth, backend

TARGET_P99_MS, TARGET_RPS = 100.0, 800.0


async def wait_count(stack: Stack, expected: int, timeout: float) -> tuple[float, int]:
    """Poll workorders' repair-order count until it reaches `expected`; (seconds, count)."""
    started = time.perf_counter()
    count = await count_repair_orders(stack)
    while count < expected and time.perf_counter() - started < timeout:
        await asyncio.sleep(0.05)
        count = await count_repair_orders(stack)
    return time.perf_counter() - started, count


def process_cpu(stack: Stack) -> dict[str, float]:
    cpu = {name: cpu_seconds(pid_of(stack, name)) for name in stack.services}
    if stack.nats.proc is not None:
        cpu["nats-server"] = cpu_seconds(stack.nats.proc.pid)
    return cpu


async def bench(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    reception = urlsplit(stack.url("reception"))
    host, port = reception.hostname or "127.0.0.1", reception.port or 0
    headers = {"Authorization": auth("advisor")["Authorization"]}
    async with httpx.AsyncClient(timeout=30) as client:
        vehicles = await register_vehicles(client, stack.url("reception"), args.concurrency)
    requests = [
        build_request(
            "POST",
            "/intakes",
            host,
            port,
            headers,
            orjson.dumps({"vehicle_id": v, "odometer_km": 42000, "concerns": ["刹车异响"]}),
        )
        for v in vehicles
    ]

    created = 0
    if args.warmup:
        warm = await run_load(host, port, requests, args.warmup, keep_bodies=False)
        created += warm.statuses[201]
        await wait_count(stack, created, args.drain_timeout)

    cpu_before = process_cpu(stack)
    load: LoadResult = await run_load(host, port, requests, args.requests)
    ended = time.perf_counter()
    cpu_load = {k: v - cpu_before[k] for k, v in process_cpu(stack).items()}
    backlog_at_end = created + load.statuses[201] - await count_repair_orders(stack)
    created += load.statuses[201]
    _, count = await wait_count(stack, created, args.drain_timeout)
    drain = time.perf_counter() - ended if count >= created else float("nan")
    cpu_drain = {k: v - cpu_before[k] - cpu_load[k] for k, v in process_cpu(stack).items()}

    async with httpx.AsyncClient(timeout=60) as client:
        orders = await all_repair_orders(client, stack.url("workorders"))
    intake_ids = {orjson.loads(body)["id"] for body in load.created}
    order_intakes = [o["intake_id"] for o in orders]
    return {
        "load": load,
        "cpu_load": cpu_load,
        "cpu_drain": cpu_drain,
        "backlog_at_end": backlog_at_end,
        "drain": drain,
        "created": created,
        "count": count,
        "api_orders": len(orders),
        "distinct_intakes": len(set(order_intakes)),
        "distinct_numbers": len({o["number"] for o in orders}),
        "load_intakes_covered": len(intake_ids & set(order_intakes)),
        "load_intakes": len(intake_ids),
    }


def report(r: dict[str, Any], args: argparse.Namespace) -> str:
    load: LoadResult = r["load"]
    ms = [x * 1000 for x in load.latencies]
    p99 = percentile(ms, 99)
    rows = [
        [
            backend(),
            load.completed,
            args.concurrency,
            load.duration,
            load.rate,
            percentile(ms, 50),
            percentile(ms, 90),
            p99,
            max(ms) if ms else float("nan"),
            load.not_ok(201),
        ]
    ]
    exact = (
        r["count"] == r["created"] == r["api_orders"] == r["distinct_intakes"]
        and r["distinct_numbers"] == r["api_orders"]
        and r["load_intakes_covered"] == r["load_intakes"]
    )
    drain_rows = [
        [
            r["created"],
            r["backlog_at_end"],
            r["drain"],
            r["count"],
            r["api_orders"],
            r["distinct_intakes"],
            "yes" if exact else "NO",
        ]
    ]
    window = load.duration
    cpu_rows = [
        [name, r["cpu_load"][name], 100 * r["cpu_load"][name] / window, r["cpu_drain"][name]]
        for name in r["cpu_load"]
    ]
    cpu_rows.append(
        ["load generator (this process)", load.client_cpu, 100 * load.client_cpu / window, "—"]
    )
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(load.statuses.items()))
    errors = ", ".join(f"{e}: {n}" for e, n in load.errors.items()) or "none"
    ok_p99, ok_rate = p99 <= TARGET_P99_MS, load.rate >= TARGET_RPS
    return "\n".join(
        [
            f"### POST /intakes, {args.concurrency} concurrent keep-alive clients "
            f"(after {args.warmup} warm-up requests)",
            "",
            table(
                [
                    "store",
                    "requests",
                    "clients",
                    "seconds",
                    "req/s",
                    "p50 ms",
                    "p90 ms",
                    "p99 ms",
                    "max ms",
                    "non-201",
                ],
                rows,
            ),
            "",
            f"Statuses: {statuses}; client errors: {errors}. "
            f"Targets: p99 ≤ {TARGET_P99_MS:g} ms ({'met' if ok_p99 else 'MISSED'}), "
            f"≥ {TARGET_RPS:g} req/s ({'met' if ok_rate else 'MISSED'}).",
            "",
            "### Backlog drain in workorders after the load",
            "",
            table(
                [
                    "intakes created (incl. warm-up)",
                    "repair orders missing at load end",
                    "drain s after load end",
                    "repair orders (DB)",
                    "repair orders (API)",
                    "distinct intake ids",
                    "exact",
                ],
                drain_rows,
            ),
            "",
            "### CPU used during the load (2-core machine)",
            "",
            table(
                ["process", "CPU s during load", "% of one core", "CPU s during drain"], cpu_rows
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000, help="measured requests")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive clients")
    parser.add_argument("--warmup", type=int, default=500, help="requests before measuring")
    parser.add_argument(
        "--drain-timeout", type=float, default=300.0, help="seconds to wait for the backlog"
    )
    parser.add_argument("--keep-logs", action="store_true", help="copy service logs out")
    parser.add_argument(
        "--env",
        action="append",
        metavar="NAME=VALUE",
        help="extra environment for every service, {SERVICE} becomes its prefix "
        "(repeatable), e.g. --env {SERVICE}_CONSUMER_BATCH=16",
    )
    args = parser.parse_args()
    if not 1 <= args.requests <= 1_000_000 or not 1 <= args.concurrency <= 1024:
        parser.error("--requests must be 1..1000000 and --concurrency 1..1024")
    with running_stack(keep_logs=args.keep_logs, extra_env=env_option(args.env)) as stack:
        wait_ready(stack)
        result = uvloop.run(bench(stack, args))
    print(report(result, args))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
