"""Records' use cases: the archive built from every service's events."""

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.records.models import ArchivedVehicle, TimelineEntry
from shared.auth import User
from shared.contracts import VehicleSnapshot
from shared.events import Contract
from shared.pagination import decode_cursor, encode_cursor
from shared.problems import NotFound


async def remember_vehicle(
    session: AsyncSession,
    branch: str,
    vehicle: VehicleSnapshot,
    customer_id: uuid.UUID,
    *,
    as_of: datetime,
) -> None:
    """Keep the newest description of the vehicle; an older event changes nothing."""
    card = await session.get(ArchivedVehicle, vehicle.id)
    if card is None:
        session.add(
            ArchivedVehicle(
                vehicle_id=vehicle.id,
                branch=branch,
                vin=vehicle.vin,
                plate=vehicle.plate,
                make=vehicle.make,
                model=vehicle.model,
                model_year=vehicle.model_year,
                customer_id=customer_id,
                as_of=as_of,
            )
        )
    elif as_of >= card.as_of:
        card.vin, card.plate, card.make = vehicle.vin, vehicle.plate, vehicle.make
        card.model, card.model_year = vehicle.model, vehicle.model_year
        card.customer_id, card.as_of = customer_id, as_of


async def append(
    session: AsyncSession,
    event: Contract,
    *,
    kind: str,
    branch: str,
    occurred_at: datetime,
    reference_id: uuid.UUID,
    vehicle_id: uuid.UUID | None = None,
    customer_id: uuid.UUID | None = None,
    summary: dict[str, Any] | None = None,
) -> None:
    """One entry per source event: a repeat of the same event adds nothing."""
    event_id = event.envelope.id
    exists = await session.exec(select(TimelineEntry.id).where(TimelineEntry.event_id == event_id))
    if exists.first() is not None:
        return
    session.add(
        TimelineEntry(
            event_id=event_id,
            kind=kind,
            branch=branch,
            occurred_at=occurred_at,
            reference_id=reference_id,
            vehicle_id=vehicle_id,
            customer_id=customer_id,
            summary=summary or {},
        )
    )


async def vehicle_timeline(
    session: AsyncSession,
    vehicle_id: uuid.UUID,
    by: User,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[ArchivedVehicle | None, list[TimelineEntry], str | None]:
    """Entries oldest first, in the order things happened (not the order events came)."""
    card = await session.get(ArchivedVehicle, vehicle_id)
    if card is not None and card.branch != by.branch:
        card = None
    query = select(TimelineEntry).where(
        TimelineEntry.vehicle_id == vehicle_id, TimelineEntry.branch == by.branch
    )
    if cursor is not None:
        at, entry_id = decode_cursor(cursor)
        query = query.where(
            (col(TimelineEntry.occurred_at) > at)
            | ((col(TimelineEntry.occurred_at) == at) & (col(TimelineEntry.id) > entry_id))
        )
    query = query.order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id)).limit(limit + 1)
    entries = list((await session.exec(query)).all())
    if card is None and not entries:
        raise NotFound(f"the archive holds nothing for vehicle {vehicle_id}")
    next_cursor = None
    if len(entries) > limit:
        entries = entries[:limit]
        next_cursor = encode_cursor(entries[-1].occurred_at, entries[-1].id)
    return card, entries, next_cursor


async def find_vehicles(session: AsyncSession, by: User, vin: str) -> list[ArchivedVehicle]:
    query = select(ArchivedVehicle).where(
        ArchivedVehicle.branch == by.branch, ArchivedVehicle.vin == vin.upper()
    )
    return list((await session.exec(query)).all())
