"""Followup's tables and their input and output schemas."""

import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator, model_validator
from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from services.followup.rules import ComplaintStatus
from shared.audit import make_audit_model
from shared.branch_zones import BranchZoneColumns
from shared.idempotency import make_idempotency_model
from shared.outbox import make_outbox_models
from shared.types import Instant, UTCDateTime


class Base(SQLModel, registry=registry()):
    """Followup's own metadata."""


OutboxEvent, InboxEvent = make_outbox_models(Base)
IdempotencyRecord = make_idempotency_model(Base)
AuditEntry = make_audit_model(Base)


def _utc(nullable: bool = False, **kwargs: Any) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(UTCDateTime(), nullable=nullable, **kwargs),
    )


# --- contacts --------------------------------------------------------------------------


class ContactBase(SQLModel):
    customer_id: uuid.UUID = Field(primary_key=True)
    branch: str = Field(sa_type=String(32))
    name: str = Field(sa_type=String(100))
    mobile: str | None = Field(default=None, sa_type=String(24))
    preferred_channel: str = Field(sa_type=String(16))
    language: str = Field(sa_type=String(8))
    contact_consent: bool
    visits: int = 0


class Contact(Base, ContactBase, table=True):
    """A customer the agents may call: kept from reception's events."""

    __tablename__ = "contact"
    __table_args__ = (Index("ix_contact_branch_updated", "branch", "updated_at"),)

    # When reception last described this customer: an older event never overwrites.
    as_of: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_intake_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ContactPublic(ContactBase):
    last_intake_at: datetime | None
    updated_at: datetime


# --- delivered orders and comebacks ----------------------------------------------------


class DeliveredOrder(Base, table=True):
    """A repair order handed back to the customer: the denominator of the KPIs."""

    __tablename__ = "delivered_order"
    __table_args__ = (
        Index("ix_delivered_order_branch_delivered", "branch", "delivered_at"),
        Index("ix_delivered_order_vehicle_delivered", "vehicle_id", "delivered_at"),
    )

    repair_order_id: uuid.UUID = Field(primary_key=True)
    number: str = Field(sa_type=String(40))
    branch: str = Field(sa_type=String(32))
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID
    vin: str = Field(sa_type=String(17))
    odometer_km: int | None = None
    delivered_at: datetime = _utc()
    # False when every job was maintenance or a recall: not counted for first-time fix.
    has_fix: bool
    is_comeback: bool = False


class DeliveredJob(Base, table=True):
    __tablename__ = "delivered_job"
    __table_args__ = (Index("ix_delivered_job_vehicle_group", "vehicle_id", "op_group"),)

    job_id: uuid.UUID = Field(primary_key=True)
    repair_order_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("delivered_order.repair_order_id"), nullable=False)
    )
    vehicle_id: uuid.UUID
    op_code: str = Field(sa_type=String(40))
    op_group: str = Field(sa_type=String(40))
    kind: str = Field(sa_type=String(16))
    technician_id: str | None = Field(default=None, sa_type=String(64))
    delivered_at: datetime = _utc()


class DeliveredJobPublic(SQLModel):
    job_id: uuid.UUID
    op_code: str
    op_group: str
    kind: str
    technician_id: str | None


class DeliveredOrderPublic(SQLModel):
    """The delivered repair order behind a visit or a case, as followup kept it."""

    repair_order_id: uuid.UUID
    number: str
    branch: str
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID
    vin: str
    odometer_km: int | None
    delivered_at: datetime
    has_fix: bool
    is_comeback: bool
    jobs: list[DeliveredJobPublic]


class ComebackBase(SQLModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    vehicle_id: uuid.UUID
    vin: str = Field(sa_type=String(17))
    op_group: str = Field(sa_type=String(40))
    repair_order_id: uuid.UUID
    repair_order_number: str = Field(sa_type=String(40))
    earlier_repair_order_id: uuid.UUID
    earlier_repair_order_number: str = Field(sa_type=String(40))
    # The technician of the earlier job in this op group: whose fix did not hold.
    technician_id: str | None = Field(default=None, sa_type=String(64))


class Comeback(Base, ComebackBase, table=True):
    """A vehicle back for the same system within the comeback window of a delivery."""

    __tablename__ = "comeback"
    __table_args__ = (
        UniqueConstraint("repair_order_id", "op_group", name="uq_comeback_order_group"),
        Index("ix_comeback_branch_delivered", "branch", "delivered_at"),
    )

    earlier_delivered_at: datetime = _utc()
    delivered_at: datetime = _utc()


class ComebackPublic(ComebackBase):
    earlier_delivered_at: datetime
    delivered_at: datetime


# --- follow-up visits ------------------------------------------------------------------


class VisitStatus(StrEnum):
    open = "open"
    closed = "closed"
    expired = "expired"


class VisitOutcome(StrEnum):
    surveyed = "surveyed"
    declined_survey = "declined_survey"
    contact_refused = "contact_refused"
    wrong_number = "wrong_number"
    expired = "expired"


class VisitBase(SQLModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    repair_order_id: uuid.UUID = Field(unique=True)
    repair_order_number: str = Field(sa_type=String(40))
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID
    vin: str = Field(sa_type=String(17))
    plate: str | None = Field(default=None, sa_type=String(20))
    advisor: str = Field(sa_type=String(64))
    status: VisitStatus = Field(default=VisitStatus.open, sa_type=String(16))
    outcome: VisitOutcome | None = Field(default=None, sa_type=String(24))
    attempts: int = 0


class Visit(Base, VisitBase, table=True):
    """A follow-up call owed to a customer after a delivery."""

    __tablename__ = "visit"
    __table_args__ = (
        Index("ix_visit_work_list", "branch", "status", "due_at", "id"),
        Index("ix_visit_status_expires", "status", "expires_at"),
        # A customer's visits, soonest due first (the work list filtered by customer).
        Index("ix_visit_customer", "customer_id", "due_at", "id"),
    )

    delivered_at: datetime = _utc()
    due_at: datetime = _utc()
    expires_at: datetime = _utc()
    last_attempt_at: datetime | None = _utc(nullable=True)
    closed_at: datetime | None = _utc(nullable=True)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class VisitPublic(VisitBase):
    delivered_at: datetime
    due_at: datetime
    expires_at: datetime
    last_attempt_at: datetime | None
    closed_at: datetime | None
    customer_name: str | None = None
    mobile: str | None = None


class CallResult(StrEnum):
    no_answer = "no_answer"
    wrong_number = "wrong_number"
    call_back = "call_back"
    reached = "reached"


Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


class CallAttemptCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: CallResult
    # For call_back: when the customer asked to be called (with offset).
    call_back_at: Instant | None = None
    note: Note = ""

    @model_validator(mode="after")
    def _call_back_needs_time(self) -> "CallAttemptCreate":
        if self.result == CallResult.call_back and self.call_back_at is None:
            raise ValueError("call_back_at is required when the customer asks to be called back")
        if self.call_back_at is not None and self.call_back_at.tzinfo is None:
            raise ValueError("call_back_at needs a UTC offset")
        return self


class CallAttemptBase(SQLModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    visit_id: uuid.UUID = Field(sa_column=Column(ForeignKey("visit.id"), nullable=False))
    result: CallResult = Field(sa_type=String(16))
    note: str = Field(default="", sa_type=String(2000))
    agent: str = Field(sa_type=String(64))


class CallAttempt(Base, CallAttemptBase, table=True):
    __tablename__ = "call_attempt"
    __table_args__ = (Index("ix_call_attempt_visit", "visit_id", "called_at"),)

    call_back_at: datetime | None = _utc(nullable=True)
    called_at: datetime = _utc()


class CallAttemptPublic(CallAttemptBase):
    call_back_at: datetime | None
    called_at: datetime


class VisitOutcomeCreate(BaseModel):
    """Close a visit without a survey."""

    model_config = ConfigDict(extra="forbid")

    outcome: VisitOutcome
    note: Note = ""

    @field_validator("outcome")
    @classmethod
    def _not_automatic(cls, value: VisitOutcome) -> VisitOutcome:
        if value in (VisitOutcome.surveyed, VisitOutcome.expired, VisitOutcome.wrong_number):
            raise ValueError("recorded by a survey, a call attempt or the expiry timer")
        return value


# --- surveys ---------------------------------------------------------------------------

SERVQUAL = ("reliability", "responsiveness", "assurance", "empathy", "tangibles")

Score7 = Annotated[int, Field(ge=1, le=7)]


class ServqualScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expectation: Score7
    perception: Score7


class Servqual(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reliability: ServqualScore
    responsiveness: ServqualScore
    assurance: ServqualScore
    empathy: ServqualScore
    tangibles: ServqualScore


class ComplaintCategory(StrEnum):
    repair_quality = "repair_quality"
    waiting_time = "waiting_time"
    price = "price"
    staff_attitude = "staff_attitude"
    vehicle_damage = "vehicle_damage"
    other = "other"


class SurveyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overall: int = Field(ge=1, le=10)
    nps: int = Field(ge=0, le=10)
    servqual: Servqual | None = None
    comments: Note = ""
    # What a low score is about, if the customer said (the complaint's category).
    concern: ComplaintCategory = ComplaintCategory.other


class SurveyBase(SQLModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    visit_id: uuid.UUID = Field(sa_column=Column(ForeignKey("visit.id"), nullable=False))
    repair_order_id: uuid.UUID
    customer_id: uuid.UUID
    overall: int
    nps: int
    comments: str = Field(default="", sa_type=String(2000))
    recorded_by: str = Field(sa_type=String(64))
    complaint_id: uuid.UUID | None = None


class Survey(Base, SurveyBase, table=True):
    __tablename__ = "survey"
    __table_args__ = (
        UniqueConstraint("visit_id", name="uq_survey_visit"),
        Index("ix_survey_branch_recorded", "branch", "recorded_at"),
    )

    # SERVQUAL as {dimension: {"expectation": e, "perception": p}}.
    servqual: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    recorded_at: datetime = _utc()


class SurveyPublic(SurveyBase):
    servqual: Servqual | None
    recorded_at: datetime


# --- complaints ------------------------------------------------------------------------


class ComplaintSource(StrEnum):
    survey = "survey"
    call = "call"
    walk_in = "walk_in"
    erp = "erp"


class Severity(StrEnum):
    major = "major"
    minor = "minor"


Money = Annotated[Decimal, Field(ge=0, le=Decimal("1000000"), max_digits=12, decimal_places=2)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


def to_fen(amount: Decimal) -> int:
    """Money is kept in fen (0.01 CNY), rounded once here, half up."""
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


class ComplaintCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: ComplaintSource
    severity: Severity
    category: ComplaintCategory
    description: Text
    customer_id: uuid.UUID | None = None
    repair_order_id: uuid.UUID | None = None
    technician_id: Name | None = None
    owner: Name | None = None

    @field_validator("source")
    @classmethod
    def _not_survey(cls, value: ComplaintSource) -> ComplaintSource:
        if value == ComplaintSource.survey:
            raise ValueError("survey complaints are opened by recording the survey")
        return value


class ComplaintUpdate(BaseModel):
    """Fields an owner edits while working a case; only those sent change."""

    model_config = ConfigDict(extra="forbid")

    severity: Severity | None = None
    category: ComplaintCategory | None = None
    owner: Name | None = None
    technician_id: Name | None = None
    root_cause: Text | None = None
    compensation_amount: Money | None = None
    compensation_note: Text | None = None


class ComplaintTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: ComplaintStatus
    note: Note = ""
    # Resolving needs the root cause: recorded on the case before, or given here.
    root_cause: Text | None = None


class ComplaintActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Text


class ComplaintBase(SQLModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    source: ComplaintSource = Field(sa_type=String(16))
    severity: Severity = Field(sa_type=String(8))
    category: ComplaintCategory = Field(sa_type=String(24))
    status: ComplaintStatus = Field(default=ComplaintStatus.open, sa_type=String(16))
    description: str = Field(sa_type=String(2000))
    customer_id: uuid.UUID | None = None
    repair_order_id: uuid.UUID | None = None
    repair_order_number: str | None = Field(default=None, sa_type=String(40))
    technician_id: str | None = Field(default=None, sa_type=String(64))
    survey_id: uuid.UUID | None = None
    owner: str = Field(sa_type=String(64))
    opened_by: str = Field(sa_type=String(64))
    escalated_to: str | None = Field(default=None, sa_type=String(64))
    root_cause: str | None = Field(default=None, sa_type=String(2000))
    compensation_note: str | None = Field(default=None, sa_type=String(2000))


_COMPLAINT_VERSION = Column("version", Integer, nullable=False)


class Complaint(Base, ComplaintBase, table=True):
    """A complaint case, owned until the customer confirms it is settled."""

    __tablename__ = "complaint"
    __table_args__ = (
        Index("ix_complaint_branch_opened", "branch", "opened_at", "id"),
        Index("ix_complaint_overdue", "status", "due_at"),
    )
    __mapper_args__ = {"version_id_col": _COMPLAINT_VERSION}

    # The ETag: SQLAlchemy bumps it on every UPDATE and refuses a write from a stale one.
    version: int = Field(default=1, sa_column=_COMPLAINT_VERSION)
    compensation_fen: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    due_at: datetime = _utc()
    opened_at: datetime = _utc()
    escalated_at: datetime | None = _utc(nullable=True)
    resolved_at: datetime | None = _utc(nullable=True)
    closed_at: datetime | None = _utc(nullable=True)
    updated_at: datetime = _utc()


class ComplaintPublic(ComplaintBase):
    version: int
    compensation_amount: Decimal | None = None
    compensation_currency: str = "CNY"
    due_at: datetime
    opened_at: datetime
    escalated_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime
    overdue: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, data: Any) -> Any:
        if isinstance(data, Complaint):
            fen = data.compensation_fen
            values = {name: getattr(data, name) for name in Complaint.model_fields}
            values["compensation_amount"] = (
                None if fen is None else (Decimal(fen) / 100).quantize(Decimal("0.01"))
            )
            return values
        return data


class ComplaintEntryBase(SQLModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    complaint_id: uuid.UUID = Field(sa_column=Column(ForeignKey("complaint.id"), nullable=False))
    kind: str = Field(sa_type=String(24))  # opened, changed, status, action, escalated
    by: str = Field(sa_type=String(64))
    note: str = Field(default="", sa_type=String(2000))


class ComplaintEntry(Base, ComplaintEntryBase, table=True):
    """One line of a case's history: every change is kept."""

    __tablename__ = "complaint_entry"
    __table_args__ = (Index("ix_complaint_entry_case", "complaint_id", "at"),)

    changes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    at: datetime = _utc()


class ComplaintEntryPublic(ComplaintEntryBase):
    changes: dict[str, Any] | None
    at: datetime


# --- service reminders -----------------------------------------------------------------


class ReminderStatus(StrEnum):
    open = "open"
    booked = "booked"
    not_interested = "not_interested"
    sold_car = "sold_car"
    superseded = "superseded"  # the vehicle came in again: a newer reminder replaced it


class ReminderOutcome(StrEnum):
    booked = "booked"
    not_interested = "not_interested"
    sold_car = "sold_car"


class ReminderOutcomeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: ReminderOutcome
    note: Note = ""


class ReminderChannel(StrEnum):
    sms = "sms"
    phone = "phone"
    wechat = "wechat"
    email = "email"
    letter = "letter"


class ReminderSentCreate(BaseModel):
    """The reminder went out to the customer (the agent sent or phoned it)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"channel": "sms"}]})

    channel: ReminderChannel


class ReminderBase(SQLModel):
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    vehicle_id: uuid.UUID
    customer_id: uuid.UUID
    vin: str = Field(sa_type=String(17))
    plate: str | None = Field(default=None, sa_type=String(20))
    last_repair_order_id: uuid.UUID
    last_repair_order_number: str = Field(sa_type=String(40))
    last_odometer_km: int
    due_km: int
    # Estimated from the vehicle's odometer history (km per day).
    daily_km: float
    # The earlier of the date limit and the day the mileage limit is expected.
    due_reason: str = Field(sa_type=String(8))  # date, mileage
    # Work the customer declined at the last visit, offered again.
    declined_work: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: ReminderStatus = Field(default=ReminderStatus.open, sa_type=String(16))
    note: str = Field(default="", sa_type=String(2000))
    # How often it went out to the customer, and the last time and channel.
    times_sent: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    sent_channel: str | None = Field(default=None, sa_type=String(16))


# A vehicle has at most one open reminder: the one from its latest delivery.
OPEN_REMINDER = "status = 'open'"


class ServiceReminder(Base, ReminderBase, table=True):
    """The next service a vehicle is due for, for the agents to offer."""

    __tablename__ = "service_reminder"
    __table_args__ = (
        Index("ix_service_reminder_due", "branch", "status", "due_at", "id"),
        Index("ix_service_reminder_vehicle", "vehicle_id", "status"),
        Index(
            "ux_service_reminder_open_vehicle",
            "vehicle_id",
            unique=True,
            sqlite_where=text(OPEN_REMINDER),
            postgresql_where=text(OPEN_REMINDER),
        ),
    )

    due_at: datetime = _utc()  # start of the local due day
    created_at: datetime = _utc()
    updated_at: datetime = _utc()
    sent_at: datetime | None = _utc(nullable=True)


class ReminderPublic(ReminderBase):
    due_at: datetime
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime


# --- customer messages -----------------------------------------------------------------


class CustomerMessage(Base, table=True):
    """One message to one recipient over one channel for one cause (e.g. the car of one
    repair order is ready): the unique key makes a duplicate event, a replica or a restart
    add nothing, so each message is sent once."""

    __tablename__ = "customer_message"
    __table_args__ = (
        UniqueConstraint("cause", "channel", "recipient", name="ux_customer_message_cause"),
        Index("ix_customer_message_due", "status", "next_attempt_at", "id"),
        Index("ix_customer_message_customer", "customer_id", "created_at", "id"),
        Index("ix_customer_message_provider_id", "provider", "provider_message_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    customer_id: uuid.UUID
    cause: str = Field(sa_type=String(120))
    channel: str = Field(sa_type=String(16))
    recipient: str = Field(sa_type=String(254))
    purpose: str = Field(sa_type=String(16))
    template: str = Field(sa_type=String(64))
    language: str = Field(sa_type=String(8))
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", sa_type=String(16))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    next_attempt_at: datetime = _utc()
    # A sender holds a row until this moment; another replica takes it only after.
    lease_until: datetime | None = _utc(nullable=True)
    provider: str | None = Field(default=None, sa_type=String(32))
    provider_message_id: str | None = Field(default=None, sa_type=String(128))
    provider_status: str | None = Field(default=None, sa_type=String(64))
    last_error: str | None = Field(default=None, sa_type=String(500))
    created_at: datetime = _utc()
    sent_at: datetime | None = _utc(nullable=True)
    # The provider's delivery report, when it came (e.g. DELIVERED, or FAIL and why).
    report_status: str | None = Field(default=None, sa_type=String(64))
    report_detail: str | None = Field(default=None, sa_type=String(200))
    reported_at: datetime | None = _utc(nullable=True)


class MessageOptOut(Base, table=True):
    """A recipient who asked for no more messages on a channel (an SMS reply T/TD/退订)."""

    __tablename__ = "message_opt_out"

    channel: str = Field(primary_key=True, sa_type=String(16))
    recipient: str = Field(primary_key=True, sa_type=String(254))
    source: str = Field(sa_type=String(32))
    opted_out_at: datetime = _utc()


class BranchZone(Base, BranchZoneColumns, table=True):
    """A branch's time zone from the branch directory (`reception.branch.changed.v1`)."""

    __tablename__ = "branch_zone"
