"""Back from disaster: records' database is lost after a branch day's whole story, and is
brought back the way deploy/README.md's drill says: the backup restored (taken before the
day, it holds the ERP endpoint and nothing of the day), records' consumers forgotten
(`python -m shared.rebuild records`), records started again. The rebuilt timelines, report
figures and webhook log equal the originals; the ERP receives nothing twice."""

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.harness import (
    JWT_SECRET,
    Stack,
    auth,
    backend,
    eventually,
    require_postgres,
    round_the_clock,
)
from tests.test_records_webhooks import Receiver
from tools import demo
from tools.processes import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

ZONE = "Asia/Shanghai"
MANAGER = auth("manager")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    if backend() == "postgres":
        require_postgres()
    running = Stack(
        tmp_path,
        extra_env={
            "RECORDS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "RECORDS_WEBHOOK_ALLOW_HTTP": "true",
            "RECORDS_WEBHOOK_POLL_INTERVAL": "0.1",
            "RECORDS_FILES_DIR": str(tmp_path / "files"),
            **round_the_clock(),
        },
    ).start()
    yield running
    running.stop()


@pytest.fixture
def erp() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def tool(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def caught_up(client: httpx.AsyncClient, records: str) -> bool:
    """Records has every event and sent every delivery: its consumers have nothing
    pending or unacknowledged and its outbox is empty."""
    try:
        r = await client.get(f"{records}/metrics", headers=MANAGER)
    except httpx.HTTPError:
        return False
    if r.status_code != 200:
        return False
    gauges = [
        line
        for line in r.text.splitlines()
        if line.startswith(
            ("consumer_pending_messages{", "consumer_ack_pending_messages{", "outbox_unsent_rows")
        )
    ]
    consumers = [line for line in gauges if line.startswith("consumer_pending")]
    return len(consumers) >= 30 and all(float(line.split()[-1]) == 0 for line in gauges)


async def snapshot(client: httpx.AsyncClient, urls: dict[str, str], endpoint: str) -> Any:
    """What records shows: every car's timeline, the day's report, the webhook log."""
    vehicles: set[str] = set()
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        r = await client.get(
            f"{urls['workorders']}/repair-orders", params=params, headers=auth("foreman")
        )
        assert r.status_code == 200, r.text
        vehicles |= {order["vehicle_id"] for order in r.json()["items"]}
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    timelines = {}
    for vehicle in sorted(vehicles):
        r = await client.get(
            f"{urls['records']}/vehicles/{vehicle}/timeline",
            params={"limit": 200},
            headers=MANAGER,
        )
        assert r.status_code == 200, r.text
        timelines[vehicle] = r.json()["entries"]
    today = datetime.now(UTC).astimezone(ZoneInfo(ZONE)).date().isoformat()
    r = await client.get(
        f"{urls['records']}/reports/kpis", params={"period": "day", "on": today}, headers=MANAGER
    )
    assert r.status_code == 200, r.text
    report = r.json()
    report.pop("generated_at", None)
    r = await client.get(
        f"{urls['records']}/webhooks/endpoints/{endpoint}/deliveries",
        params={"limit": 200},
        headers=MANAGER,
    )
    assert r.status_code == 200, r.text
    log = sorted((d["message_id"], d["event_type"], d["status"]) for d in r.json()["items"])
    return timelines, report, log


async def test_records_is_rebuilt_from_a_backup_and_the_streams(
    stack: Stack, erp: Receiver, tmp_path: Path
) -> None:
    urls = {name: stack.url(name) for name in stack.names}
    records = stack.services["records"]
    env = {"RECORDS_DATABASE_URL": stack.database_urls["records"]}
    env["RECORDS_NATS_URL"] = stack.nats.url
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(
            f"{urls['records']}/webhooks/endpoints",
            headers=MANAGER,
            json={"url": erp.url(), "event_types": [t.value for t in _event_types()]},
        )
        assert r.status_code == 201, r.text
        endpoint = r.json()["id"]

        # The nightly backup, taken while records runs, before the day.
        backup = tmp_path / "backup" / "records.dump"
        tool("shared.backup", "dump", "--database-url", env["RECORDS_DATABASE_URL"],
             "--to", str(backup), env=env)  # fmt: skip

        summary = await demo.load_async(urls, JWT_SECRET, ZONE)
        assert summary is not None
        await eventually(lambda: caught_up(client, urls["records"]), timeout=90,
                         what="records caught up with the day")  # fmt: skip

        async def sent() -> Any:
            # Every delivery queued by the day has reached the ERP.
            shown = await snapshot(client, urls, endpoint)
            return shown if all(status == "succeeded" for _, _, status in shown[2]) else None

        seen: list[Any] = [None]

        async def settled() -> Any:
            # Sent, and the same on two looks in a row: nothing of the day still arriving.
            shown = await sent()
            if shown is not None and shown == seen[0]:
                return shown
            seen[0] = shown
            return None

        before = await eventually(settled, timeout=90, what="the day settled in records")
        timelines, report, log = before
        assert sum(len(entries) for entries in timelines.values()) > 50
        assert any(kind == "invoice.settled" for _, kind, _ in log)
        received = sorted(r["headers"]["webhook-id"] for r in erp.requests)

        # The disaster: records dies and its database is gone.
        records.kill()
        await asyncio.to_thread(_wipe, stack.database_urls["records"])

        # The drill: restore the backup, forget the consumers, start records.
        tool("shared.backup", "restore", "--database-url", env["RECORDS_DATABASE_URL"],
             "--from", str(backup), env=env)  # fmt: skip
        out = tool("shared.rebuild", "records", env=env)
        assert "consumers deleted" in out
        records.start()
        await eventually(lambda: caught_up(client, urls["records"]), timeout=120,
                         what="records rebuilt from the streams")  # fmt: skip

        # The deliveries queued again by the replay go out (the ERP drops the repeats).
        after = await eventually(sent, timeout=60, what="the webhook log sent again")

    assert after[0] == timelines
    assert after[1] == report
    assert after[2] == log
    # Sent again after the rebuild with the same webhook-id: the ERP drops the repeats.
    again = sorted(r["headers"]["webhook-id"] for r in erp.requests)
    assert set(again) == set(received)


def _event_types() -> list[Any]:
    from services.records.webhook_models import EventType

    return list(EventType)


def _wipe(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        return
    import asyncpg  # the database dropped and created empty, as after losing the server

    async def recreate() -> None:
        name = url.rsplit("/", 1)[1]
        admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    asyncio.run(recreate())
