"""Two workorders replicas on one PostgreSQL database, as real processes: a screen on one
replica sees a change made through the other at once (NOTIFY, not the poll), and resumes
on either with Last-Event-ID."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError

from shared.events import encode
from tests.harness import NatsServer, ServiceProcess, auth, eventually, token
from tests.test_workorders_api import approved_now, labour

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

FOREMAN = auth("foreman")
TECH = {"Authorization": f"Bearer {token('technician', sub='tech-replica')}"}
SCREEN = token("screen")


@pytest.fixture
def replicas(pg_url: str, nats_server: NatsServer, tmp_path: Path) -> Iterator[list[str]]:
    env = {
        "WORKORDERS_DATABASE_URL": pg_url,
        "WORKORDERS_NATS_URL": nats_server.url,
        "WORKORDERS_RELAY_POLL_INTERVAL": "0.5",
        "WORKORDERS_BOARD_HEARTBEAT_SECONDS": "1",
        # Far beyond the test's deadlines: the other replica's change must come by NOTIFY.
        "WORKORDERS_BOARD_POLL_INTERVAL": "60",
    }
    first = ServiceProcess("workorders", env, tmp_path / "logs-a")
    second = ServiceProcess(
        "workorders", {**env, "WORKORDERS_AUTO_MIGRATE": "false"}, tmp_path / "logs-b"
    )
    try:
        first.start()  # migrates
        second.start()
        yield [first.url, second.url]
    finally:
        second.stop()
        first.stop()


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, Any, int | None]]:
    block: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "event" in block:
                yield (
                    block["event"],
                    json.loads(block.get("data", "null")),
                    int(block["id"]) if "id" in block else None,
                )
            block = {}
            continue
        name, _, value = line.partition(": ")
        block[name] = value


async def publish_consent(nats_url: str) -> Any:
    event = approved_now(lines=[labour("BRK-010", "1.5", "450")])
    envelope = event.to_envelope(subject=str(event.estimate_id))
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()

        async def stream_ready() -> bool:
            try:
                await js.stream_info("RECEPTION")
            except NotFoundError:
                return False
            return True

        await eventually(stream_ready, what="reception stream")
        await js.publish(envelope.type, encode(envelope), headers={"Nats-Msg-Id": envelope.id})
    finally:
        await nc.close()
    return event


async def test_a_change_through_one_replica_reaches_a_screen_on_the_other(
    replicas: list[str], nats_server: NatsServer
) -> None:
    a, b = replicas
    event = await publish_consent(nats_server.url)
    async with httpx.AsyncClient(timeout=10) as client:

        async def opened() -> dict[str, Any] | None:
            r = await client.get(
                f"{a}/repair-orders", params={"intake_id": str(event.intake_id)}, headers=FOREMAN
            )
            items = r.json()["items"]
            if not items or items[0]["status"] != "open":
                return None
            return dict(
                (await client.get(f"{a}/repair-orders/{items[0]['id']}", headers=FOREMAN)).json()
            )

        order = await eventually(opened, what="order opened")
        job = order["jobs"][0]
        async with client.stream(
            "GET", f"{b}/board/events", params={"access_token": SCREEN}, timeout=30
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            feed = events(stream)
            name, data, snapshot_id = await anext(feed)
            assert name == "snapshot" and order["id"] in {c["id"] for c in data["cards"]}

            r = await client.put(
                f"{a}/jobs/{job['id']}/assignment",
                headers={**FOREMAN, "If-Match": f'"{job["version"]}"'},
                json={"technician_id": "tech-replica", "bay": "B2"},
            )
            assert r.status_code == 200, r.text
            async with asyncio.timeout(10):
                while True:
                    name, data, change_id = await anext(feed)
                    if name == "card" and data["card"]["technicians"] == ["tech-replica"]:
                        break
            assert change_id is not None and snapshot_id is not None and change_id > snapshot_id

        # Away from the board: a clock-on through B; resume on A from the last id seen.
        assert (
            await client.post(f"{b}/jobs/{job['id']}/clock-on", headers=TECH)
        ).status_code == 201
        async with client.stream(
            "GET",
            f"{a}/board/events",
            params={"access_token": SCREEN},
            headers={"Last-Event-ID": str(change_id)},
            timeout=30,
        ) as stream:
            name, data, resumed_id = await anext(events(stream))
            assert name == "card" and data["id"] == order["id"]
            assert data["card"]["status"] == "in_progress"
            assert resumed_id is not None and resumed_id > change_id
