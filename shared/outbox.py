"""Transactional outbox: events are rows written with the change, published by a relay."""

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime
from typing import Any

from nats.js import JetStreamContext
from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, update
from sqlmodel import Column, Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import metrics
from shared.db import EVENTS_ADDED, Database
from shared.events import Contract, encode, utcnow
from shared.types import UTCDateTime

log = logging.getLogger(__name__)

OUTBOX_MODEL = "outbox_model"


def make_outbox_models(base: type[SQLModel]) -> tuple[Any, Any]:
    """The outbox and inbox tables, declared in the calling service's own metadata."""

    class OutboxEvent(base, table=True):  # type: ignore[call-arg,valid-type,misc]
        __tablename__ = "outbox_event"
        __table_args__ = (
            Index(
                "ix_outbox_event_unsent",
                "seq",
                sqlite_where=Column("sent_at").is_(None),
                postgresql_where=Column("sent_at").is_(None),
            ),
        )

        seq: int | None = Field(
            default=None,
            sa_column=Column(
                BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
            ),
        )
        event_id: str = Field(sa_column=Column(String(36), nullable=False, unique=True))
        subject: str = Field(sa_column=Column(String(200), nullable=False))
        payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
        created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
        sent_at: datetime | None = Field(
            default=None, sa_column=Column(UTCDateTime(), nullable=True)
        )

    class InboxEvent(base, table=True):  # type: ignore[call-arg,valid-type,misc]
        """(consumer, event id) of every event a handler has committed: repeats are skipped."""

        __tablename__ = "inbox_event"

        consumer: str = Field(sa_column=Column(String(120), primary_key=True))
        event_id: str = Field(sa_column=Column(String(36), primary_key=True))
        handled_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))

    return OutboxEvent, InboxEvent


def add_event(session: AsyncSession, event: Contract, *, subject: str | uuid.UUID) -> str:
    """Write `event` into the outbox in the session's transaction; returns the event id."""
    model: Any = session.info[OUTBOX_MODEL]
    envelope = event.to_envelope(subject=str(subject))
    session.add(
        model(
            event_id=envelope.id,
            subject=envelope.type,
            payload=encode(envelope),
            created_at=envelope.time,
        )
    )
    session.info[EVENTS_ADDED] = True
    return envelope.id


class Relay:
    """Publishes outbox rows to JetStream, oldest first, and marks them sent after the ack.

    Woken right after a commit that added events; polls only as a fallback. While NATS is
    away it retries with growing delay; rows stay until the server has acknowledged them.
    On PostgreSQL rows are claimed with FOR UPDATE SKIP LOCKED so replicas never
    publish the same row at once.
    """

    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        model: Any,
        *,
        batch: int = 200,
        poll_interval: float = 1.0,
        backoff_max: float = 5.0,
    ):
        self.db, self.js, self.model = db, js, model
        self.batch, self.poll_interval, self.backoff_max = batch, poll_interval, backoff_max
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = 0.05
        while True:
            self._wake.clear()
            try:
                published = await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                metrics.OUTBOX_ERRORS.inc()
                log.warning(
                    "outbox relay could not publish; retrying in %.2fs", delay, exc_info=True
                )
                await self._sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            delay = 0.05
            if published >= self.batch:
                continue
            await self._sleep(self.poll_interval)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows; returns how many were acknowledged."""
        if self.db.is_sqlite:
            return await self._publish_sqlite()
        return await self._publish_claimed()

    def _unsent(self) -> Any:
        return (
            select(self.model.seq, self.model.event_id, self.model.subject, self.model.payload)
            .where(self.model.sent_at.is_(None))
            .order_by(self.model.seq)
            .limit(self.batch)
        )

    async def _publish_sqlite(self) -> int:
        # One relay per SQLite file, so reading then marking needs no claim; publishing
        # outside the write lock keeps requests from waiting on the network.
        async with self.db.reader() as session:
            rows = (await session.exec(self._unsent())).all()
        if not rows:
            return 0
        sent, error = await self._publish(rows)
        if sent:
            async with self.db.transaction() as session:
                await self._mark_sent(session, sent)
        if error:
            raise error
        return len(sent)

    async def _publish_claimed(self) -> int:
        async with self.db.transaction() as session:
            rows = (await session.exec(self._unsent().with_for_update(skip_locked=True))).all()
            if not rows:
                return 0
            sent, error = await self._publish(rows)
            if sent:
                await self._mark_sent(session, sent)
        if error:
            raise error
        return len(sent)

    async def _publish(self, rows: Any) -> tuple[list[int], Exception | None]:
        """Publish in order, pipelined; returns the seqs acknowledged before any failure."""
        futures = []
        error: Exception | None = None
        try:
            for row in rows:
                futures.append(
                    await self.js.publish_async(
                        row.subject, row.payload, headers={"Nats-Msg-Id": row.event_id}
                    )
                )
        except Exception as exc:
            error = exc
        sent: list[int] = []
        for row, future in zip(rows, futures, strict=False):
            try:
                await asyncio.wait_for(future, 5.0)
            except Exception as exc:
                error = error or exc
                break
            sent.append(row.seq)
        metrics.EVENTS_PUBLISHED.inc(len(sent))
        return sent, error

    async def _mark_sent(self, session: AsyncSession, seqs: list[int]) -> None:
        await session.exec(
            update(self.model).where(self.model.seq.in_(seqs)).values(sent_at=utcnow())
        )
