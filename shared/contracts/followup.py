"""Events followup publishes."""

import uuid
from datetime import date, datetime

from pydantic import BaseModel

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


class VisitClosed(Contract):
    """A follow-up visit ended with an outcome (surveyed, declined_survey, contact_refused,
    wrong_number). Follow-up rate = visits with a reached customer ÷ deliveries."""

    type = "followup.visit.closed.v1"

    visit_id: uuid.UUID
    branch: str
    repair_order_id: uuid.UUID
    customer_id: uuid.UUID
    outcome: str
    reached: bool
    attempts: int
    closed_at: datetime


class ServqualAnswer(BaseModel):
    dimension: str  # reliability, responsiveness, assurance, empathy, tangibles
    expectation: int  # 1..7
    perception: int  # 1..7


class SurveyAnswered(Contract):
    """A customer's satisfaction survey: overall (1..10, the CSI item), the NPS question
    (0..10) and, if asked, SERVQUAL expectation and perception per dimension."""

    type = "followup.survey.answered.v1"

    survey_id: uuid.UUID
    visit_id: uuid.UUID
    branch: str
    repair_order_id: uuid.UUID
    customer_id: uuid.UUID
    overall: int
    nps: int
    servqual: list[ServqualAnswer] = []
    answered_at: datetime


class ComebackRecorded(Contract):
    """A vehicle came back for the same op group within the comeback window: the earlier
    repair order was not fixed the first time."""

    type = "followup.comeback.recorded.v1"

    comeback_id: uuid.UUID
    branch: str
    vehicle_id: uuid.UUID
    op_group: str
    repair_order_id: uuid.UUID
    earlier_repair_order_id: uuid.UUID
    technician_id: str | None = None
    delivered_at: datetime
    earlier_delivered_at: datetime


class ReminderSent(Contract):
    """A service reminder went out (for the vehicle's file)."""

    type = "followup.reminder.sent.v1"

    reminder_id: uuid.UUID
    branch: str
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID
    kind: str
    due_on: date | None = None
    channel: str
    sent_at: datetime
