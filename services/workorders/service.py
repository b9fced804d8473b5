"""Workorders' use cases: change rows and add outbox events; flush, never commit."""

import uuid

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.workorders.models import RepairOrder, RepairOrderNumber, RepairOrderStatus
from shared.auth import User
from shared.contracts import IntakeOpened, RepairOrderOpened
from shared.outbox import add_event
from shared.pagination import after, page
from shared.problems import NotFound


async def next_number(session: AsyncSession, branch: str, year: int) -> str:
    """Atomically take the next readable number of the branch for the year."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = RepairOrderNumber.__table__  # type: ignore[attr-defined]
    statement = (
        insert(table)
        .values(branch=branch, year=year, last=1)
        .on_conflict_do_update(
            index_elements=["branch", "year"], set_={"last": table.c["last"] + 1}
        )
        .returning(table.c["last"])
    )
    last = (await session.execute(statement)).scalar_one()
    return f"RO-{year}-{last:06d}"


async def open_draft_from_intake(session: AsyncSession, event: IntakeOpened) -> RepairOrder:
    """A draft repair order for the intake; the same intake never gets two."""
    existing = (
        await session.exec(select(RepairOrder).where(RepairOrder.intake_id == event.intake_id))
    ).first()
    if existing is not None:
        return existing
    order = RepairOrder(
        number=await next_number(session, event.branch, event.opened_at.year),
        branch=event.branch,
        intake_id=event.intake_id,
        customer_id=event.customer.id,
        vehicle_id=event.vehicle.id,
        vin=event.vehicle.vin,
        plate=event.vehicle.plate,
        customer_name=event.customer.name,
        advisor=event.advisor,
        odometer_km=event.odometer_km,
        status=RepairOrderStatus.draft,
    )
    session.add(order)
    add_event(
        session,
        RepairOrderOpened(
            repair_order_id=order.id,
            number=order.number,
            branch=order.branch,
            intake_id=order.intake_id,
            customer_id=order.customer_id,
            vehicle_id=order.vehicle_id,
            vin=order.vin,
            status=order.status,
            opened_at=order.opened_at,
        ),
        subject=order.id,
    )
    return order


async def get_repair_order(session: AsyncSession, order_id: uuid.UUID, by: User) -> RepairOrder:
    order = await session.get(RepairOrder, order_id)
    if order is None or order.branch != by.branch:
        raise NotFound(f"repair order {order_id} not found")
    return order


async def list_repair_orders(
    session: AsyncSession,
    by: User,
    *,
    intake_id: uuid.UUID | None,
    status: RepairOrderStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[RepairOrder], str | None]:
    query = select(RepairOrder).where(RepairOrder.branch == by.branch)
    if intake_id is not None:
        query = query.where(RepairOrder.intake_id == intake_id)
    if status is not None:
        query = query.where(RepairOrder.status == status)
    query = (
        query.where(after(RepairOrder.opened_at, RepairOrder.id, cursor))
        .order_by(col(RepairOrder.opened_at).desc(), col(RepairOrder.id).desc())
        .limit(limit + 1)
    )
    return page(list((await session.exec(query)).all()), limit, "opened_at")
