"""A light HTTP/1.1 keep-alive load generator on asyncio streams.

Requests are pre-built bytes; a response is read as status line + headers and a
Content-Length body, nothing more, so the client spends little of the CPU the server
under test needs. One connection per virtual client; a shared budget of requests.
"""

import asyncio
import contextlib
import resource
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


def build_request(
    method: str,
    path: str,
    host: str,
    port: int,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    content_type: str = "application/json",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive connection; reopened when the server closes it."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send pre-built request bytes; returns (status, body)."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at < 0:
            raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
        end = lower.index(b"\r\n", at + 2)
        body = await self.reader.readexactly(int(lower[at + 17 : end]))
        if b"\r\nconnection: close" in lower:
            await self.close()
        return status, body


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # seconds, in completion order
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    created: list[bytes] = field(default_factory=list)  # bodies of the 2xx responses
    started: float = 0.0
    ended: float = 0.0
    client_cpu: float = 0.0  # CPU seconds this process used meanwhile

    @property
    def completed(self) -> int:
        return len(self.latencies)

    @property
    def duration(self) -> float:
        return self.ended - self.started

    @property
    def rate(self) -> float:
        return self.completed / self.duration if self.duration else 0.0

    def not_ok(self, expected: int) -> int:
        return sum(n for s, n in self.statuses.items() if s != expected) + sum(self.errors.values())


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    total: int,
    *,
    keep_bodies: bool = True,
    request_timeout: float = 30.0,
) -> LoadResult:
    """`total` requests over `len(requests)` connections; client i sends requests[i].

    Each virtual client sends its next request as soon as the previous answer is in
    (closed loop), so the concurrency is exactly the number of connections.
    """
    result = LoadResult()
    remaining = total
    connections = [Connection(host, port) for _ in requests]
    await asyncio.gather(*(c.open() for c in connections))

    async def client(connection: Connection, raw: bytes) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            sent = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(connection.request(raw), request_timeout)
            except Exception as exc:
                result.errors[type(exc).__name__] += 1
                await connection.close()
                continue
            result.latencies.append(time.perf_counter() - sent)
            result.statuses[status] += 1
            if keep_bodies and 200 <= status < 300:
                result.created.append(body)

    cpu = _cpu()
    result.started = time.perf_counter()
    try:
        await asyncio.gather(
            *(client(c, raw) for c, raw in zip(connections, requests, strict=True))
        )
    finally:
        result.ended = time.perf_counter()
        result.client_cpu = _cpu() - cpu
        await asyncio.gather(*(c.close() for c in connections))
    return result
