"""The sender of customer messages: a background job that leases due messages, sends each
through its channel's providers in the branch's order (a failing one passes it to the
next), and keeps the provider's answer, or waits longer after each failed round.

Exactly once: a message is leased before it is sent (no other sender touches it until
the lease runs out) and marked sent in its own transaction as soon as the provider took
it. Only a crash between the provider's answer and that commit sends it again, with the
same request id (`channels`), by which the provider's report and a person can tell."""

import asyncio
import contextlib
import itertools
import logging
import uuid
from asyncio import FIRST_COMPLETED
from datetime import timedelta

import httpx
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.followup import messages
from services.followup.channels import Channels, Delivery, Outgoing, ProviderFailed
from services.followup.config import Settings
from services.followup.message_rules import mask_email, mask_phone
from services.followup.models import Contact, CustomerMessage
from shared.db import Database
from shared.service import Runtime

log = logging.getLogger(__name__)


def _masked(channel: str, recipient: str) -> str:
    return mask_email(recipient) if channel == "email" else mask_phone(recipient)


async def _deliver(
    channels: Channels, message: Outgoing
) -> tuple[Delivery | None, list[ProviderFailed]]:
    failures: list[ProviderFailed] = []
    for provider in channels.providers(message.branch, message.channel):
        try:
            return await provider.send(message), failures
        except Exception as error:
            failure = (
                error
                if isinstance(error, ProviderFailed)
                else ProviderFailed(provider.provider, "error", repr(error))
            )
            failures.append(failure)
            log.warning(
                "message %s to %s: %s failed (%s%s), trying the next provider",
                message.message_id,
                _masked(message.channel, message.recipient),
                failure.provider,
                failure.status,
                ", rate limited" if failure.limited else "",
            )
    return None, failures


async def _leased(
    db: Database, ids: list[uuid.UUID]
) -> tuple[list[Outgoing], dict[uuid.UUID, str]]:
    """The leased messages, and why any of them must not go out (consent withdrawn or
    opted out since it was queued)."""
    async with db.reader() as session:
        rows = list(
            (
                await session.exec(select(CustomerMessage).where(col(CustomerMessage.id).in_(ids)))
            ).all()
        )
        customers = {row.customer_id for row in rows}
        refused = set(
            (
                await session.exec(
                    select(Contact.customer_id).where(
                        col(Contact.customer_id).in_(customers),
                        col(Contact.contact_consent).is_(False),
                    )
                )
            ).all()
        )
        stopped: dict[str, set[str]] = {}
        for channel in {row.channel for row in rows}:
            recipients = [row.recipient for row in rows if row.channel == channel]
            stopped[channel] = await messages.opted_out(session, channel, recipients)
        suppress: dict[uuid.UUID, str] = {}
        outgoing = []
        for row in rows:
            if row.customer_id in refused:
                suppress[row.id] = "contact refused"
            elif row.recipient in stopped.get(row.channel, set()):
                suppress[row.id] = "opted out"
            else:
                outgoing.append(
                    Outgoing(
                        message_id=row.id,
                        branch=row.branch,
                        channel=row.channel,
                        recipient=row.recipient,
                        template=row.template,
                        language=row.language,
                        params=dict(row.params),
                    )
                )
        return outgoing, suppress


Outcome = tuple[Outgoing, Delivery | None, list[ProviderFailed]]


class _Recorder:
    """Keeps the providers' answers, many per transaction: each caller waits until its
    own answer is committed, and whoever commits takes every answer waiting by then (a
    commit per message would make the database's one writer the sender's pace)."""

    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings
        self.waiting: list[tuple[Outcome, asyncio.Future[None]]] = []
        self.lock = asyncio.Lock()

    async def record(
        self, message: Outgoing, delivery: Delivery | None, failures: list[ProviderFailed]
    ) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(((message, delivery, failures), done))
        async with self.lock:
            if not done.done():
                batch, self.waiting = self.waiting, []
                try:
                    async with self.db.transaction() as session:
                        for outcome, _ in batch:
                            await self._write(session, *outcome)
                except Exception as error:
                    for _, future in batch:
                        future.set_exception(error)
                else:
                    for _, future in batch:
                        future.set_result(None)
        await done

    async def _write(
        self,
        session: AsyncSession,
        message: Outgoing,
        delivery: Delivery | None,
        failures: list[ProviderFailed],
    ) -> None:
        settings = self.settings
        if delivery is not None:
            await messages.record_sent(
                session,
                message.message_id,
                provider=delivery.provider,
                provider_message_id=delivery.provider_message_id,
                provider_status=delivery.provider_status,
                now=settings.clock(),
            )
            return
        last = failures[-1] if failures else None
        status = await messages.record_failure(
            session,
            message.message_id,
            provider=last.provider if last else "none",
            provider_status=last.status if last else "no_provider",
            error="; ".join(str(f) for f in failures) or "no provider configured",
            now=settings.clock(),
            max_attempts=settings.message_max_attempts,
            base=settings.message_retry_base,
            cap=settings.message_retry_cap,
        )
        if status == "failed":
            log.error(
                "message %s to %s given up after its last attempt",
                message.message_id,
                _masked(message.channel, message.recipient),
            )


async def lease_batch(db: Database, settings: Settings) -> tuple[list[Outgoing], int]:
    """Lease up to `message_batch` due messages; those whose customer refused contact or
    opted out since are marked suppressed. Returns what to send and how many were leased."""
    async with db.transaction() as session:
        ids = await messages.lease_due(
            session,
            now=settings.clock(),
            lease=timedelta(seconds=settings.message_lease_seconds),
            limit=settings.message_batch,
        )
    if not ids:
        return [], 0
    outgoing, suppress = await _leased(db, ids)
    if suppress:
        async with db.transaction() as session:
            for message_id, reason in suppress.items():
                await messages.record_suppressed(session, message_id, reason=reason)
    return outgoing, len(ids)


class Sender:
    """Sends leased messages through their providers. Its gate covers a send and the
    commit of its answer, across batches: at most `message_concurrency` messages are ever
    at a provider without their answer kept, which bounds what a crash sends again."""

    def __init__(self, db: Database, settings: Settings, channels: Channels | list[Channels]):
        self.channels = channels if isinstance(channels, list) else [channels]
        self.turn = itertools.count()
        self.gate = asyncio.Semaphore(settings.message_concurrency)
        self.recorder = _Recorder(db, settings)

    async def one(self, message: Outgoing) -> None:
        async with self.gate:
            channels = self.channels[next(self.turn) % len(self.channels)]
            delivery, failures = await _deliver(channels, message)
            await self.recorder.record(message, delivery, failures)

    async def send(self, outgoing: list[Outgoing]) -> None:
        await asyncio.gather(*(self.one(message) for message in outgoing))


async def send_due(db: Database, settings: Settings, channels: Channels) -> int:
    """One batch: lease, send, record. Returns how many messages were leased."""
    outgoing, leased = await lease_batch(db, settings)
    await Sender(db, settings, channels).send(outgoing)
    return leased


# Batches being sent at once by one process: the next is leased while the last one's
# slowest messages finish, so a slow answer does not hold the whole pace.
BATCHES_IN_FLIGHT = 2
POOL_SIZE = 5
POOL = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)


async def sender_job(runtime: Runtime) -> None:
    """Started with the app: sends due messages until the app stops."""
    settings = runtime.settings
    assert isinstance(settings, Settings)
    running: set[asyncio.Task[None]] = set()
    async with contextlib.AsyncExitStack() as stack:
        # Several small connection pools rather than one large one: httpcore looks at
        # every connection of its pool for each request, which at 50 connections cost
        # more CPU than the request itself.
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(limits=POOL))
            for _ in range(-(-settings.message_concurrency // POOL_SIZE))
        ]
        sender = Sender(runtime.db, settings, [Channels(settings, c) for c in clients])
        try:
            while True:
                while len(running) >= BATCHES_IN_FLIGHT:
                    _, running = await asyncio.wait(running, return_when=FIRST_COMPLETED)
                leased = 0
                try:
                    outgoing, leased = await lease_batch(runtime.db, settings)
                    if outgoing:
                        task = asyncio.create_task(sender.send(outgoing))
                        task.add_done_callback(_log_failure)
                        running.add(task)
                except Exception:
                    log.exception("customer messages: leasing failed; retrying on the next pass")
                if leased < settings.message_batch:
                    await asyncio.sleep(settings.message_interval)
        finally:
            for task in running:
                task.cancel()


def _log_failure(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("customer messages: a batch failed", exc_info=task.exception())
