"""The desk's lookups and vehicle history: search, odometer readings, owner changes."""

import uuid
from typing import Any

from sqlalchemy import and_
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reception import vin as vins
from services.reception.models import (
    Customer,
    CustomerPhone,
    DeskHit,
    OdometerReading,
    OwnerChange,
    PlateSuffix,
    Vehicle,
    VinCheck,
)
from shared.auth import User
from shared.contracts import (
    CustomerSnapshot,
    CustomerUpdated,
    VehicleOwnerChanged,
    VehicleSnapshot,
)
from shared.events import utcnow
from shared.outbox import add_event
from shared.pagination import after, decode_cursor, page
from shared.problems import Conflict, InvalidInput, NotFound
from shared.search import contains


async def check_vin(session: AsyncSession, by: User, raw: str) -> VinCheck:
    """What registering this VIN would say, before the customer's details are typed."""
    try:
        decoded = vins.decode(raw.strip().upper())
    except vins.InvalidVin as exc:
        raise InvalidInput("vin", str(exc)) from exc
    known = await session.exec(
        select(Vehicle.id).where(Vehicle.branch == by.branch, Vehicle.vin == decoded.vin)
    )
    return VinCheck(
        vin=decoded.vin,
        manufacturer=decoded.manufacturer,
        country=decoded.country,
        model_year=decoded.model_year,
        registered_vehicle_id=known.first(),
    )


async def _vehicle(
    session: AsyncSession, vehicle_id: uuid.UUID, by: User, *, for_update: bool = False
) -> Vehicle:
    vehicle = await session.get(Vehicle, vehicle_id, with_for_update=for_update or None)
    if vehicle is None or vehicle.branch != by.branch:
        raise NotFound(f"vehicle {vehicle_id} not found")
    return vehicle


async def record_reading(
    session: AsyncSession,
    vehicle: Vehicle,
    km: int,
    by: User,
    *,
    override_reason: str | None = None,
    intake_id: uuid.UUID | None = None,
    field: str = "km",
) -> OdometerReading:
    """A reading lower than the last one is refused unless a reason says why."""
    last = (
        await session.exec(
            select(OdometerReading)
            .where(OdometerReading.vehicle_id == vehicle.id)
            .order_by(col(OdometerReading.read_at).desc(), col(OdometerReading.id).desc())
            .limit(1)
        )
    ).first()
    if last is not None and km < last.km and not override_reason:
        raise InvalidInput(
            field,
            f"{km} km is lower than the last reading ({last.km} km on "
            f"{last.read_at.date().isoformat()}); give a reason to record it anyway",
            last_km=last.km,
        )
    reading = OdometerReading(
        vehicle_id=vehicle.id,
        branch=vehicle.branch,
        km=km,
        intake_id=intake_id,
        override_reason=override_reason,
        recorded_by=by.id,
    )
    session.add(reading)
    return reading


async def add_reading(
    session: AsyncSession,
    vehicle_id: uuid.UUID,
    km: int,
    override_reason: str | None,
    by: User,
) -> OdometerReading:
    vehicle = await _vehicle(session, vehicle_id, by)
    return await record_reading(session, vehicle, km, by, override_reason=override_reason)


async def readings(
    session: AsyncSession, vehicle_id: uuid.UUID, by: User, *, limit: int, cursor: str | None
) -> tuple[list[OdometerReading], str | None]:
    await _vehicle(session, vehicle_id, by)
    rows = (
        await session.exec(
            select(OdometerReading)
            .where(OdometerReading.vehicle_id == vehicle_id)
            .where(after(OdometerReading.read_at, OdometerReading.id, cursor))
            .order_by(col(OdometerReading.read_at).desc(), col(OdometerReading.id).desc())
            .limit(limit + 1)
        )
    ).all()
    return page(list(rows), limit, "read_at")


async def change_owner(
    session: AsyncSession, vehicle_id: uuid.UUID, customer_id: uuid.UUID, reason: str, by: User
) -> OwnerChange:
    # Held to the commit: a second change of the same car at the same moment waits and
    # then starts from this one's buyer, so the history stays one chain.
    vehicle = await _vehicle(session, vehicle_id, by, for_update=True)
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.branch != by.branch:
        raise InvalidInput("customer_id", f"no customer {customer_id} in branch {by.branch}")
    if vehicle.customer_id == customer.id:
        raise Conflict(f"customer {customer_id} already owns vehicle {vehicle_id}")
    change = OwnerChange(
        vehicle_id=vehicle.id,
        branch=vehicle.branch,
        from_customer_id=vehicle.customer_id,
        to_customer_id=customer.id,
        reason=reason,
        changed_by=by.id,
    )
    vehicle.customer_id = customer.id
    vehicle.owner_initial = customer.name[:1]
    session.add(vehicle)
    session.add(change)
    add_event(
        session,
        VehicleOwnerChanged(
            branch=vehicle.branch,
            vehicle=VehicleSnapshot(
                id=vehicle.id,
                vin=vehicle.vin,
                plate=vehicle.plate,
                make=vehicle.make,
                model=vehicle.model,
                model_year=vehicle.model_year,
            ),
            previous_customer_id=change.from_customer_id,
            customer_id=customer.id,
            reason=reason,
            changed_by=by.id,
            changed_at=change.changed_at,
        ),
        subject=vehicle.id,
    )
    return change


async def owner_history(
    session: AsyncSession, vehicle_id: uuid.UUID, by: User
) -> list[OwnerChange]:
    await _vehicle(session, vehicle_id, by)
    rows = await session.exec(
        select(OwnerChange)
        .where(OwnerChange.vehicle_id == vehicle_id)
        .order_by(col(OwnerChange.changed_at), col(OwnerChange.id))
        .limit(500)
    )
    return list(rows.all())


async def add_mobile(
    session: AsyncSession, customer_id: uuid.UUID, number: str, by: User
) -> Customer:
    """Another number the customer answers on; adding one already known changes nothing."""
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.branch != by.branch:
        raise NotFound(f"customer {customer_id} not found")
    if number == customer.mobile or number in customer.other_mobiles:
        return customer
    if len(customer.other_mobiles) >= 5:
        raise InvalidInput("mobile", "a customer keeps at most five further numbers")
    if customer.mobile is None:
        customer.mobile = number
    else:
        customer.other_mobiles = [*customer.other_mobiles, number]
    session.add(customer)
    session.add(CustomerPhone(customer_id=customer.id, number=number, branch=customer.branch))
    customer.updated_at = utcnow()
    await session.flush()
    add_event(
        session,
        CustomerUpdated(
            branch=customer.branch,
            customer=CustomerSnapshot(
                id=customer.id,
                name=customer.name,
                mobile=customer.mobile,
                preferred_channel=customer.preferred_channel,
                language=customer.language,
                contact_consent=customer.contact_consent,
            ),
            mobiles=[n for n in [customer.mobile, *customer.other_mobiles] if n],
            updated_by=by.id,
            updated_at=customer.updated_at,
        ),
        subject=customer.id,
    )
    return customer


async def customer_vehicles(
    session: AsyncSession, customer_id: uuid.UUID, by: User, *, limit: int, cursor: str | None
) -> tuple[list[Vehicle], str | None]:
    """The vehicles a customer (or a company's or fleet's account) owns now, newest first,
    a page at a time (a fleet's can run to thousands)."""
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.branch != by.branch:
        raise NotFound(f"customer {customer_id} not found")
    rows = await session.exec(
        select(Vehicle)
        .where(Vehicle.customer_id == customer_id, after(Vehicle.created_at, Vehicle.id, cursor))
        .order_by(col(Vehicle.created_at).desc(), col(Vehicle.id).desc())
        .limit(limit + 1)
    )
    return page(list(rows.all()), limit, "created_at")


# Shorter partial plates match too many vehicles for an index to help: they are matched
# by walking the branch's vehicles newest first until a page is full.
SUFFIX_MIN = 3


def plate_suffixes(plate: str) -> list[str]:
    return [plate[i:] for i in range(len(plate) - SUFFIX_MIN + 1)]


def index_plate(session: AsyncSession, vehicle: Vehicle) -> None:
    """Make the vehicle findable by any part of its plate (three characters or more)."""
    for suffix in dict.fromkeys(plate_suffixes(vehicle.plate or "")):
        session.add(PlateSuffix(vehicle_id=vehicle.id, suffix=suffix, branch=vehicle.branch))


# A plate part or name prefix matching this many rows or more (a common surname alone) is
# served by walking the vehicles newest first: the page fills within (page × vehicles ÷
# matches) rows. Fewer matches are read from their index and sorted. Both cost about the
# same where matches ≈ √(page × vehicles): about a thousand at 100,000 vehicles.
COMMON_PREFIX = 1000


async def _plate_condition(session: AsyncSession, branch: str, part: str) -> Any:
    """Any part of a plate is the start of one of its suffixes: a range on the suffix
    index, when the part is rare enough to sort its matches. A short or common part
    (`COMMON_PREFIX` matches or more) walks the vehicles newest first with LIKE."""
    if len(part) >= SUFFIX_MIN:
        matching = select(PlateSuffix.vehicle_id).where(
            PlateSuffix.branch == branch,
            col(PlateSuffix.suffix) >= part,
            col(PlateSuffix.suffix) < part + "\U0010ffff",
        )
        if await _fewer_than_common(session, matching):
            return col(Vehicle.id).in_(matching)
    return contains(col(Vehicle.plate), part)


async def _fewer_than_common(session: AsyncSession, matching: Any) -> bool:
    """Whether the query has fewer rows than COMMON_PREFIX (reads at most that many)."""
    count = select(func.count()).select_from(matching.limit(COMMON_PREFIX).subquery())
    return bool((await session.exec(count)).one() < COMMON_PREFIX)


async def _name_condition(session: AsyncSession, branch: str, prefix: str) -> Any:
    """A surname alone is an equality on the vehicle's `owner_initial`: its index
    `(branch, owner_initial, created_at, id)` gives the matches newest first, so a page
    reads its own rows and no more. A longer prefix is a range on (branch, name): exact in
    byte order, which SQLite uses and the column's "C" collation gives on PostgreSQL (LIKE
    would not use the index on SQLite). When that range is common, the vehicles of the
    surname are walked newest first instead, checking the rest of the name."""
    if len(prefix) == 1:
        return col(Vehicle.owner_initial) == prefix
    in_range = and_(
        col(Customer.branch) == branch,
        col(Customer.name) >= prefix,
        col(Customer.name) < prefix + "\U0010ffff",
    )
    if await _fewer_than_common(session, select(Customer.id).where(in_range)):
        return in_range
    return and_(
        col(Vehicle.owner_initial) == prefix[:1],
        func.substr(Customer.name, 1, len(prefix)) == prefix,
    )


async def search(
    session: AsyncSession,
    by: User,
    *,
    plate: str | None,
    vin_last6: str | None,
    phone: str | None,
    name: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[DeskHit], str | None]:
    """Vehicles with their owners, newest first; every given filter must match."""
    if not any((plate, vin_last6, phone, name)):
        raise InvalidInput("q", "give a plate, the last six of the VIN, a phone or a name")
    query = (
        select(Vehicle, Customer)
        .join(Customer, col(Customer.id) == col(Vehicle.customer_id))
        .where(Vehicle.branch == by.branch)
    )
    if plate:
        query = query.where(await _plate_condition(session, by.branch, plate.strip().upper()))
    if vin_last6:
        query = query.where(Vehicle.vin_last6 == vin_last6.strip().upper())
    if phone:
        query = query.where(
            col(Customer.id).in_(
                select(CustomerPhone.customer_id).where(
                    CustomerPhone.branch == by.branch, CustomerPhone.number == phone.strip()
                )
            )
        )
    if name:
        query = query.where(await _name_condition(session, by.branch, name.strip()))
    if cursor:
        # Implied by the cursor condition, but written as a plain bound so that PostgreSQL
        # starts the walk at the cursor instead of filtering the newer rows away.
        query = query.where(col(Vehicle.created_at) <= decode_cursor(cursor)[0])
    query = (
        query.where(after(Vehicle.created_at, Vehicle.id, cursor))
        .order_by(col(Vehicle.created_at).desc(), col(Vehicle.id).desc())
        .limit(limit + 1)
    )
    hits = [
        DeskHit(
            vehicle_id=vehicle.id,
            vin=vehicle.vin,
            plate=vehicle.plate,
            make=vehicle.make,
            model=vehicle.model,
            customer_id=customer.id,
            customer_name=customer.name,
            mobile=customer.mobile,
            created_at=vehicle.created_at,
        )
        for vehicle, customer in (await session.exec(query)).all()
    ]
    return page(hits, limit, "created_at", key="vehicle_id")
