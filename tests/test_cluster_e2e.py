"""The platform as a dealer group runs it, on loopback: three nats-server nodes clustered
(streams with three replicas), two replicas of every service on PostgreSQL, intakes sent
to both reception replicas while one replica of workorders and one of records are
SIGKILLed and restarted and the leader of the RECEPTION stream is killed and restarted.
Afterwards every intake is exactly one repair order, with one pair of timeline entries
linked to it, and one visit counted on its customer's follow-up contact; no dead letters,
no 5xx at the tablet. The time to drain is printed."""

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from tests.flow import valid_vin
from tests.harness import Group, auth, eventually, require_postgres
from tools.processes import NatsCluster, ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

CUSTOMERS = 24  # two cars each: 48 intakes, two visits per contact
ADVISOR = auth("advisor")


@pytest.fixture
def group(tmp_path: Path) -> Iterator[tuple[NatsCluster, Group]]:
    require_postgres()
    cluster = NatsCluster(tmp_path / "nats").start()
    try:
        running = Group(tmp_path, cluster).start()
        try:
            yield cluster, running
        finally:
            running.stop()
    finally:
        cluster.stop()


async def ready(client: httpx.AsyncClient, replicas: list[ServiceProcess]) -> bool:
    for replica in replicas:
        try:
            if (await client.get(f"{replica.url}/readyz")).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
    return True


async def stream_leader(nc: Any, stream: str) -> str | None:
    try:
        info = await nc.jetstream(timeout=1).stream_info(stream)
    except Exception:
        return None
    return info.cluster.leader if info.cluster else None


async def test_intakes_survive_replicas_and_the_stream_leader_killed_mid_burst(
    group: tuple[NatsCluster, Group],
) -> None:
    cluster, running = group
    everyone = [r for pair in running.replicas.values() for r in pair]
    reception = running.replicas["reception"]
    async with httpx.AsyncClient(timeout=30) as client:
        await eventually(lambda: ready(client, everyone), timeout=60, what="every replica ready")
        # The customers and their cars, before the burst.
        cars: list[tuple[str, str]] = []
        for i in range(CUSTOMERS):
            r = await client.post(
                f"{reception[i % 2].url}/customers",
                headers=ADVISOR,
                json={"name": f"集群客户{i}", "mobile": f"1390000{i:04d}"},
            )
            assert r.status_code == 201, r.text
            customer = r.json()["id"]
            for _ in range(2):
                r = await client.post(
                    f"{reception[i % 2].url}/vehicles",
                    headers=ADVISOR,
                    json={"customer_id": customer, "vin": valid_vin()},
                )
                assert r.status_code == 201, r.text
                cars.append((customer, r.json()["id"]))

        answers: list[int] = []
        intakes: dict[str, tuple[str, str]] = {}  # intake -> (customer, vehicle)
        started, down = asyncio.Event(), asyncio.Event()

        async def tablet(k: int, customer: str, vehicle: str) -> None:
            if k == len(cars) // 3:
                started.set()
            if k >= 2 * len(cars) // 3:
                await down.wait()  # the last third goes while they are down or restarting
            r = await client.post(
                f"{reception[k % 2].url}/intakes",
                headers={**ADVISOR, "Idempotency-Key": f"cluster-{k}"},
                json={"vehicle_id": vehicle, "odometer_km": 1000 + k},
            )
            answers.append(r.status_code)
            if r.status_code == 201:
                intakes[r.json()["id"]] = (customer, vehicle)

        async def burst() -> None:
            # Six tablets at once, alternating between the two reception replicas.
            gate = asyncio.Semaphore(6)

            async def one(k: int, customer: str, vehicle: str) -> None:
                async with gate:
                    await tablet(k, customer, vehicle)

            await asyncio.gather(*(one(k, c, v) for k, (c, v) in enumerate(cars)))

        async def outages() -> None:
            await started.wait()
            nc = await nats.connect(servers=cluster.url.split(","), connect_timeout=2)
            try:
                leader = await stream_leader(nc, "RECEPTION")
                assert leader is not None
            finally:
                await nc.close()
            killed = [running.replicas["workorders"][0], running.replicas["records"][1]]
            # In threads: the tablets go on meanwhile.
            for replica in killed:
                await asyncio.to_thread(replica.kill)
            await asyncio.to_thread(cluster.node(leader).kill)
            down.set()
            for replica in killed:
                await asyncio.to_thread(replica.start, False)
            await asyncio.to_thread(cluster.node(leader).start)

        await asyncio.gather(burst(), outages())
        burst_done = time.monotonic()
        assert all(code == 201 for code in answers), answers
        assert len(intakes) == len(cars)

        # Drained: one repair order per intake, each with its pair of timeline entries,
        # every contact with its two visits.
        workorders = running.replicas["workorders"][1].url
        records = running.replicas["records"][0].url
        followup = running.replicas["followup"][0].url

        async def orders() -> dict[str, list[dict[str, Any]]] | None:
            found: dict[str, list[dict[str, Any]]] = {}
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 200}
                if cursor:
                    params["cursor"] = cursor
                r = await client.get(
                    f"{workorders}/repair-orders", params=params, headers=auth("foreman")
                )
                if r.status_code != 200:
                    return None
                for order in r.json()["items"]:
                    found.setdefault(order["intake_id"], []).append(order)
                cursor = r.json()["next_cursor"]
                if not cursor:
                    break
            return found if set(found) >= set(intakes) else None

        by_intake = await eventually(orders, timeout=120, what="a repair order per intake")

        async def timelines() -> bool:
            for intake, (_, vehicle) in intakes.items():
                r = await client.get(
                    f"{records}/vehicles/{vehicle}/timeline", headers=auth("manager")
                )
                if r.status_code != 200:
                    return False
                entries = r.json()["entries"]
                [order] = by_intake[intake]
                opened = [e for e in entries if e["kind"] == "intake.opened"]
                ro = [e for e in entries if e["kind"] == "repair_order.opened"]
                if len(opened) != 1 or len(ro) != 1:
                    return False
                if {opened[0]["repair_order_id"], ro[0]["repair_order_id"]} != {order["id"]}:
                    return False
            return True

        await eventually(timelines, timeout=120, what="a linked pair of entries per intake")

        async def contacts() -> bool:
            for customer in {c for c, _ in cars}:
                r = await client.get(f"{followup}/contacts/{customer}", headers=auth("manager"))
                if r.status_code != 200 or r.json()["visits"] != 2:
                    return False
            return True

        await eventually(contacts, timeout=120, what="two visits on every contact")
        drained = time.monotonic() - burst_done
        await eventually(lambda: ready(client, everyone), timeout=60, what="all ready again")
        print(f"\n{len(intakes)} intakes drained {drained:.1f} s after the burst")

        # Exactly one order per intake, and nothing gave up.
        assert all(len(found) == 1 for found in by_intake.values())
        nc = await nats.connect(servers=cluster.url.split(","), connect_timeout=2)
        try:
            js = nc.jetstream(timeout=5)
            with contextlib.suppress(nats.js.errors.NotFoundError):
                dead = await js.stream_info("DEADLETTER")
                assert dead.state.messages == 0
        finally:
            await nc.close()
