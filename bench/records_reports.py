"""A month's management report for a branch with 20,000 repair orders: JSON and PDF with charts.

Records' report facts are seeded straight into its database with bulk inserts: `--orders`
repair orders delivered and settled in November 2026 for branch BR01 (with their invoice
totals per pay type and kind, jobs, clock segments, follow-up visits, surveys with SERVQUAL,
comebacks, complaints and appointments), and as much again in October and in branch BR02,
so the indexes have to pick the month and the branch. Then `--n` timed requests, one at a
time, of `GET /reports/kpis` (JSON) and `--n-pdf` of `GET /reports/kpis.pdf` for the month,
with the CPU time the records process spent per request. Targets: JSON ≤ 300 ms, PDF ≤ 2 s.

`.venv/bin/python -m bench.records_reports [--orders 20000] [--n 30] [--n-pdf 10]`
"""

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, text

from bench.common import (
    cpu_seconds,
    env_option,
    percentile,
    pid_of,
    running_stack,
    table,
    wait_ready,
)
from services.records.report_models import (
    ReportAppointment,
    ReportClock,
    ReportComeback,
    ReportComplaint,
    ReportInvoiceTotal,
    ReportJob,
    ReportOrder,
    ReportSurvey,
    ReportVisit,
)
from shared.db import Database
from tests.harness import auth, backend

TECHNICIANS = [f"tech-{i:02d}" for i in range(24)]
DIMENSIONS = ("reliability", "responsiveness", "assurance", "empathy", "tangibles")


def month_rows(
    orders: int, branch: str, first: datetime, rng: random.Random
) -> dict[Any, list[dict[str, Any]]]:
    rows: dict[Any, list[dict[str, Any]]] = {m: [] for m in (
        ReportOrder, ReportInvoiceTotal, ReportJob, ReportClock, ReportVisit, ReportSurvey,
        ReportComeback, ReportComplaint, ReportAppointment)}  # fmt: skip
    earlier: list[uuid.UUID] = []
    for n in range(orders):
        order_id = uuid.uuid4()
        opened = first + timedelta(minutes=rng.randrange(0, 29 * 24 * 60))
        delivered = opened + timedelta(hours=rng.randrange(2, 30))
        promised = opened + timedelta(hours=rng.randrange(4, 30))
        labour_h, labour, parts = rng.choice((50, 100, 150, 200)), 0, rng.randrange(0, 200000)
        labour = labour_h * 300
        pay = rng.choices(("customer", "warranty", "internal"), (80, 15, 5))[0]
        fix = rng.random() < 0.7
        rows[ReportOrder].append(dict(
            repair_order_id=order_id, branch=branch, number=f"RO-{branch}-{n:06d}",
            vehicle_id=uuid.uuid4(), customer_id=uuid.uuid4(), vin="LSVAU2180N2183294",
            advisor="adv-1", opened_at=opened, delivered_at=delivered, promised_at=promised,
            settled_at=delivered, invoice_number=f"INV-{n}", has_fix=fix,
            flat_rate_centihours=labour_h, labour_cents=labour * 100, parts_cents=parts,
            fees_cents=0, net_cents=labour * 100 + parts, sold_centihours=labour_h))  # fmt: skip
        rows[ReportInvoiceTotal].append(dict(
            repair_order_id=order_id, pay_type=pay, kind="labour", branch=branch,
            settled_at=delivered, net_cents=labour * 100, centihours=labour_h))  # fmt: skip
        if parts:
            rows[ReportInvoiceTotal].append(dict(
                repair_order_id=order_id, pay_type=pay, kind="part", branch=branch,
                settled_at=delivered, net_cents=parts, centihours=0))  # fmt: skip
        for j in range(rng.choice((1, 1, 2))):
            job_id, tech = uuid.uuid4(), rng.choice(TECHNICIANS)
            rows[ReportJob].append(dict(
                job_id=job_id, repair_order_id=order_id, branch=branch, op_code=f"OP{j}",
                op_group="brakes", kind="repair" if fix else "maintenance", technician_id=tech,
                flat_rate_centihours=labour_h, delivered_at=delivered))  # fmt: skip
            for _ in range(rng.choice((1, 2))):
                start = opened + timedelta(minutes=rng.randrange(0, 120))
                rows[ReportClock].append(dict(
                    clock_id=uuid.uuid4(), repair_order_id=order_id, job_id=job_id,
                    branch=branch, technician_id=tech, started_at=start,
                    ended_at=start + timedelta(hours=1),
                    centihours=rng.randrange(40, 120)))  # fmt: skip
        if rng.random() < 0.6:
            rows[ReportVisit].append(dict(
                visit_id=uuid.uuid4(), branch=branch, repair_order_id=order_id,
                outcome="surveyed", reached=rng.random() < 0.9, attempts=1,
                closed_at=delivered + timedelta(days=3)))  # fmt: skip
        if rng.random() < 0.3:
            survey: dict[str, Any] = dict(
                survey_id=uuid.uuid4(), visit_id=uuid.uuid4(), branch=branch,
                repair_order_id=order_id, overall=rng.randrange(1, 11), nps=rng.randrange(0, 11),
                answered_at=delivered + timedelta(days=3))  # fmt: skip
            for d in DIMENSIONS:
                survey[f"{d}_expectation"] = rng.randrange(1, 8)
                survey[f"{d}_perception"] = rng.randrange(1, 8)
            rows[ReportSurvey].append(survey)
        if earlier and rng.random() < 0.02:
            rows[ReportComeback].append(dict(
                comeback_id=uuid.uuid4(), branch=branch, repair_order_id=order_id,
                earlier_repair_order_id=rng.choice(earlier), op_group="brakes",
                technician_id=rng.choice(TECHNICIANS), delivered_at=delivered))  # fmt: skip
        if rng.random() < 0.01:
            rows[ReportComplaint].append(dict(
                complaint_id=uuid.uuid4(), branch=branch, repair_order_id=order_id,
                severity=rng.choice(("major", "minor")), category="repair_quality",
                origin="call", opened_at=delivered + timedelta(days=4),
                severity_as_of=delivered + timedelta(days=4)))  # fmt: skip
        if rng.random() < 0.8:
            rows[ReportAppointment].append(dict(
                appointment_id=uuid.uuid4(), branch=branch, customer_id=uuid.uuid4(),
                scheduled_for=opened, as_of=opened, booked_at=opened - timedelta(days=2),
                outcome=rng.choices(("arrived", "no_show", "cancelled"), (85, 10, 5))[0],
                closed_at=opened))  # fmt: skip
        earlier.append(order_id)
    return rows


async def _insert(session: Any, table_: Any, rows: list[dict[str, Any]]) -> None:
    await session.exec(insert(table_), params=rows)


async def seed(url: str, orders: int) -> int:
    rng = random.Random(2026)
    db = Database(url)
    total = 0
    try:
        for branch, first in (
            ("BR01", datetime(2026, 10, 31, 16, 0, tzinfo=UTC)),  # 1 November, local
            ("BR01", datetime(2026, 9, 30, 16, 0, tzinfo=UTC)),  # October
            ("BR02", datetime(2026, 10, 31, 16, 0, tzinfo=UTC)),
        ):
            for model, rows in month_rows(orders, branch, first, rng).items():
                table_ = model.__table__
                for i in range(0, len(rows), 2000):
                    async with db.transaction() as session:
                        await _insert(session, table_, rows[i : i + 2000])
                total += len(rows)
        # As autovacuum (PostgreSQL) or a periodic ANALYZE would: the planner sees the data.
        async with db.transaction() as session:
            await session.exec(text("ANALYZE"))  # type: ignore[call-overload]
    finally:
        await db.dispose()
    return total


async def measure(base: str, n: int, n_pdf: int, pid: int) -> list[list[Any]]:
    params = {"period": "month", "on": "2026-11-15", "lang": "zh-CN"}
    rows: list[list[Any]] = []
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=auth("manager")) as client:
        r = await client.get("/reports/kpis", params=params)
        r.raise_for_status()
        delivered = next(k for k in r.json()["kpis"] if k["id"] == "repair_orders_delivered")
        for name, path, runs, target in (
            ("JSON", "/reports/kpis", n, "≤ 300 ms"),
            ("PDF with charts", "/reports/kpis.pdf", n_pdf, "≤ 2000 ms"),
        ):
            await client.get(path, params=params)  # warm-up (the PDF font loads once)
            times: list[float] = []
            size = 0
            cpu_before = cpu_seconds(pid)
            for _ in range(runs):
                started = time.perf_counter()
                r = await client.get(path, params=params)
                r.raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
                size = len(r.content)
            rows.append([
                name, int(delivered["value"]), runs, percentile(times, 50),
                percentile(times, 90), percentile(times, 99), max(times),
                (cpu_seconds(pid) - cpu_before) * 1000 / runs, f"{size / 1024:.0f} KiB", target,
            ])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=20_000, help="repair orders per month")
    parser.add_argument("--n", type=int, default=30, help="timed JSON requests")
    parser.add_argument("--n-pdf", type=int, default=10, help="timed PDF requests")
    parser.add_argument("--env", action="append", help="NAME=VALUE for every service")
    args = parser.parse_args()
    extra = {"RECORDS_REPORT_CHECK_INTERVAL_SECONDS": "3600", **(env_option(args.env) or {})}
    with running_stack(services=("records",), extra_env=extra) as stack:
        wait_ready(stack)
        started = time.perf_counter()
        seeded = asyncio.run(seed(stack.database_urls["records"], args.orders))
        seeded_in = time.perf_counter() - started
        rows = asyncio.run(
            measure(stack.url("records"), args.n, args.n_pdf, pid_of(stack, "records"))
        )
    print(
        f"\nMonthly report of one branch, {args.orders:,} repair orders in the month "
        f"({seeded:,} fact rows over 3 branch-months seeded in {seeded_in:.1f} s), records on "
        f"{backend()}, one request at a time:\n"
    )
    headers = ["output", "orders", "requests", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    print(table([*headers, "records CPU ms/request", "size", "target"], rows))


if __name__ == "__main__":
    main()
