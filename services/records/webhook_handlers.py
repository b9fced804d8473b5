"""Events that become ERP webhook messages: each queues its deliveries in the handler's
transaction, so a message is queued exactly when the event is consumed."""

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.records import webhook_service
from services.records.handlers import subscriber
from services.records.webhook_models import ErpInvoice, EventType
from shared.contracts import (
    CustomerRegistered,
    CustomerUpdated,
    RepairOrderSettled,
    VehicleOwnerChanged,
    VehicleRegistered,
)


def invoice_payload(event: RepairOrderSettled) -> dict[str, Any]:
    return event.model_dump(mode="json")


def parts_payload(event: RepairOrderSettled) -> dict[str, Any] | None:
    parts = [line for line in event.lines if line.kind == "part"]
    if not parts:
        return None
    return {
        "repair_order_id": str(event.repair_order_id),
        "number": event.number,
        "invoice_number": event.invoice_number,
        "branch": event.branch,
        "vehicle_id": str(event.vehicle_id),
        "vin": event.vin,
        "currency": event.currency,
        "settled_at": event.settled_at.isoformat(),
        "parts": [
            {
                "line_id": str(line.line_id),
                "part_number": line.part_number,
                "description": line.description,
                "quantity": str(line.quantity),
                "unit_price": str(line.unit_price),
                "net": str(line.net),
                "tax_rate": str(line.tax_rate),
                "pay_type": line.pay_type,
            }
            for line in parts
        ],
    }


@subscriber(RepairOrderSettled, durable="records__webhook_invoice")
async def queue_invoice(event: RepairOrderSettled, session: AsyncSession) -> None:
    # Kept so that an ERP payment naming only the invoice finds its repair order.
    if await session.get(ErpInvoice, (event.branch, event.invoice_number)) is None:
        session.add(
            ErpInvoice(
                branch=event.branch,
                invoice_number=event.invoice_number,
                repair_order_id=event.repair_order_id,
            )
        )
    await webhook_service.enqueue(
        session,
        branch=event.branch,
        event_type=EventType.invoice_settled,
        occurred_at=event.settled_at,
        data=invoice_payload(event),
        source_event_id=event.envelope.id,
    )
    parts = parts_payload(event)
    if parts is not None:
        await webhook_service.enqueue(
            session,
            branch=event.branch,
            event_type=EventType.parts_used,
            occurred_at=event.settled_at,
            data=parts,
            source_event_id=event.envelope.id,
        )


@subscriber(CustomerRegistered, durable="records__webhook_customer")
async def queue_customer(event: CustomerRegistered, session: AsyncSession) -> None:
    customer = event.customer
    await webhook_service.enqueue(
        session,
        branch=event.branch,
        event_type=EventType.customer_registered,
        occurred_at=event.registered_at,
        data={
            "customer_id": str(customer.id),
            "branch": event.branch,
            "name": customer.name,
            "mobile": customer.mobile,
            "preferred_channel": customer.preferred_channel,
            "language": customer.language,
            "registered_at": event.registered_at.isoformat(),
        },
        source_event_id=event.envelope.id,
    )


@subscriber(VehicleRegistered, durable="records__webhook_vehicle")
async def queue_vehicle(event: VehicleRegistered, session: AsyncSession) -> None:
    vehicle = event.vehicle
    await webhook_service.enqueue(
        session,
        branch=event.branch,
        event_type=EventType.vehicle_registered,
        occurred_at=event.registered_at,
        data={
            "vehicle_id": str(vehicle.id),
            "customer_id": str(event.customer_id),
            "branch": event.branch,
            "vin": vehicle.vin,
            "plate": vehicle.plate,
            "make": vehicle.make,
            "model": vehicle.model,
            "model_year": vehicle.model_year,
            "registered_at": event.registered_at.isoformat(),
        },
        source_event_id=event.envelope.id,
    )


@subscriber(CustomerUpdated, durable="records__webhook_customer_update")
async def queue_customer_update(event: CustomerUpdated, session: AsyncSession) -> None:
    customer = event.customer
    await webhook_service.enqueue(
        session,
        branch=event.branch,
        event_type=EventType.customer_updated,
        occurred_at=event.updated_at,
        data={
            "customer_id": str(customer.id),
            "branch": event.branch,
            "name": customer.name,
            "mobile": customer.mobile,
            "mobiles": event.mobiles,
            "preferred_channel": customer.preferred_channel,
            "language": customer.language,
            "contact_consent": customer.contact_consent,
            "updated_at": event.updated_at.isoformat(),
        },
        source_event_id=event.envelope.id,
    )


@subscriber(VehicleOwnerChanged, durable="records__webhook_owner_change")
async def queue_owner_change(event: VehicleOwnerChanged, session: AsyncSession) -> None:
    await webhook_service.enqueue(
        session,
        branch=event.branch,
        event_type=EventType.vehicle_owner_changed,
        occurred_at=event.changed_at,
        data={
            "vehicle_id": str(event.vehicle.id),
            "vin": event.vehicle.vin,
            "plate": event.vehicle.plate,
            "branch": event.branch,
            "previous_customer_id": str(event.previous_customer_id),
            "customer_id": str(event.customer_id),
            "reason": event.reason,
            "changed_at": event.changed_at.isoformat(),
        },
        source_event_id=event.envelope.id,
    )
