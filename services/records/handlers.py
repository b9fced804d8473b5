"""Events records consumes: everything that belongs in a vehicle's or customer's file."""

import uuid
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.records import service
from services.records.models import TimelineEntry
from shared.consumers import Subscribers
from shared.contracts import (
    ComplaintEscalated,
    ComplaintOpened,
    CustomerRegistered,
    EstimateApproved,
    EstimateLine,
    ExtraWorkFound,
    IntakeInspected,
    IntakeOpened,
    RepairOrderDelivered,
    RepairOrderOpened,
    VehicleRegistered,
)
from shared.contracts.followup import (
    ComebackRecorded,
    ReminderSent,
    SurveyAnswered,
    VisitClosed,
    VisitExpired,
)
from shared.contracts.reception import (
    AppointmentBooked,
    AppointmentClosed,
    CustomerUpdated,
    VehicleOwnerChanged,
)
from shared.contracts.records import PaymentConfirmed
from shared.contracts.workorders import (
    InspectionCompleted,
    JobClocked,
    QcRecorded,
    RepairOrderSettled,
)

subscriber = Subscribers()


@subscriber(CustomerRegistered, durable="records__archive_customer")
async def archive_customer(event: CustomerRegistered, session: AsyncSession) -> None:
    await service.serialise(session, event.customer.id)
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
    await service.serialise(session, event.customer_id, event.vehicle.id)
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


@subscriber(CustomerUpdated, durable="records__archive_customer_update")
async def archive_customer_update(event: CustomerUpdated, session: AsyncSession) -> None:
    await service.serialise(session, event.customer.id)
    await service.remember_customer(session, event.branch, event.customer, as_of=event.updated_at)
    await service.append(
        session,
        event,
        kind="customer.updated",
        branch=event.branch,
        occurred_at=event.updated_at,
        reference_id=event.customer.id,
        customer_id=event.customer.id,
        summary={"by": event.updated_by},
    )


@subscriber(VehicleOwnerChanged, durable="records__archive_owner_change")
async def archive_owner_change(event: VehicleOwnerChanged, session: AsyncSession) -> None:
    """The vehicle's file gets the change, under the new owner; the entry names the earlier
    owner too."""
    # The earlier owner too: an erasure of their data must not blank the buyer's plate.
    await service.serialise(
        session, event.customer_id, event.previous_customer_id, event.vehicle.id
    )
    await service.remember_vehicle(
        session, event.branch, event.vehicle, event.customer_id, as_of=event.changed_at
    )
    summary = {
        "vin": event.vehicle.vin,
        "plate": event.vehicle.plate,
        "previous_customer_id": str(event.previous_customer_id),
        "customer_id": str(event.customer_id),
        "reason": event.reason,
    }
    await service.append(
        session,
        event,
        kind="vehicle.owner_changed",
        branch=event.branch,
        occurred_at=event.changed_at,
        reference_id=event.vehicle.id,
        vehicle_id=event.vehicle.id,
        customer_id=event.customer_id,
        summary=summary,
    )


@subscriber(IntakeOpened, durable="records__archive_intake")
async def archive_intake(event: IntakeOpened, session: AsyncSession) -> None:
    # The cards' newer details, the repair order and the booking may be committing on
    # another replica right now: wait for them before reading.
    await service.serialise(
        session, event.customer.id, event.vehicle.id, event.intake_id, event.appointment_id
    )
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
        repair_order_id=await _order_of_intake(session, event.branch, event.intake_id),
        intake_id=event.intake_id,
        appointment_id=event.appointment_id,
        summary={
            "odometer_km": event.odometer_km,
            "concerns": event.concerns,
            "advisor": event.advisor,
            "appointment_id": str(event.appointment_id) if event.appointment_id else None,
        },
    )
    if event.appointment_id is not None:
        # A booking made before the car was known joins the car's file now.
        await service.link_entries(
            session,
            event.branch,
            (col(TimelineEntry.reference_id) == event.appointment_id)
            & col(TimelineEntry.vehicle_id).is_(None),
            vehicle_id=event.vehicle.id,
            customer_id=event.customer.id,
        )


@subscriber(IntakeInspected, durable="records__archive_intake_inspected")
async def archive_intake_inspection(event: IntakeInspected, session: AsyncSession) -> None:
    """The walk-around's damage marks, photos and signature: one `intake.inspected` entry
    per intake (beside its `intake.opened`, same `reference_id`), holding the newest
    version reception sent. Photos that arrive for a customer whose data was already
    erased are erased too."""
    marks = [mark.model_dump(mode="json") for mark in event.damage_marks]
    photos = [
        {"file_id": str(mark.photo_file_id), "position": mark.position, "kind": mark.kind}
        for mark in event.damage_marks
        if mark.photo_file_id is not None
    ]
    signature = str(event.signature_file_id) if event.signature_file_id else None
    await service.serialise(session, event.customer_id, event.intake_id)
    changed = await service.keep_latest(
        session,
        event,
        entry_key=f"intake-inspected:{event.branch}:{event.intake_id}",
        version=event.version,
        kind="intake.inspected",
        branch=event.branch,
        occurred_at=event.inspected_at,
        reference_id=event.intake_id,
        vehicle_id=event.vehicle_id,
        customer_id=event.customer_id,
        repair_order_id=await _order_of_intake(session, event.branch, event.intake_id),
        intake_id=event.intake_id,
        summary={
            "vin": event.vin,
            "damage_marks": marks,
            "photos": photos,
            "photo_count": len(photos),
            "signature_file_id": signature,
            "inspected_by": event.inspected_by,
        },
    )
    if changed:
        named = {mark.photo_file_id for mark in event.damage_marks if mark.photo_file_id}
        if event.signature_file_id is not None:
            named.add(event.signature_file_id)
        await service.erase_late_files(
            session, event.branch, event.customer_id, {str(event.intake_id)}, named
        )


@subscriber(RepairOrderOpened, durable="records__archive_repair_order")
async def archive_repair_order(event: RepairOrderOpened, session: AsyncSession) -> None:
    # The intake's handlers take the same keys before they look this order up: whichever
    # comes second sees the other's entry.
    await service.serialise(session, event.customer_id, event.intake_id)
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
        intake_id=event.intake_id,
        summary={"number": event.number, "status": event.status, "intake_id": str(event.intake_id)},
    )
    # The intake and the estimates that came before the order belong to this visit.
    await service.link_entries(
        session,
        event.branch,
        (col(TimelineEntry.intake_id) == event.intake_id)
        & col(TimelineEntry.repair_order_id).is_(None),
        vehicle_id=event.vehicle_id,
        customer_id=event.customer_id,
        repair_order_id=event.repair_order_id,
    )


async def _order_of_intake(
    session: AsyncSession, branch: str, intake_id: uuid.UUID
) -> uuid.UUID | None:
    """The repair order opened from the intake, if it has been archived. Look only while
    holding the intake's keys (`service.serialise`), as the order's handler does."""
    found = await session.exec(
        select(TimelineEntry.repair_order_id).where(
            TimelineEntry.intake_id == intake_id,
            TimelineEntry.kind == "repair_order.opened",
            TimelineEntry.branch == branch,
        )
    )
    return found.first()


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
    await service.serialise(session, event.customer_id, event.intake_id)
    await service.append(
        session,
        event,
        kind="estimate.approved",
        branch=event.branch,
        occurred_at=event.approved_at,
        reference_id=event.estimate_id,
        vehicle_id=event.vehicle_id,
        customer_id=event.customer_id,
        repair_order_id=event.repair_order_id
        or await _order_of_intake(session, event.branch, event.intake_id),
        intake_id=event.intake_id,
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
    # All at once, in the one order every call takes its keys in: an ERP payment holding
    # the invoice and waiting for the order would otherwise deadlock with this handler.
    invoice = _invoice_key(event.branch, event.invoice_number)
    await service.serialise(session, event.customer_id, event.repair_order_id, invoice)
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
        invoice_number=event.invoice_number,
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
    # ERP payments that came first, naming only this invoice, join the visit.
    await service.link_entries(
        session,
        event.branch,
        (col(TimelineEntry.invoice_number) == event.invoice_number)
        & (col(TimelineEntry.kind) == "payment.confirmed")
        & col(TimelineEntry.repair_order_id).is_(None),
        vehicle_id=event.vehicle_id,
        customer_id=event.customer_id,
        repair_order_id=event.repair_order_id,
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


# --- appointments, clocking, QC, follow-up, reminders, ERP payments ---------------------


async def _intake_of_appointment(
    session: AsyncSession, branch: str, appointment_id: uuid.UUID
) -> uuid.UUID | None:
    """The car of the intake that took up the booking, if it has been archived. Look only
    while holding the booking's keys, as the intake's handler does."""
    found = await session.exec(
        select(TimelineEntry.vehicle_id).where(
            TimelineEntry.appointment_id == appointment_id,
            TimelineEntry.kind == "intake.opened",
            TimelineEntry.branch == branch,
        )
    )
    return found.first()


@subscriber(AppointmentBooked, durable="records__archive_appointment_booked")
async def archive_appointment_booked(event: AppointmentBooked, session: AsyncSession) -> None:
    await service.serialise(session, event.customer_id, event.appointment_id)
    vehicle_id = event.vehicle_id or await _intake_of_appointment(
        session, event.branch, event.appointment_id
    )
    await service.append(
        session,
        event,
        kind="appointment.booked",
        branch=event.branch,
        occurred_at=event.booked_at,
        reference_id=event.appointment_id,
        vehicle_id=vehicle_id,
        customer_id=event.customer_id,
        summary={
            "scheduled_for": event.scheduled_for.isoformat(),
            "planned_hours": str(event.planned_hours),
            "booked_by": event.booked_by,
            "rescheduled": False,
        },
    )
    await service.mark_reschedules(session, event.branch, event.appointment_id)


@subscriber(AppointmentClosed, durable="records__archive_appointment_closed")
async def archive_appointment_closed(event: AppointmentClosed, session: AsyncSession) -> None:
    await service.serialise(session, event.customer_id, event.appointment_id)
    vehicle_id = event.vehicle_id or await _intake_of_appointment(
        session, event.branch, event.appointment_id
    )
    await service.append(
        session,
        event,
        kind="appointment.closed",
        branch=event.branch,
        occurred_at=event.closed_at,
        reference_id=event.appointment_id,
        vehicle_id=vehicle_id,
        customer_id=event.customer_id,
        summary={
            "scheduled_for": event.scheduled_for.isoformat(),
            "outcome": event.outcome,
            "closed_by": event.closed_by,
        },
    )


@subscriber(JobClocked, durable="records__archive_job_clocked")
async def archive_job_clocked(event: JobClocked, session: AsyncSession) -> None:
    """One clock segment: who worked on which job, from when to when, how long."""
    await service.append(
        session,
        event,
        kind="job.clocked",
        branch=event.branch,
        occurred_at=event.ended_at,
        reference_id=event.clock_id,
        repair_order_id=event.repair_order_id,
        summary={
            "number": event.number,
            "job_id": str(event.job_id),
            "op_code": event.op_code,
            "technician_id": event.technician_id,
            "flat_rate_hours": str(event.flat_rate_hours),
            "started_at": event.started_at.isoformat(),
            "ended_at": event.ended_at.isoformat(),
            "hours": str(event.hours),
            "reason": event.reason,
        },
    )


@subscriber(QcRecorded, durable="records__archive_qc")
async def archive_qc(event: QcRecorded, session: AsyncSession) -> None:
    await service.append(
        session,
        event,
        kind="job.qc_recorded",
        branch=event.branch,
        occurred_at=event.inspected_at,
        reference_id=event.qc_id,
        repair_order_id=event.repair_order_id,
        summary={
            "number": event.number,
            "job_id": str(event.job_id),
            "op_code": event.op_code,
            "technician_id": event.technician_id,
            "passed": event.passed,
            "reason": event.reason,
            "road_test": event.road_test,
            "inspected_by": event.inspected_by,
        },
    )


@subscriber(InspectionCompleted, durable="records__archive_inspection")
async def archive_inspection(event: InspectionCompleted, session: AsyncSession) -> None:
    await service.append(
        session,
        event,
        kind="inspection.completed",
        branch=event.branch,
        occurred_at=event.completed_at,
        reference_id=event.inspection_id,
        vehicle_id=event.vehicle_id,
        repair_order_id=event.repair_order_id,
        summary={
            "number": event.repair_order_number,
            "completed_by": event.completed_by,
            "counts": event.counts,
            "extra_work_id": str(event.extra_work_id) if event.extra_work_id else None,
            "items": [item.model_dump(mode="json") for item in event.items],
        },
    )


@subscriber(VisitClosed, durable="records__archive_visit_closed")
async def archive_visit_closed(event: VisitClosed, session: AsyncSession) -> None:
    await service.append(
        session,
        event,
        kind="followup.visit_closed",
        branch=event.branch,
        occurred_at=event.closed_at,
        reference_id=event.visit_id,
        customer_id=event.customer_id,
        repair_order_id=event.repair_order_id,
        summary={"outcome": event.outcome, "reached": event.reached, "attempts": event.attempts},
    )


@subscriber(SurveyAnswered, durable="records__archive_survey")
async def archive_survey(event: SurveyAnswered, session: AsyncSession) -> None:
    await service.append(
        session,
        event,
        kind="survey.answered",
        branch=event.branch,
        occurred_at=event.answered_at,
        reference_id=event.survey_id,
        customer_id=event.customer_id,
        repair_order_id=event.repair_order_id,
        summary={
            "visit_id": str(event.visit_id),
            "overall": event.overall,
            "nps": event.nps,
            "servqual": [a.model_dump(mode="json") for a in event.servqual],
        },
    )


@subscriber(ComebackRecorded, durable="records__archive_comeback")
async def archive_comeback(event: ComebackRecorded, session: AsyncSession) -> None:
    """The car came back for the same op group: on the later visit, naming the earlier."""
    await service.append(
        session,
        event,
        kind="comeback.recorded",
        branch=event.branch,
        occurred_at=event.delivered_at,
        reference_id=event.comeback_id,
        vehicle_id=event.vehicle_id,
        repair_order_id=event.repair_order_id,
        summary={
            "op_group": event.op_group,
            "earlier_repair_order_id": str(event.earlier_repair_order_id),
            "earlier_delivered_at": event.earlier_delivered_at.isoformat(),
            "technician_id": event.technician_id,
        },
    )


@subscriber(ReminderSent, durable="records__archive_reminder")
async def archive_reminder(event: ReminderSent, session: AsyncSession) -> None:
    await service.append(
        session,
        event,
        kind="reminder.sent",
        branch=event.branch,
        occurred_at=event.sent_at,
        reference_id=event.reminder_id,
        vehicle_id=event.vehicle_id,
        customer_id=event.customer_id,
        summary={
            "kind": event.kind,
            "due_on": event.due_on.isoformat() if event.due_on else None,
            "channel": event.channel,
        },
    )


def _invoice_key(branch: str, invoice_number: str) -> uuid.UUID:
    return uuid.uuid5(service.ENTRY_NAMESPACE, f"invoice:{branch}:{invoice_number}")


@subscriber(PaymentConfirmed, durable="records__archive_payment")
async def archive_payment(event: PaymentConfirmed, session: AsyncSession) -> None:
    """The ERP's payment for an invoice. One entry per ERP payment id, however often the
    ERP sends it; one that names only the invoice joins the visit through its invoice."""
    await service.serialise(
        session, _invoice_key(event.branch, event.invoice_number), event.repair_order_id
    )
    repair_order_id = event.repair_order_id
    if repair_order_id is None:
        repair_order_id = (
            await session.exec(
                select(TimelineEntry.repair_order_id).where(
                    TimelineEntry.invoice_number == event.invoice_number,
                    TimelineEntry.kind == "repair_order.settled",
                    TimelineEntry.branch == event.branch,
                )
            )
        ).first()
    await service.append(
        session,
        event,
        kind="payment.confirmed",
        branch=event.branch,
        occurred_at=event.paid_at,
        reference_id=uuid.uuid5(service.ENTRY_NAMESPACE, f"erp-payment:{event.erp_payment_id}"),
        repair_order_id=repair_order_id,
        invoice_number=event.invoice_number,
        entry_key=f"erp-payment:{event.branch}:{event.erp_payment_id}",
        summary={
            "erp_payment_id": event.erp_payment_id,
            "invoice_number": event.invoice_number,
            "amount": str(event.amount),
            "currency": event.currency,
            "method": event.method,
        },
    )
