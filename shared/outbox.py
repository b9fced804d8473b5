"""Transactional outbox: events are rows written with the change, published by a relay."""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import nats.errors
import orjson
from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, event, func, insert, update
from sqlalchemy.orm import Session
from sqlmodel import Column, Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import metrics, tracing
from shared.aio import settle
from shared.db import EVENTS_ADDED, Database
from shared.driver import DriverStatement, DriverTransaction, Statements, before_commit
from shared.events import Contract, encode, utcnow
from shared.messaging import Messaging, PipelinedAcks
from shared.types import UTCDateTime

log = logging.getLogger(__name__)

# Failures that mean NATS or JetStream cannot take events right now, not a fault here.
NATS_TROUBLE = (nats.errors.Error, ConnectionError, TimeoutError)

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


_PENDING = "outbox_pending"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An outbox row as committed: what the relay publishes."""

    seq: int
    event_id: str
    subject: str
    payload: bytes


def add_event(
    session: AsyncSession | Session | Statements, event: Contract, *, subject: str | uuid.UUID
) -> str:
    """Write `event` into the outbox in the session's transaction; returns the event id.

    The row is inserted just before the commit, with the transaction's other events in one
    statement (a unit-of-work flush of an ORM object per event cost more than the insert)."""
    envelope = event.to_envelope(subject=str(subject))
    session.info.setdefault(_PENDING, []).append(
        {
            "event_id": envelope.id,
            "subject": envelope.type,
            "payload": encode(envelope),
            "created_at": envelope.time,
        }
    )
    return envelope.id


@event.listens_for(Session, "before_commit")
def _write_outbox(session: Session) -> None:
    pending: list[dict[str, Any]] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    statement = _insert_returning_seq(session.info[OUTBOX_MODEL].__table__)
    seqs: Sequence[int]
    if len(pending) == 1:  # the usual case: one row, straight on the driver where it can
        seqs = statement.first_column_in_greenlet(session.connection(), pending[0])
    else:
        seqs = session.connection().execute(statement.statement, pending).scalars().all()
    _committing(session.info, seqs, pending)


@before_commit
async def _write_outbox_on_driver(transaction: DriverTransaction) -> None:
    pending: list[dict[str, Any]] | None = transaction.info.pop(_PENDING, None)
    if not pending:
        return
    statement = _insert_returning_seq(transaction.info[OUTBOX_MODEL].__table__)
    seqs = [seq for row in pending for seq in await transaction.first_column(statement, row)]
    _committing(transaction.info, seqs, pending)


def _committing(info: dict[str, Any], seqs: Sequence[int], pending: list[dict[str, Any]]) -> None:
    """The rows just written, for the commit listeners (the relay) once committed."""
    info.setdefault(EVENTS_ADDED, []).extend(
        OutboxRow(seq, row["event_id"], row["subject"], row["payload"])
        for seq, row in zip(seqs, pending, strict=True)
    )


@cache
def _insert_returning_seq(table: Any) -> DriverStatement:
    return DriverStatement(insert(table).returning(table.c.seq, sort_by_parameter_order=True))


@event.listens_for(Session, "after_soft_rollback")
def _forget_outbox(session: Session, previous: Any) -> None:
    if not getattr(previous, "nested", False):
        session.info.pop(_PENDING, None)


class Relay:
    """Publishes outbox rows to JetStream, oldest first, and marks them sent after the ack.

    Rows a commit in this process just wrote are handed over in memory right after the
    commit, so the usual path costs no query. The table is read when that path cannot be
    trusted: at start, after a failure, and every `poll_interval` as a fallback (rows of
    another replica that died). Sent marks are written in batches; a row published but not
    yet marked when the process dies is published again and dropped by the stream's
    duplicate window (Nats-Msg-Id = event id). On PostgreSQL table reads claim rows with
    FOR UPDATE SKIP LOCKED so replicas do not publish the same rows.

    When publishing fails (a stream leader being elected, the connection gone) the relay
    holds the rows, says so once, and tries the oldest row alone, soon and then at most
    every `backoff_max`, until JetStream acknowledges it; then it says how long it waited
    and goes on pipelining from there. A row is never marked sent without its ack, and
    after a failure the relay starts again from its oldest unacknowledged row.
    """

    MARK_EVERY = 0.05  # seconds between batched sent-marks while events flow
    # While events flow without a pause, marks still go out this often: an unmarked row
    # looks unsent to /metrics (`outbox_oldest_unsent_age_seconds`) and to other replicas.
    MARK_AT_LEAST_EVERY = 0.25
    # A pipelined round's acks normally arrive within milliseconds; a publish routed to a
    # node that died is never answered, and this is how long the relay waits to find out.
    ACK_WAIT = 2.0
    # While failing, one row is tried at a time: a leader that answers does so quickly.
    PROBE_WAIT = 0.5
    FIRST_RETRY = 0.05

    def __init__(
        self,
        db: Database,
        messaging: Messaging,
        model: Any,
        *,
        batch: int = 200,
        poll_interval: float = 1.0,
        backoff_max: float = 0.5,
    ):
        self.db, self.messaging, self.model = db, messaging, model
        self.batch, self.poll_interval, self.backoff_max = batch, poll_interval, backoff_max
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._handed: list[tuple[int, str, str, bytes]] = []
        self._scan = True  # the table may hold unsent rows: read it before trusting hand-overs
        self._acked: list[int] = []
        self._acked_since = 0.0  # when the oldest unmarked ack came
        self._failing_since: float | None = None

    @property
    def failing(self) -> bool:
        return self._failing_since is not None

    def committed(self, rows: list[Any]) -> None:
        """Commit listener: the rows are in the database now; publish them soon."""
        self._handed.extend((r.seq, r.event_id, r.subject, r.payload) for r in rows)
        # While failing, a commit must not cut the retry delay short: every request would
        # then try a server that cannot answer.
        if not self.failing:
            self._wake.set()

    def wake(self) -> None:
        """Look at the table now (after a reconnect, say)."""
        self._scan = True
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                async with asyncio.timeout(5):
                    await asyncio.shield(self._task)
            if not self._task.done():
                self._task.cancel()
                await settle(self._task)

    async def _run(self) -> None:
        delay = self.FIRST_RETRY
        while not self._stopping:
            self._wake.clear()
            try:
                # Bounded, so a client call that never returns cannot stop the relay.
                async with asyncio.timeout(60):
                    more = await self._round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                metrics.OUTBOX_ERRORS.inc()
                self._failed(exc, delay)
                self._scan = True
                await self._sleep(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            delay = self.FIRST_RETRY
            if more:
                continue
            if self._acked:
                await self._sleep(self.MARK_EVERY)
                if not self._wake.is_set():
                    await self._flush_marks()
                continue
            await self._sleep(self.poll_interval)
            if not self._wake.is_set():
                self._scan = True
        with contextlib.suppress(Exception):
            await self._flush_marks()

    def _failed(self, exc: Exception, delay: float) -> None:
        """One warning when publishing starts failing; the retries that follow are quiet."""
        if self.failing:
            log.debug("outbox relay still cannot publish (%r); next try in %.2fs", exc, delay)
            return
        self._failing_since = time.monotonic()
        metrics.OUTBOX_FAILING.set(1)
        log.warning(
            "outbox relay cannot publish (%s: %s); events are held and the oldest is tried "
            "again until JetStream acknowledges it",
            type(exc).__name__,
            exc,
            # A NATS outage explains itself; anything else gets its traceback.
            exc_info=not isinstance(exc, NATS_TROUBLE),
        )

    async def _recovered(self, published: int) -> None:
        assert self._failing_since is not None
        waited = time.monotonic() - self._failing_since
        self._failing_since = None
        metrics.OUTBOX_FAILING.set(0)
        try:
            waiting: int | str = published + await self._count_unsent()
        except Exception:
            waiting = "an unknown number of"
        log.info(
            "outbox relay publishing again after %.1fs; %s events were waiting",
            waited,
            waiting,
            extra={"outage_seconds": round(waited, 3), "events_waiting": waiting},
        )

    async def _sleep(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: wait_for on 3.11 can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _round(self) -> bool:
        """One round of work; True when more is known to be waiting."""
        if self.failing:
            await self._flush_marks()
            self._handed.clear()  # everything committed so far is in the table
            published = await self.publish_pending(limit=1)  # raises while it still fails
            # Acknowledged (or nothing left to try): pipeline the rest from the table.
            await self._recovered(published)
            self._scan = True
            return True
        if self._scan:
            await self._flush_marks()
            self._handed.clear()
            published = await self.publish_pending()
            self._scan = published >= self.batch
            return self._scan
        if not self._handed:
            return False
        rows, self._handed = self._handed, []
        sent, error = await self._publish(rows)
        if sent and not self._acked:
            self._acked_since = time.monotonic()
        self._acked.extend(sent)
        if error:
            raise error
        waited = time.monotonic() - self._acked_since
        if len(self._acked) >= self.batch or waited >= self.MARK_AT_LEAST_EVERY:
            await self._flush_marks()
        return bool(self._handed)

    async def _flush_marks(self) -> None:
        if not self._acked:
            return
        seqs, self._acked = self._acked, []
        try:
            async with self.db.transaction() as session:
                await self._mark_sent(session, seqs)
        except BaseException:
            self._acked = seqs + self._acked
            raise

    async def publish_pending(self, limit: int | None = None) -> int:
        """Publish one batch of unsent rows from the table; returns how many were acked."""
        if not self.messaging.connected:
            # Not even read: the reconnect wakes the relay.
            raise ConnectionError("not connected to NATS")
        if self.db.is_sqlite:
            return await self._publish_sqlite(limit or self.batch)
        return await self._publish_claimed(limit or self.batch)

    def _unsent(self, limit: int) -> Any:
        return (
            select(self.model.seq, self.model.event_id, self.model.subject, self.model.payload)
            .where(self.model.sent_at.is_(None))
            .order_by(self.model.seq)
            .limit(limit)
        )

    async def _count_unsent(self) -> int:
        async with self.db.reader() as session:
            query = select(func.count()).select_from(self.model).where(self.model.sent_at.is_(None))
            return int((await session.exec(query)).one())

    async def _publish_sqlite(self, limit: int) -> int:
        # One relay per SQLite file, so reading then marking needs no claim; publishing
        # outside the write lock keeps requests from waiting on the network.
        async with self.db.reader() as session:
            rows = (await session.exec(self._unsent(limit))).all()
        if not rows:
            return 0
        sent, error = await self._publish(rows)
        if sent:
            async with self.db.transaction() as session:
                await self._mark_sent(session, sent)
        if error:
            raise error
        return len(sent)

    async def _publish_claimed(self, limit: int) -> int:
        async with self.db.transaction() as session:
            rows = (await session.exec(self._unsent(limit).with_for_update(skip_locked=True))).all()
            if not rows:
                return 0
            sent, error = await self._publish(rows)
            if sent:
                await self._mark_sent(session, sent)
        if error:
            raise error
        return len(sent)

    async def _publish(self, rows: Any) -> tuple[list[int], Exception | None]:
        """Publish in order, pipelined; returns the seqs acknowledged before the first
        failure, and that failure."""
        if not self.messaging.connected:
            # Publishing now would only buffer in the client until the ack times out.
            return [], ConnectionError("not connected to NATS")
        acks = PipelinedAcks(self.messaging.lost)
        js = self.messaging.js
        traced = tracing.enabled()
        try:
            for _seq, event_id, subject, payload in rows:
                if traced:
                    acks.add(await self._publish_traced(subject, event_id, payload))
                    continue
                acks.add(
                    await js.publish_async(subject, payload, headers={"Nats-Msg-Id": event_id})
                )
        except Exception as exc:
            acks.refused(exc)
        acked = await acks.collect(self.PROBE_WAIT if self.failing else self.ACK_WAIT)
        sent = [row[0] for row in rows[:acked]]
        metrics.EVENTS_PUBLISHED.inc(len(sent))
        return sent, acks.error

    async def _publish_traced(self, subject: str, event_id: str, payload: bytes) -> Any:
        """The publish as a producer span in the trace the event was written in."""
        attributes = orjson.loads(payload)
        with tracing.event_span(
            self.messaging.settings.service_name,
            f"publish {subject}",
            "producer",
            attributes.get("traceparent"),
            attributes.get("tracestate"),
            **{"messaging.system": "nats", "messaging.destination.name": subject},
            **{"messaging.message.id": event_id},
        ):
            return await self.messaging.js.publish_async(
                subject, payload, headers={"Nats-Msg-Id": event_id}
            )

    async def _mark_sent(self, session: AsyncSession, seqs: list[int]) -> None:
        await session.exec(
            update(self.model).where(self.model.seq.in_(seqs)).values(sent_at=utcnow())
        )
