"""Events records consumes: everything that belongs in a vehicle's or customer's file."""

from sqlmodel.ext.asyncio.session import AsyncSession

from services.records import service
from shared.consumers import Subscribers
from shared.contracts import CustomerRegistered, IntakeOpened, RepairOrderOpened, VehicleRegistered

subscriber = Subscribers()


@subscriber(CustomerRegistered, durable="records__archive_customer")
async def archive_customer(event: CustomerRegistered, session: AsyncSession) -> None:
    await service.append(
        session,
        event,
        kind="customer.registered",
        branch=event.branch,
        occurred_at=event.registered_at,
        reference_id=event.customer.id,
        customer_id=event.customer.id,
        summary={"name": event.customer.name},
    )


@subscriber(VehicleRegistered, durable="records__archive_vehicle")
async def archive_vehicle(event: VehicleRegistered, session: AsyncSession) -> None:
    await service.remember_vehicle(
        session, event.branch, event.vehicle, event.customer_id, as_of=event.registered_at
    )
    await service.append(
        session,
        event,
        kind="vehicle.registered",
        branch=event.branch,
        occurred_at=event.registered_at,
        reference_id=event.vehicle.id,
        vehicle_id=event.vehicle.id,
        customer_id=event.customer_id,
        summary={"vin": event.vehicle.vin, "plate": event.vehicle.plate},
    )


@subscriber(IntakeOpened, durable="records__archive_intake")
async def archive_intake(event: IntakeOpened, session: AsyncSession) -> None:
    await service.remember_vehicle(
        session, event.branch, event.vehicle, event.customer.id, as_of=event.opened_at
    )
    await service.append(
        session,
        event,
        kind="intake.opened",
        branch=event.branch,
        occurred_at=event.opened_at,
        reference_id=event.intake_id,
        vehicle_id=event.vehicle.id,
        customer_id=event.customer.id,
        summary={
            "odometer_km": event.odometer_km,
            "concerns": event.concerns,
            "advisor": event.advisor,
        },
    )


@subscriber(RepairOrderOpened, durable="records__archive_repair_order")
async def archive_repair_order(event: RepairOrderOpened, session: AsyncSession) -> None:
    await service.append(
        session,
        event,
        kind="repair_order.opened",
        branch=event.branch,
        occurred_at=event.opened_at,
        reference_id=event.repair_order_id,
        vehicle_id=event.vehicle_id,
        customer_id=event.customer_id,
        summary={"number": event.number, "status": event.status, "intake_id": str(event.intake_id)},
    )
