"""ERP webhook fan-out: `--events` customer registrations to `--endpoints` receivers.

Records runs as a real process (with a real nats-server). The benchmark registers the
endpoints, each a small HTTP/1.1 server of its own in this process on loopback answering
200, then publishes the events straight to reception's stream on NATS (as reception would,
with `Nats-Msg-Id`), pipelined. It measures from the first publish until every endpoint
has received every message: the total time, deliveries per second, and per delivery the
time from publish to arrival. Afterwards every delivery is verified with
`standardwebhooks` and duplicates are counted (there must be none). Target: 1,000 events
to 3 endpoints in ≤ 10 s.

`.venv/bin/python -m bench.records_webhooks [--events 1000] [--endpoints 3]`
"""

import argparse
import asyncio
import contextlib
import time
import uuid
from typing import Any

import httpx
import nats
import orjson
from standardwebhooks import Webhook

from bench.common import cpu_seconds, env_option, percentile, pid_of, running_stack, table
from bench.common import wait_ready as wait_stack_ready
from shared.contracts import CustomerRegistered, CustomerSnapshot
from shared.events import encode, utcnow
from tests.harness import auth, backend

BRANCH = "BR01"


class Receiver:
    """A minimal keep-alive HTTP/1.1 server that answers 200 and keeps what arrived."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, str], bytes]] = []
        self.expected = 0
        self.done = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/erp/hooks"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.arrivals.append((time.perf_counter(), headers, body))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
                if len(self.arrivals) >= self.expected:
                    self.done.set()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server:
            self.server.close()
            await self.server.wait_closed()


async def run(records: str, nats_url: str, events: int, endpoints: int, pid: int) -> None:
    receivers = [Receiver() for _ in range(endpoints)]
    secrets = []
    async with httpx.AsyncClient(timeout=30) as client:
        for receiver in receivers:
            receiver.expected = events
            r = await client.post(
                f"{records}/webhooks/endpoints",
                headers=auth("manager", BRANCH),
                json={"url": await receiver.start(), "event_types": ["customer.registered"]},
            )
            r.raise_for_status()
            secrets.append(r.json()["secret"])
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    payloads = []
    for i in range(events):
        customer = CustomerSnapshot(id=uuid.uuid4(), name=f"客户{i:05d}", mobile="13800000000")
        event = CustomerRegistered(branch=BRANCH, customer=customer, registered_at=utcnow())
        envelope = event.to_envelope(subject=str(customer.id))
        payloads.append((envelope.id, encode(envelope)))
    published_at: dict[str, float] = {}
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    for chunk in range(0, events, 200):
        acks = []
        for event_id, payload in payloads[chunk : chunk + 200]:
            published_at[event_id] = time.perf_counter()
            acks.append(
                js.publish(CustomerRegistered.type, payload, headers={"Nats-Msg-Id": event_id})
            )
        await asyncio.gather(*acks)
    published = time.perf_counter() - started
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(r.done.wait() for r in receivers)), timeout=max(60, events / 10)
        )
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    await nc.close()
    for receiver in receivers:
        await receiver.stop()

    customer_event = {
        orjson.loads(payload)["data"]["customer"]["id"]: event_id for event_id, payload in payloads
    }
    latencies: list[float] = []
    received, duplicates, unverified = 0, 0, 0
    for receiver, secret in zip(receivers, secrets, strict=True):
        seen: set[str] = set()
        hook = Webhook(secret)
        for arrived, headers, body in receiver.arrivals:
            received += 1
            msg_id = headers.get("webhook-id", "")
            if msg_id in seen:
                duplicates += 1
            seen.add(msg_id)
            try:
                hook.verify(body, headers)
            except Exception:
                unverified += 1
            # The customer's id in the body leads back to the event and its publish time.
            event_id = customer_event[orjson.loads(body)["data"]["customer_id"]]
            latencies.append((arrived - published_at[event_id]) * 1000)

    expected = events * endpoints
    print(
        f"\nWebhook fan-out: {events} customer.registered events to {endpoints} endpoints, "
        f"records on {backend()} (events published in {published:.2f} s):\n"
    )
    print(
        table(
            [
                "deliveries",
                "received",
                "duplicates",
                "not verified",
                "total s",
                "deliveries/s",
                "p50 ms",
                "p99 ms",
                "max ms",
                "records CPU s",
            ],
            [
                [
                    expected,
                    received,
                    duplicates,
                    unverified,
                    elapsed,
                    received / elapsed if elapsed else 0.0,
                    percentile(latencies, 50),
                    percentile(latencies, 99),
                    max(latencies) if latencies else float("nan"),
                    cpu,
                ]
            ],
        )
    )
    print(
        "\nTarget: 1,000 events to 3 endpoints delivered in ≤ 10 s. Latency is from the "
        "publish to NATS until the receiver has the request."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=3)
    parser.add_argument("--env", action="append", help="NAME=VALUE for every service")
    args = parser.parse_args()
    env: dict[str, Any] = {
        "RECORDS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "RECORDS_WEBHOOK_ALLOW_HTTP": "true",
        **(env_option(args.env) or {}),
    }
    with running_stack(services=("records",), extra_env=env) as stack:
        wait_stack_ready(stack)
        asyncio.run(
            run(
                stack.url("records"),
                stack.nats.url,
                args.events,
                args.endpoints,
                pid_of(stack, "records"),
            )
        )


if __name__ == "__main__":
    main()
