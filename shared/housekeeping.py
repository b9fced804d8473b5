"""Housekeeping every service runs: sent outbox rows, old inbox rows and expired
idempotency records are deleted so the tables stay small; audit entries are kept for
their retention period (`audit_retention_days`), then deleted."""

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from shared.db import Database
from shared.events import utcnow

log = logging.getLogger(__name__)


async def prune(
    db: Database,
    *,
    outbox: Any,
    inbox: Any,
    idempotency: Any,
    outbox_keep: timedelta,
    inbox_keep: timedelta,
    idempotency_keep: timedelta,
    audit: Any = None,
    audit_keep: timedelta | None = None,
) -> dict[str, int]:
    """One pass; returns how many rows of each kind were deleted. Run hourly, a pass
    deletes about an hour's rows, so one statement per table is short."""
    now = utcnow()
    removed = {}
    tables = [
        ("outbox", outbox.sent_at, outbox_keep),
        ("inbox", inbox.handled_at, inbox_keep),
        ("idempotency", idempotency.created_at, idempotency_keep),
    ]
    if audit is not None and audit_keep is not None:
        tables.append(("audit", audit.at, audit_keep))
    async with db.transaction() as session:
        for name, column, keep in tables:
            result = await session.exec(delete(column.class_).where(column < now - keep))
            removed[name] = result.rowcount or 0
    return removed


async def housekeeping_job(runtime: Any) -> None:
    settings, spec = runtime.settings, runtime.spec
    while True:
        try:
            removed = await prune(
                runtime.db,
                outbox=spec.outbox_model,
                inbox=spec.inbox_model,
                idempotency=spec.idempotency_model,
                outbox_keep=timedelta(days=settings.outbox_keep_days),
                inbox_keep=timedelta(days=settings.inbox_keep_days),
                idempotency_keep=timedelta(hours=settings.idempotency_keep_hours),
                audit=spec.audit_model,
                audit_keep=timedelta(days=settings.audit_retention_days),
            )
            if any(removed.values()):
                log.info("housekeeping removed %s", removed)
        except Exception:
            log.exception("housekeeping failed; trying again later")
        await asyncio.sleep(settings.housekeeping_interval)
