"""The NATS connection of one service: connect in the background, streams, reconnects,
whether JetStream takes events, and the acks of pipelined publishes."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import ClusterInfo, DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from shared import metrics
from shared.events import DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, stream_name
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


class Messaging:
    """Owns the connection; the service keeps answering HTTP while NATS is away."""

    # Readiness asks JetStream itself, not only whether the socket is up: connected to a
    # node of a cluster without a quorum, nothing can be published. The answer is kept
    # for a second, so probes from several load balancers cost one request.
    JETSTREAM_CHECK_TIMEOUT = 1.0
    JETSTREAM_CHECK_MAX_AGE = 1.0

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self.ready = asyncio.Event()
        self._reconnect_listeners: list[Callable[[], Awaitable[None]]] = []
        self._background: set[asyncio.Task[None]] = set()
        self.closing = False
        self.lost = asyncio.Event()  # set while the connection is down
        self._jetstream_status: tuple[float, str] | None = None
        self._jetstream_check = asyncio.Lock()

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("NATS is not connected yet")
        return self._js

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    def on_reconnect(self, listener: Callable[[], Awaitable[None]]) -> None:
        self._reconnect_listeners.append(listener)

    async def connect(self) -> None:
        """Connect, retrying with growing delay until the server answers."""
        delay = 0.1
        while not self.closing:
            try:
                self.nc = await nats.connect(
                    servers=self.settings.nats_servers,
                    name=self.settings.service_name,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.25,
                    connect_timeout=2,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                    error_cb=self._error,
                )
                break
            except Exception as exc:
                log.warning(
                    "NATS at %s unreachable (%s); retrying in %.1fs",
                    self.settings.nats_url,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.nats_connect_backoff_max)
        if self.nc is None or self.closing:
            raise asyncio.CancelledError
        self._js = self.nc.jetstream(timeout=5)
        metrics.NATS_CONNECTED.set(1)
        # A cluster deployed beside the services may answer before it can keep a stream:
        # its meta leader still being elected, or fewer nodes up than the streams' replicas.
        # Giving up here would leave the service without relay or consumers for good.
        delay = 0.1
        while True:
            try:
                await self.ensure_stream(self.settings.service_name, own=True)
                await self.ensure_dead_letter_stream()
                break
            except Exception as exc:
                if self.closing:
                    raise asyncio.CancelledError from exc
                log.warning(
                    "JetStream cannot keep the streams yet (%s); retrying in %.1fs", exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.nats_connect_backoff_max)
        self.ready.set()

    async def jetstream_status(self) -> str:
        """What readiness reports for NATS: "ok" while this service's stream answers (it
        has a leader, so events can be published), else why not."""
        if self.nc is None or not self.connected or self._js is None:
            return "down"
        async with self._jetstream_check:
            checked = self._jetstream_status
            if checked and time.monotonic() - checked[0] < self.JETSTREAM_CHECK_MAX_AGE:
                return checked[1]
            try:
                js = self.nc.jetstream(timeout=self.JETSTREAM_CHECK_TIMEOUT)
                info = await js.stream_info(stream_name(self.settings.service_name))
                trouble = _without_quorum(info.cluster)
                status = f"jetstream unavailable: {trouble}" if trouble else "ok"
            except Exception as exc:
                status = f"jetstream unavailable: {type(exc).__name__}"
            self._jetstream_status = (time.monotonic(), status)
            return status

    def stream_config(self, service: str) -> StreamConfig:
        return StreamConfig(
            name=stream_name(service),
            subjects=[f"{service}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=self.settings.stream_replicas,
            duplicate_window=self.settings.stream_duplicate_window,
            discard=DiscardPolicy.OLD,
        )

    async def ensure_stream(self, service: str, *, own: bool = False) -> None:
        """Create a producer's stream; a consumer creates it too if it starts first."""
        config = self.stream_config(service)
        try:
            await self.js.add_stream(config)
        except BadRequestError:
            # Exists with another config: the producer's own settings win.
            if own:
                await self.js.update_stream(config)

    async def ensure_dead_letter_stream(self) -> None:
        config = StreamConfig(
            name=DEAD_LETTER_STREAM,
            subjects=[f"{DEAD_LETTER_PREFIX}.>"],
            storage=StorageType.FILE,
            num_replicas=self.settings.stream_replicas,
            duplicate_window=self.settings.stream_duplicate_window,
        )
        try:
            await self.js.add_stream(config)
        except BadRequestError:
            log.debug("dead-letter stream exists with another config; kept as it is")

    async def _disconnected(self) -> None:
        self.lost.set()
        metrics.NATS_CONNECTED.set(0)
        log.warning("NATS disconnected")

    async def _reconnected(self) -> None:
        metrics.NATS_CONNECTED.set(1)
        self.lost.clear()
        server = self.nc.connected_url if self.nc else None
        log.info("NATS reconnected to %s", server.netloc if server else "?")
        # Not inside the client's reconnect task: listeners make requests of their own.
        task = asyncio.create_task(self._after_reconnect(), name="nats-after-reconnect")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _after_reconnect(self) -> None:
        # Listeners first: publishing needs only the stream's leader, which is usually
        # alive; checking the streams needs the meta leader, which is elected again for
        # seconds when the node that held it died.
        for listener in self._reconnect_listeners:
            try:
                await listener()
            except Exception:
                log.exception("reconnect listener failed")
        delay = 0.05
        while self.connected:
            try:
                # A server that came back with an empty store has lost the streams.
                await self.ensure_stream(self.settings.service_name, own=True)
                await self.ensure_dead_letter_stream()
                break
            except Exception as exc:
                log.info("JetStream not answering yet after reconnect (%s)", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _error(self, exc: Exception) -> None:
        log.debug("NATS client error: %s", exc)

    async def close(self) -> None:
        self.closing = True
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.close(), 3)
            except Exception:
                log.debug("NATS close did not finish cleanly", exc_info=True)
        metrics.NATS_CONNECTED.set(0)


def _without_quorum(cluster: ClusterInfo | None) -> str | None:
    """Why a stream that answered its info request still takes no events, if it does not.

    A replica answers for a stream without a leader, and a leader cut off from its
    replicas answers as leader for a while, though nothing it is sent is stored."""
    if cluster is None:
        return None
    if not cluster.leader:
        return "no stream leader"
    replicas = cluster.replicas or []
    reachable = 1 + sum(1 for peer in replicas if peer.current and not peer.offline)
    if reachable * 2 <= 1 + len(replicas):
        return f"stream leader reaches {reachable - 1} of {len(replicas)} replicas"
    return None


class PipelinedAcks:
    """The answers to one round of pipelined publishes, every one of them collected.

    A failed publish whose answer nobody reads is logged by asyncio as "Future exception
    was never retrieved" when it is dropped (during a leader election, one per row of
    every round); each answer is therefore read as it arrives."""

    def __init__(self, lost: asyncio.Event):
        self.lost = lost
        self.futures: list[asyncio.Future[Any]] = []
        self.error: Exception | None = None
        self._unanswered = 0
        self._failed = False
        self._changed = asyncio.Event()
        self._refused: Exception | None = None

    def add(self, future: asyncio.Future[Any]) -> None:
        self.futures.append(future)
        self._unanswered += 1
        future.add_done_callback(self._answered)

    def refused(self, exc: Exception) -> None:
        """The client would not take the next publish: nothing after it was sent."""
        self._refused = exc

    def _answered(self, future: asyncio.Future[Any]) -> None:
        self._unanswered -= 1
        if future.cancelled() or future.exception() is not None:
            self._failed = True
        if self._failed or not self._unanswered:
            self._changed.set()

    async def collect(self, wait: float) -> int:
        """Wait until every publish is answered, one failed, the connection is lost or
        `wait` has passed; returns how many from the start were acknowledged, and sets
        `error` to why the next one was not. Unanswered publishes are cancelled: the rows
        after the first failure are published again, and the stream drops any copy."""
        deadline = asyncio.get_running_loop().time() + wait
        while self._unanswered and not self._failed and not self.lost.is_set():
            self._changed.clear()
            waiters = {
                asyncio.ensure_future(self._changed.wait()),
                asyncio.ensure_future(self.lost.wait()),
            }
            remaining = deadline - asyncio.get_running_loop().time()
            done, _ = await asyncio.wait(
                waiters, timeout=max(remaining, 0), return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()
            if not done:
                break
        acked = 0
        for future in self.futures:
            if not future.done():
                future.cancel()
                reason: Exception = (
                    ConnectionError("connection to NATS lost before the ack")
                    if self.lost.is_set()
                    else TimeoutError(f"no ack from NATS within {wait:.1f}s")
                )
            elif future.cancelled():
                reason = ConnectionError("publish cancelled before the ack")
            elif (exc := future.exception()) is not None:
                reason = exc  # type: ignore[assignment]
            else:
                if self.error is None:
                    acked += 1
                continue
            self.error = self.error or reason
        self.error = self.error or self._refused
        return acked
