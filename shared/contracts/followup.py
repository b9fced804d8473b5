"""Events followup publishes."""

import uuid
from datetime import datetime

from shared.events import Contract


class ComplaintOpened(Contract):
    type = "followup.complaint.opened.v1"

    complaint_id: uuid.UUID
    branch: str
    # Where the complaint came from: survey, call, walk_in, erp (`source` is the producer).
    origin: str
    severity: str  # major, minor
    category: str
    customer_id: uuid.UUID | None = None
    repair_order_id: uuid.UUID | None = None
    technician_id: str | None = None
    owner: str
    due_at: datetime
    opened_at: datetime


class ComplaintEscalated(Contract):
    type = "followup.complaint.escalated.v1"

    complaint_id: uuid.UUID
    branch: str
    severity: str
    category: str
    status: str
    repair_order_id: uuid.UUID | None = None
    technician_id: str | None = None
    previous_owner: str
    escalated_to: str
    due_at: datetime
    escalated_at: datetime


class VisitExpired(Contract):
    type = "followup.visit.expired.v1"

    visit_id: uuid.UUID
    branch: str
    repair_order_id: uuid.UUID
    customer_id: uuid.UUID
    attempts: int
    expired_at: datetime
