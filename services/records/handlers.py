"""Events records consumes: everything that belongs in a vehicle's or customer's file."""

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.records import service
from shared.consumers import Subscribers
from shared.contracts import (
    ComplaintEscalated,
    ComplaintOpened,
    CustomerRegistered,
    EstimateApproved,
    EstimateLine,
    ExtraWorkFound,
    IntakeOpened,
    RepairOrderDelivered,
    RepairOrderOpened,
    VehicleRegistered,
)
from shared.contracts.followup import VisitExpired
from shared.contracts.workorders import RepairOrderSettled

subscriber = Subscribers()


@subscriber(CustomerRegistered, durable="records__archive_customer")
async def archive_customer(event: CustomerRegistered, session: AsyncSession) -> None:
    await service.remember_customer(
        session, event.branch, event.customer, as_of=event.registered_at
    )
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
    await service.remember_customer(session, event.branch, event.customer, as_of=event.opened_at)
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
        repair_order_id=event.repair_order_id,
        summary={"number": event.number, "status": event.status, "intake_id": str(event.intake_id)},
    )


def _line(line: EstimateLine) -> dict[str, Any]:
    return line.model_dump(
        mode="json",
        include={
            "line_id",
            "kind",
            "description",
            "op_code",
            "job_kind",
            "flat_rate_hours",
            "part_number",
            "quantity",
            "unit_price",
            "discount",
            "net",
            "pay_type",
        },
    )


@subscriber(EstimateApproved, durable="records__archive_estimate")
async def archive_estimate(event: EstimateApproved, session: AsyncSession) -> None:
    await service.append(
        session,
        event,
        kind="estimate.approved",
        branch=event.branch,
        occurred_at=event.approved_at,
        reference_id=event.estimate_id,
        vehicle_id=event.vehicle_id,
        customer_id=event.customer_id,
        repair_order_id=event.repair_order_id,
        summary={
            "revision": event.revision,
            "intake_id": str(event.intake_id),
            "extra_work_id": str(event.extra_work_id) if event.extra_work_id else None,
            "customer_name": event.customer_name,
            "plate": event.plate,
            "advisor": event.advisor,
            "odometer_km": event.odometer_km,
            "currency": event.currency,
            "promised_at": event.promised_at.isoformat(),
            "approved_lines": [_line(line) for line in event.approved_lines],
            "declined_lines": [_line(line) for line in event.declined_lines],
            "consents": [
                {
                    "line_id": str(c.line_id),
                    "decision": c.decision,
                    "consented_by": c.by,
                    "channel": c.channel,
                    "at": c.at.isoformat(),
                }
                for c in event.consents
            ],
        },
    )


@subscriber(ExtraWorkFound, durable="records__archive_extra_work")
async def archive_extra_work(event: ExtraWorkFound, session: AsyncSession) -> None:
    await service.append(
        session,
        event,
        kind="extra_work.found",
        branch=event.branch,
        occurred_at=event.found_at,
        reference_id=event.extra_work_id,
        repair_order_id=event.repair_order_id,
        summary={
            "number": event.repair_order_number,
            "found_by": event.found_by,
            "findings": event.findings,
            "photo_file_ids": [str(f) for f in event.photo_file_ids],
            "proposed_lines": [_line(line) for line in event.proposed_lines],
        },
    )


@subscriber(RepairOrderDelivered, durable="records__archive_delivery")
async def archive_delivery(event: RepairOrderDelivered, session: AsyncSession) -> None:
    jobs = [
        job.model_dump(
            mode="json",
            include={
                "job_id",
                "op_code",
                "op_group",
                "description",
                "kind",
                "technician_id",
                "flat_rate_hours",
            },
        )
        for job in event.jobs
    ]
    await service.append(
        session,
        event,
        kind="repair_order.delivered",
        branch=event.branch,
        occurred_at=event.delivered_at,
        reference_id=event.repair_order_id,
        vehicle_id=event.vehicle_id,
        customer_id=event.customer_id,
        repair_order_id=event.repair_order_id,
        summary={
            "number": event.number,
            "plate": event.plate,
            "advisor": event.advisor,
            "odometer_km": event.odometer_km,
            "promised_at": event.promised_at.isoformat() if event.promised_at else None,
            "on_time": event.promised_at is None or event.delivered_at <= event.promised_at,
            "jobs": jobs,
            "technicians": sorted({j.technician_id for j in event.jobs if j.technician_id}),
            "declined_work": event.declined_work,
        },
    )


@subscriber(RepairOrderSettled, durable="records__archive_settlement")
async def archive_settlement(event: RepairOrderSettled, session: AsyncSession) -> None:
    """The invoice: kept with its numbers and amounts even after the customer's erasure."""
    await service.append(
        session,
        event,
        kind="repair_order.settled",
        branch=event.branch,
        occurred_at=event.settled_at,
        reference_id=event.repair_order_id,
        vehicle_id=event.vehicle_id,
        customer_id=event.customer_id,
        repair_order_id=event.repair_order_id,
        summary={
            "number": event.number,
            "invoice_number": event.invoice_number,
            "currency": event.currency,
            "lines": [line.model_dump(mode="json") for line in event.lines],
            "totals": [total.model_dump(mode="json") for total in event.totals],
            "net_total": str(event.net_total),
            "tax_total": str(event.tax_total),
            "gross_total": str(event.gross_total),
            "customer_due": str(event.customer_due),
            "payments": [p.model_dump(mode="json") for p in event.payments],
            "settled_by": event.settled_by,
        },
    )


@subscriber(ComplaintOpened, durable="records__archive_complaint")
async def archive_complaint(event: ComplaintOpened, session: AsyncSession) -> None:
    await service.append(
        session,
        event,
        kind="complaint.opened",
        branch=event.branch,
        occurred_at=event.opened_at,
        reference_id=event.complaint_id,
        customer_id=event.customer_id,
        repair_order_id=event.repair_order_id,
        summary={
            "origin": event.origin,
            "severity": event.severity,
            "category": event.category,
            "owner": event.owner,
            "technician_id": event.technician_id,
            "due_at": event.due_at.isoformat(),
        },
    )


@subscriber(ComplaintEscalated, durable="records__archive_complaint_escalation")
async def archive_complaint_escalation(event: ComplaintEscalated, session: AsyncSession) -> None:
    await service.append(
        session,
        event,
        kind="complaint.escalated",
        branch=event.branch,
        occurred_at=event.escalated_at,
        reference_id=event.complaint_id,
        repair_order_id=event.repair_order_id,
        summary={
            "severity": event.severity,
            "category": event.category,
            "status": event.status,
            "previous_owner": event.previous_owner,
            "escalated_to": event.escalated_to,
            "due_at": event.due_at.isoformat(),
        },
    )


@subscriber(VisitExpired, durable="records__archive_visit_expired")
async def archive_visit_expired(event: VisitExpired, session: AsyncSession) -> None:
    await service.append(
        session,
        event,
        kind="followup.visit_expired",
        branch=event.branch,
        occurred_at=event.expired_at,
        reference_id=event.visit_id,
        customer_id=event.customer_id,
        repair_order_id=event.repair_order_id,
        summary={"attempts": event.attempts},
    )
