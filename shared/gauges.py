"""The gauges an operator asks about, read when /metrics is scraped: how far the outbox is
behind, what each consumer has still to do, what lies in the dead-letter stream. Reading
them costs nothing between scrapes; each part has its own short deadline, and a part that
cannot be read leaves its last value and counts `metrics_refresh_errors_total`."""

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from sqlalchemy import func
from sqlmodel import select

from shared import metrics
from shared.events import DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, utcnow

if TYPE_CHECKING:
    from shared.service import Runtime

log = logging.getLogger(__name__)

PART_TIMEOUT = 2.0


async def refresh(rt: "Runtime") -> None:
    parts: dict[str, Awaitable[None]] = {
        "outbox": _outbox(rt),
        "consumers": _consumers(rt),
        "dead_letters": _dead_letters(rt),
    }
    for reader in rt.spec.gauges:
        parts[reader.__name__] = reader(rt)
    names = list(parts)
    results = await asyncio.gather(
        *(asyncio.wait_for(part, PART_TIMEOUT) for part in parts.values()), return_exceptions=True
    )
    for name, result in zip(names, results, strict=True):
        if isinstance(result, BaseException):
            log.debug("metrics part %s unreadable: %r", name, result)
            metrics.SCRAPE_ERRORS.labels(name).inc()


async def _outbox(rt: "Runtime") -> None:
    table = rt.spec.outbox_model.__table__
    unsent = table.c.sent_at.is_(None)
    async with rt.db.reader() as session:
        # Both read the partial index of unsent rows: a handful, however long the table.
        count = (await session.exec(select(func.count()).where(unsent))).one()
        oldest = (
            await session.exec(
                select(table.c.created_at).where(unsent).order_by(table.c.seq).limit(1)
            )
        ).first()
    metrics.OUTBOX_UNSENT.set(count)
    age = 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
    metrics.OUTBOX_OLDEST_UNSENT.set(age)


async def _consumers(rt: "Runtime") -> None:
    if rt.runner is None or not rt.messaging.ready.is_set():
        return
    js = rt.messaging.js
    for handler in rt.spec.subscribers.handlers:
        info = await js.consumer_info(handler.contract.stream(), handler.durable)
        metrics.CONSUMER_PENDING.labels(handler.durable).set(info.num_pending or 0)
        metrics.CONSUMER_ACK_PENDING.labels(handler.durable).set(info.num_ack_pending or 0)
        metrics.CONSUMER_REDELIVERED.labels(handler.durable).set(info.num_redelivered or 0)


async def _dead_letters(rt: "Runtime") -> None:
    if not rt.messaging.ready.is_set() or not rt.spec.subscribers.handlers:
        return
    info = await rt.messaging.js.stream_info(
        DEAD_LETTER_STREAM, subjects_filter=f"{DEAD_LETTER_PREFIX}.>"
    )
    counts = info.state.subjects or {}
    for handler in rt.spec.subscribers.handlers:
        subject = f"{DEAD_LETTER_PREFIX}.{handler.durable}"
        metrics.DEAD_LETTERS.labels(handler.durable).set(counts.get(subject, 0))
