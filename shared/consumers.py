"""Idempotent event handlers on durable JetStream pull consumers.

A service lists its handlers with a `Subscribers` registry:

    subscriber = Subscribers()

    @subscriber(IntakeOpened, durable="workorders__open_repair_order")
    async def open_repair_order(event: IntakeOpened, session: AsyncSession) -> None: ...

The runner owns everything around the handler: the inbox row (consumer, event id) in
the handler's own transaction, so a repeat is skipped; ack after commit; nak with
growing delay on failure; after the last delivery the message goes to the dead-letter
subject and is logged. Handlers still check state before acting.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import metrics, tracing
from shared.aio import settle
from shared.db import Database
from shared.events import DEAD_LETTER_PREFIX, REPLAY_FOR, Contract, Envelope, decode, utcnow
from shared.logs import event_id_var
from shared.messaging import Messaging
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

HandlerFunc = Callable[[Any, AsyncSession], Awaitable[None]]


@dataclass(frozen=True)
class Handler:
    contract: type[Contract]
    durable: str
    func: HandlerFunc


class Subscribers:
    """The handlers of one service, each declared once next to its consumer name."""

    def __init__(self) -> None:
        self.handlers: list[Handler] = []

    def __call__(
        self, contract: type[Contract], *, durable: str
    ) -> Callable[[HandlerFunc], HandlerFunc]:
        if any(h.durable == durable for h in self.handlers):
            raise ValueError(f"consumer {durable!r} declared twice")

        def register(func: HandlerFunc) -> HandlerFunc:
            self.handlers.append(Handler(contract, durable, func))
            return func

        return register


class ConsumerRunner:
    def __init__(
        self,
        db: Database,
        messaging: Messaging,
        handlers: list[Handler],
        inbox_model: Any,
        settings: ServiceSettings,
    ):
        self.db, self.messaging, self.handlers = db, messaging, handlers
        self.inbox_model, self.settings = inbox_model, settings
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def consumer_config(self, handler: Handler) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=handler.durable,
            filter_subject=handler.contract.type,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.settings.consumer_ack_wait,
            # The runner counts deliveries itself and dead-letters at its own limit; the
            # server must keep redelivering in case the dead-letter publish fails.
            max_deliver=-1,
            max_ack_pending=1000,
        )

    async def start(self) -> None:
        for handler in self.handlers:
            self._tasks.append(
                asyncio.create_task(self._consume(handler), name=f"consumer-{handler.durable}")
            )

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await settle(task)
        self._tasks.clear()

    async def _subscribe(self, handler: Handler) -> Any:
        js = self.messaging.js
        await self.messaging.ensure_stream(handler.contract.source())
        return await js.pull_subscribe(
            handler.contract.type,
            durable=handler.durable,
            stream=handler.contract.stream(),
            config=self.consumer_config(handler),
        )

    async def _consume(self, handler: Handler) -> None:
        await self.messaging.ready.wait()
        subscription: Any = None
        delay = 0.1
        while not self._stopping:
            try:
                # Bounded: a call into the client that never returns (seen around server
                # restarts) is abandoned and the subscription bound again.
                async with asyncio.timeout(self.settings.consumer_fetch_timeout + 15):
                    if subscription is None:
                        log.debug("binding consumer %s", handler.durable)
                        subscription = await self._subscribe(handler)
                    try:
                        messages = await subscription.fetch(
                            self.settings.consumer_batch,
                            timeout=self.settings.consumer_fetch_timeout,
                        )
                    except (NatsTimeoutError, TimeoutError):
                        # An idle fetch; the outer deadline surfaces only at the block's end.
                        continue
                delay = 0.1
                await self._handle_batch(handler, messages)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning(
                    "consumer %s failed; rebinding in %.1fs", handler.durable, delay, exc_info=True
                )
                if subscription is not None:
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()
                subscription = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _handle_batch(self, handler: Handler, messages: list[Msg]) -> None:
        """A fetched batch in one transaction; on any failure, one message at a time."""
        messages = await self._only_mine(handler, messages)
        if not messages:
            return
        if len(messages) == 1:
            await self._handle(handler, messages[0])
            return
        try:
            batch = [(m, handler.contract.from_envelope(decode(m.data))) for m in messages]
        except Exception:
            batch = []
        if batch:
            try:
                outcomes = await self._run_batch(handler, [event for _, event in batch])
            except Exception:
                log.info(
                    "batch of %d for %s failed; handling one by one", len(batch), handler.durable
                )
            else:
                for outcome in outcomes:
                    metrics.EVENTS_HANDLED.labels(handler.durable, outcome).inc()
                for message in messages:
                    await message.ack()
                return
        for message in messages:
            await self._handle(handler, message)

    def _span(self, handler: Handler, envelope: Envelope) -> Any:
        """The handler's consumer span, in the trace the event carries (none when off)."""
        return tracing.event_span(
            self.settings.service_name,
            f"handle {handler.durable}",
            "consumer",
            envelope.traceparent,
            envelope.tracestate,
            **{"messaging.system": "nats", "messaging.consumer.group.name": handler.durable},
            **{"messaging.message.id": envelope.id, "cloudevents.event_type": envelope.type},
        )

    async def _only_mine(self, handler: Handler, messages: list[Msg]) -> list[Msg]:
        """A replayed dead letter names the consumer it is for; the others ack it unread."""
        mine = []
        for message in messages:
            target = (message.headers or {}).get(REPLAY_FOR)
            if target is None or target == handler.durable:
                mine.append(message)
            else:
                metrics.EVENTS_HANDLED.labels(handler.durable, "replay_for_other").inc()
                await message.ack()
        return mine

    async def _run_batch(self, handler: Handler, events: list[Contract]) -> list[str]:
        inbox = self.inbox_model
        outcomes = []
        async with self.db.transaction() as session:
            ids = [event.envelope.id for event in events]
            seen = set(
                (
                    await session.exec(
                        select(inbox.event_id).where(
                            inbox.consumer == handler.durable, inbox.event_id.in_(ids)
                        )
                    )
                ).all()
            )
            for event in events:
                event_id = event.envelope.id
                if event_id in seen:
                    outcomes.append("duplicate")
                    continue
                seen.add(event_id)
                session.add(inbox(consumer=handler.durable, event_id=event_id, handled_at=utcnow()))
                token = event_id_var.set(event_id)
                try:
                    with self._span(handler, event.envelope):
                        await handler.func(event, session)
                finally:
                    event_id_var.reset(token)
                outcomes.append("handled")
        return outcomes

    async def _handle(self, handler: Handler, message: Msg) -> None:
        delivered = message.metadata.num_delivered
        try:
            envelope = decode(message.data)
            event = handler.contract.from_envelope(envelope)
        except Exception as exc:
            # A message that cannot be read will never succeed: dead-letter it now.
            await self._dead_letter(handler, message, None, exc)
            return
        token = event_id_var.set(envelope.id)
        try:
            outcome = await self._run_once(handler, envelope, event)
        except Exception as exc:
            if delivered >= self.settings.consumer_max_deliver:
                await self._dead_letter(handler, message, envelope, exc)
            else:
                backoff = self.settings.consumer_backoff
                wait = backoff[min(delivered, len(backoff)) - 1] if backoff else 1.0
                log.warning(
                    "handler %s failed on delivery %d; retry in %.1fs: %s",
                    handler.durable,
                    delivered,
                    wait,
                    exc,
                )
                metrics.EVENTS_HANDLED.labels(handler.durable, "retry").inc()
                await message.nak(delay=wait)
            return
        finally:
            event_id_var.reset(token)
        metrics.EVENTS_HANDLED.labels(handler.durable, outcome).inc()
        await message.ack()

    async def _run_once(self, handler: Handler, envelope: Envelope, event: Contract) -> str:
        inbox = self.inbox_model
        try:
            async with self.db.transaction() as session:
                seen = await session.exec(
                    select(inbox.event_id).where(
                        inbox.consumer == handler.durable, inbox.event_id == envelope.id
                    )
                )
                if seen.first() is not None:
                    return "duplicate"
                session.add(
                    inbox(consumer=handler.durable, event_id=envelope.id, handled_at=utcnow())
                )
                with self._span(handler, envelope):
                    await handler.func(event, session)
        except IntegrityError:
            # Another replica committed the same event between our check and insert.
            async with self.db.reader() as session:
                seen = await session.exec(
                    select(inbox.event_id).where(
                        inbox.consumer == handler.durable, inbox.event_id == envelope.id
                    )
                )
                if seen.first() is not None:
                    return "duplicate"
            raise
        return "handled"

    async def _dead_letter(
        self, handler: Handler, message: Msg, envelope: Envelope | None, exc: Exception
    ) -> None:
        try:
            await self._publish_dead_letter(handler, message, envelope, exc)
        except Exception:
            # Not acked: the message comes back and dead-lettering is tried again.
            log.exception("could not dead-letter a message of %s; retrying", handler.durable)
            await message.nak(
                delay=self.settings.consumer_backoff[-1] if self.settings.consumer_backoff else 5.0
            )
            return
        metrics.EVENTS_HANDLED.labels(handler.durable, "dead_letter").inc()
        await message.term()

    async def _publish_dead_letter(
        self, handler: Handler, message: Msg, envelope: Envelope | None, exc: Exception
    ) -> None:
        event_id = envelope.id if envelope else f"seq-{message.metadata.sequence.stream}"
        log.error(
            "event moved to dead letter after %d deliveries: consumer=%s type=%s error=%s",
            message.metadata.num_delivered,
            handler.durable,
            handler.contract.type,
            exc,
            extra={"event_id": event_id},
        )
        headers = {
            "Nats-Msg-Id": f"{handler.durable}:{event_id}",
            "Workshop-Consumer": handler.durable,
            "Workshop-Subject": message.subject,
            "Workshop-Error": header_text(str(exc))[:500],
            "Workshop-Deliveries": str(message.metadata.num_delivered),
        }
        await self.messaging.js.publish(
            f"{DEAD_LETTER_PREFIX}.{handler.durable}", message.data, headers=headers
        )


def header_text(text: str) -> str:
    """A header value NATS carries intact: one line of ASCII (other characters escaped as
    `\\uXXXX`; a line break would end the header, and the client misreads non-ASCII)."""
    one_line = " ".join(text.split())
    return one_line.encode("ascii", "backslashreplace").decode("ascii")


def dead_letter_payload(message: Msg) -> dict[str, Any]:
    """What a dead-lettered message carried, for tools and tests that read the subject."""
    return {"headers": dict(message.headers or {}), "event": orjson.loads(message.data)}
