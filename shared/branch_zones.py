"""A branch's time zone as the branch directory says it (`reception.branch.changed.v1`),
for the services that count a branch's days: each keeps the zones it has heard of in its
own `branch_zone` table and answers `zone_of` from them, falling back to its settings for a
branch the directory has not announced yet.

`zone_of` is asked synchronously in many places (timers, reports, pages), so the table is
mirrored in memory: the handler sets the zone in its process at once, and every process
reloads the table every `branch_zone_refresh_seconds` (other replicas of the service see a
change within that time) and at start."""

import asyncio
import logging
from typing import Any

from sqlalchemy import String
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.consumers import Subscribers
from shared.contracts.reception import BranchChanged
from shared.db import Database
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


class BranchZoneColumns(SQLModel):
    """The columns of a service's `branch_zone` table (a base of its own table class)."""

    branch: str = Field(sa_type=String(32), primary_key=True)
    time_zone: str = Field(sa_type=String(64))
    version: int


async def keep_zone(
    session: AsyncSession, model: Any, event: BranchChanged, settings: ServiceSettings
) -> None:
    """Record the branch's zone unless a newer version is already kept (events may come
    twice or out of order)."""
    row = await session.get(model, event.branch, with_for_update=True)
    if row is not None and row.version >= event.version:
        return
    if row is None:
        session.add(model(branch=event.branch, time_zone=event.time_zone, version=event.version))
    else:
        row.time_zone, row.version = event.time_zone, event.version
    await session.flush()
    settings.directory_zones[event.branch] = event.time_zone


async def load_zones(db: Database, model: Any) -> dict[str, str]:
    async with db.reader() as session:
        rows = (await session.exec(select(model.branch, model.time_zone))).all()
    return {branch: zone for branch, zone in rows}


def zones_job(model: Any) -> Any:
    """Background job: the table mirrored into `settings.directory_zones`."""

    async def branch_zones(runtime: Any) -> None:
        settings: ServiceSettings = runtime.settings
        while True:
            try:
                zones = await load_zones(runtime.db, model)
                settings.directory_zones.clear()
                settings.directory_zones.update(zones)
            except Exception:
                log.exception("branch zones not reloaded; trying again later")
            await asyncio.sleep(settings.branch_zone_refresh_seconds)

    return branch_zones


def with_branch_zones(
    base: Subscribers, *, service: str, model: Any, settings: ServiceSettings
) -> Subscribers:
    """`base`'s handlers and one more, bound to this app's settings: the branch's zone kept
    from `reception.branch.changed.v1` (consumer `<service>__branch_zone`)."""
    subscriber = Subscribers()
    subscriber.handlers = list(base.handlers)

    @subscriber(BranchChanged, durable=f"{service}__branch_zone")
    async def branch_zone(event: BranchChanged, session: AsyncSession) -> None:
        await keep_zone(session, model, event, settings)

    return subscriber
