"""Customer messages: how fast followup's sender gets `--n` appointment reminders (default
10,000) to an SMS provider, and whether its memory stays flat while it does.

followup runs as a real process with nats-server; the provider is the Alibaba Cloud
stand-in of the tests (`tests/sms_standins.py`, served in this process on loopback),
which checks every request's signature and answers as Alibaba does, after `--delay` ms.
The reminders are written into followup's database as queued messages for tomorrow and
then made due at once (so the run measures the sender, not the events that would queue
them); the clock runs from then until the last one is marked sent in the database.
Every message must reach the provider exactly once (by request id). The process's
resident memory (VmRSS) is sampled every half second. Target: 10,000 in ≤ 30 s, memory
flat.

`.venv/bin/python -m bench.followup_messages [--n 10000] [--delay 20] [--batch 200]
[--concurrency 50]`
"""

import argparse
import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import insert, update
from sqlmodel import col, func, select

from bench.common import (
    cpu_seconds,
    env_option,
    pid_of,
    python_speed,
    running_stack,
    status_kb,
    table,
    wait_ready,
)
from services.followup.main import SPEC
from services.followup.models import CustomerMessage
from shared.db import Database
from shared.events import utcnow
from tests.harness import backend
from tests.sms_standins import StandIn, provider_env

TARGET_SECONDS = 30.0


async def queue(db: Database, n: int) -> None:
    """`n` reminders, queued for tomorrow (one insert per thousand rows)."""
    later, now = utcnow() + timedelta(days=1), utcnow()
    table_ = cast(Any, CustomerMessage).__table__
    for start in range(0, n, 1000):
        async with db.transaction() as session:
            await session.exec(
                insert(table_),
                params=[
                    {
                        "id": uuid.uuid4(),
                        "branch": "BR01",
                        "customer_id": uuid.uuid4(),
                        "cause": f"appointment:{uuid.uuid4()}:bench",
                        "channel": "sms",
                        "recipient": f"136{i:08d}",
                        "purpose": "service",
                        "template": "appointment_reminder",
                        "language": "zh-CN",
                        "params": {"time": "12-09 10:30"},
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": later,
                        "created_at": now,
                    }
                    for i in range(start, min(n, start + 1000))
                ],
            )


async def make_due(db: Database) -> None:
    """Every queued reminder due now: the clock starts."""
    async with db.transaction() as session:
        await session.exec(update(CustomerMessage).values(next_attempt_at=utcnow()))


async def sent_count(db: Database) -> int:
    async with db.reader() as session:
        return int(
            (
                await session.exec(
                    select(func.count())
                    .select_from(CustomerMessage)
                    .where(col(CustomerMessage.status) == "sent")
                )
            ).one()
        )


async def run(args: argparse.Namespace) -> None:
    aliyun = StandIn("aliyun", delay=args.delay / 1000).start()
    env = {
        **provider_env(aliyun, aliyun),
        "FOLLOWUP_SMS_PROVIDERS": '["aliyun"]',
        "FOLLOWUP_MESSAGE_INTERVAL": "0.2",
        "FOLLOWUP_MESSAGE_BATCH": str(args.batch),
        "FOLLOWUP_MESSAGE_CONCURRENCY": str(args.concurrency),
        "FOLLOWUP_QUIET_HOURS_FROM": "00:00",
        "FOLLOWUP_QUIET_HOURS_UNTIL": "00:00",
        **(env_option(args.env) or {}),
    }
    try:
        with running_stack(("followup",), extra_env=env) as stack:
            wait_ready(stack)
            pid = pid_of(stack, "followup")
            db = Database(
                stack.database_urls["followup"],
                info={
                    "outbox_model": SPEC.outbox_model,
                    "idempotency_model": SPEC.idempotency_model,
                },
            )
            try:
                await queue(db, args.n)
                started = time.monotonic()
                await make_due(db)
                cpu_before = cpu_seconds(pid)
                rss: list[float] = [status_kb(pid, "VmRSS") / 1024]
                peak_before = status_kb(pid, "VmHWM") / 1024
                done = 0
                while done < args.n and time.monotonic() - started < args.timeout:
                    await asyncio.sleep(0.5)
                    rss.append(status_kb(pid, "VmRSS") / 1024)
                    done = await sent_count(db)
                elapsed = time.monotonic() - started
                cpu = cpu_seconds(pid) - cpu_before
                peak_after = status_kb(pid, "VmHWM") / 1024
            finally:
                await db.dispose()
    finally:
        aliyun.stop()
    received = aliyun.received()
    distinct = len({r.request_id for r in received})
    rows: list[list[Any]] = [
        ["reminders", args.n],
        ["marked sent", done],
        ["requests at the provider (distinct)", f"{len(received)} ({distinct})"],
        ["refused by the provider (signature)", len(aliyun.refused)],
        ["seconds from due to all sent", elapsed],
        ["messages/s", done / elapsed if elapsed else float("nan")],
        ["followup CPU s", cpu],
        ["VmRSS MiB at start / max / end", f"{rss[0]:.1f} / {max(rss):.1f} / {rss[-1]:.1f}"],
        ["VmHWM MiB before / after", f"{peak_before:.1f} / {peak_after:.1f}"],
        ["target", f"{args.n} in ≤ {TARGET_SECONDS:.0f} s"],
        ["result", "ok" if done == args.n and elapsed <= TARGET_SECONDS else "MISSED"],
    ]
    print(
        f"\nfollowup sender, {backend()}, provider answers after {args.delay} ms, "
        f"batch {args.batch}, concurrency {args.concurrency} "
        f"(python speed {python_speed():.2f} s)\n"
    )
    print(table(["measure", "value"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--delay", type=float, default=20.0, help="provider answer, ms")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--env", action="append")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
