"""Reception's use cases: change rows and add outbox events; flush, never commit."""

import uuid
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.reception import appointments, desk, file_releases
from services.reception import vin as vins
from services.reception.models import (
    AccountKind,
    Appointment,
    AppointmentStatus,
    Customer,
    CustomerCreate,
    CustomerPhone,
    CustomerUpdate,
    Intake,
    IntakeCreate,
    IntakeStatus,
    IntakeWalkaround,
    Vehicle,
    VehicleCreate,
)
from shared.auth import User
from shared.concurrency import check_if_match
from shared.contracts import (
    CustomerRegistered,
    CustomerSnapshot,
    CustomerUpdated,
    DamageMarkRef,
    IntakeInspected,
    IntakeOpened,
    VehicleRegistered,
    VehicleSnapshot,
)
from shared.events import utcnow
from shared.outbox import add_event
from shared.pagination import after, page
from shared.problems import Conflict, InvalidInput, NotFound
from shared.references import referenced
from shared.search import starts_with


def customer_snapshot(customer: Customer) -> CustomerSnapshot:
    return CustomerSnapshot(
        id=customer.id,
        name=customer.name,
        mobile=customer.mobile,
        preferred_channel=customer.preferred_channel,
        language=customer.language,
        contact_consent=customer.contact_consent,
    )


def vehicle_snapshot(vehicle: Vehicle) -> VehicleSnapshot:
    return VehicleSnapshot(
        id=vehicle.id,
        vin=vehicle.vin,
        plate=vehicle.plate,
        make=vehicle.make,
        model=vehicle.model,
        model_year=vehicle.model_year,
    )


async def register_customer(session: AsyncSession, data: CustomerCreate, by: User) -> Customer:
    customer = Customer.model_validate(data, update={"branch": by.branch})
    session.add(customer)
    numbers = [n for n in [customer.mobile, *customer.other_mobiles] if n]  # distinct: checked
    await session.flush()  # the customer row first: the numbers refer to it
    for number in numbers:
        session.add(CustomerPhone(customer_id=customer.id, number=number, branch=customer.branch))
    add_event(
        session,
        CustomerRegistered(
            branch=customer.branch,
            customer=customer_snapshot(customer),
            registered_at=customer.created_at,
        ),
        subject=customer.id,
    )
    return customer


async def get_customer(session: AsyncSession, customer_id: uuid.UUID, by: User) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.branch != by.branch:
        raise NotFound(f"customer {customer_id} not found")
    return customer


async def update_customer(
    session: AsyncSession,
    customer_id: uuid.UUID,
    data: CustomerUpdate,
    by: User,
    if_match: str | None,
) -> Customer:
    """Edit a customer's details (If-Match); the phone index follows the numbers and
    CustomerUpdated carries the customer as it is now."""
    customer = await get_customer(session, customer_id, by)
    check_if_match(if_match, customer.version)
    changes = data.model_dump(exclude_unset=True)
    mobile = changes.get("mobile", customer.mobile)
    others = changes.get("other_mobiles", customer.other_mobiles)
    account_kind = changes.get("account_kind", customer.account_kind)
    company = changes.get("company", customer.company)
    if account_kind != AccountKind.private and not company:
        raise InvalidInput("company", f"a {account_kind} account needs the company name")
    if mobile is None and others:
        raise InvalidInput("mobile", "a customer with further numbers keeps a main one")
    numbers = [n for n in [mobile, *others] if n]
    if len(set(numbers)) != len(numbers):
        raise InvalidInput("other_mobiles", "each number once, the main mobile not again")
    before = {n for n in [customer.mobile, *customer.other_mobiles] if n}
    if "name" in changes and changes["name"][:1] != customer.name[:1]:
        await session.exec(
            update(Vehicle)
            .where(col(Vehicle.customer_id) == customer.id)
            .values(owner_initial=changes["name"][:1])
        )
    for name, value in changes.items():
        setattr(customer, name, value)
    customer.updated_at = utcnow()
    session.add(customer)
    for number in before - set(numbers):
        gone = await session.get(CustomerPhone, (customer.id, number))
        if gone is not None:
            await session.delete(gone)
    for number in dict.fromkeys(n for n in numbers if n not in before):
        session.add(CustomerPhone(customer_id=customer.id, number=number, branch=customer.branch))
    await session.flush()
    add_event(
        session,
        CustomerUpdated(
            branch=customer.branch,
            customer=customer_snapshot(customer),
            mobiles=numbers,
            updated_by=by.id,
            updated_at=customer.updated_at,
        ),
        subject=customer.id,
    )
    return customer


async def list_customers(
    session: AsyncSession, by: User, *, q: str | None, limit: int, cursor: str | None
) -> tuple[list[Customer], str | None]:
    query = select(Customer).where(Customer.branch == by.branch)
    if q:
        query = query.where(or_(starts_with(col(Customer.name), q), col(Customer.mobile) == q))
    query = (
        query.where(after(Customer.created_at, Customer.id, cursor))
        .order_by(col(Customer.created_at).desc(), col(Customer.id).desc())
        .limit(limit + 1)
    )
    rows = list((await session.exec(query)).all())
    return page(rows, limit, "created_at")


async def register_vehicle(session: AsyncSession, data: VehicleCreate, by: User) -> Vehicle:
    try:
        decoded = vins.decode(data.vin)
    except vins.InvalidVin as exc:
        raise InvalidInput("vin", str(exc)) from exc
    owner = await referenced(session, Customer, data.customer_id, by, field="customer_id")
    existing = await session.exec(
        select(Vehicle.id).where(Vehicle.branch == by.branch, Vehicle.vin == decoded.vin)
    )
    if existing.first() is not None:
        raise Conflict(f"a vehicle with VIN {decoded.vin} is already registered")
    vehicle = Vehicle.model_validate(
        data,
        update={
            "branch": by.branch,
            "vin": decoded.vin,
            "vin_last6": decoded.vin[-6:],
            "make": decoded.manufacturer,
            "model_year": decoded.model_year,
            "country": decoded.country,
            "owner_initial": owner.name[:1],
        },
    )
    session.add(vehicle)
    await session.flush()  # the vehicle row first: its plate suffixes refer to it
    desk.index_plate(session, vehicle)
    add_event(
        session,
        VehicleRegistered(
            branch=vehicle.branch,
            customer_id=vehicle.customer_id,
            vehicle=vehicle_snapshot(vehicle),
            registered_at=vehicle.created_at,
        ),
        subject=vehicle.id,
    )
    return vehicle


async def get_vehicle(session: AsyncSession, vehicle_id: uuid.UUID, by: User) -> Vehicle:
    vehicle = await session.get(Vehicle, vehicle_id)
    if vehicle is None or vehicle.branch != by.branch:
        raise NotFound(f"vehicle {vehicle_id} not found")
    return vehicle


async def open_intake(session: AsyncSession, data: IntakeCreate, by: User) -> Intake:
    vehicle = await session.get(Vehicle, data.vehicle_id)
    if vehicle is None or vehicle.branch != by.branch:
        raise InvalidInput("vehicle_id", f"no vehicle {data.vehicle_id} in branch {by.branch}")
    customer = await session.get(Customer, vehicle.customer_id)
    assert customer is not None  # the foreign key guarantees it
    concerns = list(data.concerns)
    if data.appointment_id is not None:
        appointment = await _arrive(session, data.appointment_id, vehicle, by)
        # What the customer said when booking, unless the advisor writes it down afresh.
        concerns = concerns or list(appointment.concerns)
    reading = await desk.record_reading(
        session,
        vehicle,
        data.odometer_km,
        by,
        override_reason=data.odometer_override_reason,
        field="odometer_km",
    )
    intake = Intake(
        branch=by.branch,
        vehicle_id=vehicle.id,
        customer_id=customer.id,
        appointment_id=data.appointment_id,
        advisor=by.id,
        odometer_km=data.odometer_km,
        concerns=concerns,
    )
    reading.intake_id = intake.id
    session.add(intake)
    add_event(
        session,
        IntakeOpened(
            intake_id=intake.id,
            branch=intake.branch,
            opened_at=intake.opened_at,
            advisor=by.id,
            customer=customer_snapshot(customer),
            vehicle=vehicle_snapshot(vehicle),
            odometer_km=intake.odometer_km,
            concerns=intake.concerns,
            appointment_id=intake.appointment_id,
        ),
        subject=intake.id,
    )
    return intake


async def get_intake(session: AsyncSession, intake_id: uuid.UUID, by: User) -> Intake:
    intake = await session.get(Intake, intake_id)
    if intake is None or intake.branch != by.branch:
        raise NotFound(f"intake {intake_id} not found")
    return intake


async def _arrive(
    session: AsyncSession, appointment_id: uuid.UUID, vehicle: Vehicle, by: User
) -> Appointment:
    """An intake from an appointment marks the customer arrived."""
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None or appointment.branch != by.branch:
        raise InvalidInput("appointment_id", f"no appointment {appointment_id} in {by.branch}")
    if appointment.vehicle_id != vehicle.id:
        raise InvalidInput("appointment_id", "the appointment is for another vehicle")
    if appointment.status != AppointmentStatus.booked:
        raise Conflict(f"appointment {appointment_id} is {appointment.status}, not booked")
    appointment.status = AppointmentStatus.arrived
    appointment.updated_at = utcnow()
    session.add(appointment)
    add_event(session, appointments.closed_event(appointment, by), subject=appointment.id)
    return appointment


INTAKE_TRANSITIONS: dict[IntakeStatus, frozenset[IntakeStatus]] = {
    IntakeStatus.open: frozenset({IntakeStatus.completed, IntakeStatus.cancelled}),
    IntakeStatus.completed: frozenset(),
    IntakeStatus.cancelled: frozenset(),
}


async def _editable_intake(
    session: AsyncSession, intake_id: uuid.UUID, by: User, if_match: str | None
) -> Intake:
    intake = await get_intake(session, intake_id, by)
    check_if_match(if_match, intake.version)
    if intake.status != IntakeStatus.open:
        raise Conflict(f"intake {intake_id} is {intake.status}; only an open intake changes")
    return intake


async def record_walkaround(
    session: AsyncSession,
    intake_id: uuid.UUID,
    data: IntakeWalkaround,
    by: User,
    if_match: str | None,
) -> Intake:
    intake = await _editable_intake(session, intake_id, by, if_match)
    before = file_releases.intake_uses(intake)
    inspected_before = _inspection(intake)
    fields = data.model_dump(exclude_unset=True, mode="json")
    for name in ("fuel_level_pct", "charge_level_pct", "checklist", "damage_marks", "concerns"):
        if name in fields and fields[name] is not None:
            setattr(intake, name, fields[name])
    if data.valuables_acknowledged is not None:
        intake.valuables_acknowledged_at = utcnow() if data.valuables_acknowledged else None
    if data.signature_file_id is not None:
        intake.signature_file_id = data.signature_file_id
    session.add(intake)
    await file_releases.schedule(session, intake, before)
    await session.flush()
    if _inspection(intake) != inspected_before:
        # After the flush: the event carries the version this change gave the intake.
        await _add_inspected(session, intake, by)
    return intake


def _inspection(intake: Intake) -> tuple[Any, ...]:
    """What the archive keeps of the walk-around: the damage marks and the signature."""
    return (
        [DamageMarkRef.model_validate(mark) for mark in intake.damage_marks],
        intake.signature_file_id,
    )


async def _add_inspected(session: AsyncSession, intake: Intake, by: User) -> None:
    vehicle = await session.get(Vehicle, intake.vehicle_id)
    assert vehicle is not None  # the foreign key guarantees it
    marks, signature_file_id = _inspection(intake)
    add_event(
        session,
        IntakeInspected(
            intake_id=intake.id,
            branch=intake.branch,
            version=intake.version,
            customer_id=intake.customer_id,
            vehicle_id=intake.vehicle_id,
            vin=vehicle.vin,
            damage_marks=marks,
            signature_file_id=signature_file_id,
            inspected_by=by.id,
            inspected_at=utcnow(),
        ),
        subject=intake.id,
    )


async def move_intake(
    session: AsyncSession,
    intake_id: uuid.UUID,
    to: IntakeStatus,
    by: User,
    if_match: str | None,
) -> Intake:
    intake = await get_intake(session, intake_id, by)
    check_if_match(if_match, intake.version)
    if to not in INTAKE_TRANSITIONS[intake.status]:
        raise Conflict(f"an intake that is {intake.status} cannot become {to}")
    if to == IntakeStatus.completed:
        if intake.valuables_acknowledged_at is None:
            raise Conflict("the customer has not acknowledged the valuables reminder")
        if intake.signature_file_id is None:
            raise Conflict("the customer's signature is missing")
        intake.completed_at = utcnow()
    intake.status = to
    session.add(intake)
    await session.flush()
    return intake
