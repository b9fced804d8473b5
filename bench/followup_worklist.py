"""The follow-up agent's work list with 100,000 visits and 10,000 open complaint cases.

Seeds followup's database directly (bulk inserts, one branch), then times the work-list
and complaint-list calls over HTTP against the running service, one request at a time.
Target (issue 5): p99 ≤ 30 ms.

    .venv/bin/python -m bench.followup_worklist [--visits 100000] [--cases 10000] [--n 300]
"""

import argparse
import asyncio
import random
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import insert

from bench.common import percentile, running_stack, table, wait_ready
from services.followup.models import Complaint, Contact, Visit
from shared.db import Database
from shared.events import utcnow
from tests.harness import auth

BRANCH = "BR01"


def table_of(model: Any) -> Any:
    return model.__table__


async def seed(url: str, visits: int, cases: int, contacts: int = 20_000) -> None:
    db = Database(url)
    now = utcnow()
    rng = random.Random(7)
    customers = [uuid.uuid4() for _ in range(contacts)]
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(table_of(Contact)),
            [
                {
                    "customer_id": c,
                    "branch": BRANCH,
                    "name": f"客户{i}",
                    "mobile": f"138{i:08d}",
                    "preferred_channel": "phone",
                    "language": "zh-CN",
                    "contact_consent": True,
                    "visits": 1,
                    "as_of": now,
                    "updated_at": now,
                }
                for i, c in enumerate(customers)
            ],
        )
        chunk = []
        for i in range(visits):
            delivered = now - timedelta(days=rng.uniform(0, 400))
            due = delivered + timedelta(days=3)
            # Most visits are long done; about 3% are open, due around today.
            is_open = i % 33 == 0
            if is_open:
                due = now + timedelta(hours=rng.uniform(-72, 48))
            chunk.append(
                {
                    "id": uuid.uuid4(),
                    "branch": BRANCH,
                    "repair_order_id": uuid.uuid4(),
                    "repair_order_number": f"RO-2026-{i:06d}",
                    "customer_id": rng.choice(customers),
                    "vehicle_id": uuid.uuid4(),
                    "vin": "LSVAU2180N2183294",
                    "plate": f"沪A{i:05d}",
                    "advisor": "adv-1",
                    "status": "open" if is_open else "closed",
                    "outcome": None if is_open else "surveyed",
                    "attempts": 0,
                    "delivered_at": delivered,
                    "due_at": due,
                    "expires_at": delivered + timedelta(days=15),
                    "created_at": delivered,
                    "updated_at": delivered,
                }
            )
            if len(chunk) == 5000:
                await conn.execute(insert(table_of(Visit)), chunk)
                chunk = []
        if chunk:
            await conn.execute(insert(table_of(Visit)), chunk)
        rows = []
        for i in range(cases):
            opened = now - timedelta(hours=rng.uniform(0, 500))
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "branch": BRANCH,
                    "source": "call",
                    "severity": "major" if i % 10 == 0 else "minor",
                    "category": "repair_quality",
                    "status": "open",
                    "description": "噪音仍在",
                    "customer_id": rng.choice(customers),
                    "owner": "agent-1",
                    "opened_by": "agent-1",
                    "version": 1,
                    "due_at": opened + timedelta(hours=72),
                    "opened_at": opened,
                    "updated_at": opened,
                }
            )
        await conn.execute(insert(table_of(Complaint)), rows)
    await db.dispose()


async def measure(base: str, n: int) -> list[list[object]]:
    headers = auth("followup_agent", BRANCH)
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET /visits?view=today", "/visits", {"view": "today", "limit": 50}),
        ("GET /visits?view=overdue", "/visits", {"view": "overdue", "limit": 50}),
        ("GET /complaints?status=open", "/complaints", {"status": "open", "limit": 50}),
    ]
    rows: list[list[object]] = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:
        for name, path, params in calls:
            for _ in range(20):
                (await client.get(path, params=params)).raise_for_status()
            times = []
            for _ in range(n):
                started = time.perf_counter()
                response = await client.get(path, params=params)
                times.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
            items = len(response.json()["items"])
            rows.append(
                [
                    name,
                    n,
                    items,
                    f"{percentile(times, 50):.2f}",
                    f"{percentile(times, 90):.2f}",
                    f"{percentile(times, 99):.2f}",
                    f"{max(times):.2f}",
                    "ok" if percentile(times, 99) <= 30 else "MISSED",
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--visits", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--n", type=int, default=300, help="timed requests per call")
    args = parser.parse_args()
    with running_stack(services=("followup",)) as stack:
        wait_ready(stack)
        started = time.perf_counter()
        asyncio.run(seed(stack.database_urls["followup"], args.visits, args.cases))
        seeded = time.perf_counter() - started
        rows = asyncio.run(measure(stack.url("followup"), args.n))
    print(
        f"### Follow-up work list: {args.visits:,} visits, {args.cases:,} open cases "
        f"(seeded in {seeded:.1f} s)\n"
    )
    print(
        table(
            [
                "call",
                "requests",
                "items per page",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "p99 ≤ 30 ms",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
