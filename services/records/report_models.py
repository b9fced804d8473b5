"""Report facts kept from every service's events, and the scheduled reports with their files.

Money is stored in integer cents and hours in integer hundredths (`centihours`), so the
database sums them exactly on SQLite and PostgreSQL alike.
"""

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field

from services.records.models import Base
from shared.types import UTCDateTime


def _utc(nullable: bool = True) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(UTCDateTime(), nullable=nullable),
    )


def _cents(nullable: bool = False) -> Any:
    return Field(default=None if nullable else 0, sa_column=Column(BigInteger(), nullable=nullable))


class ReportOrder(Base, table=True):
    """One repair order as the reports see it: filled in by its opened, delivered and settled
    events in whatever order they arrive (each event owns its own columns)."""

    __tablename__ = "report_order"
    __table_args__ = (
        Index("ix_report_order_branch_opened", "branch", "opened_at"),
        # Covers the delivered-orders count (promise, fix) and its look-ups by order id.
        Index(
            "ix_report_order_branch_delivered",
            "branch",
            "delivered_at",
            "promised_at",
            "has_fix",
            "repair_order_id",
        ),
        Index("ix_report_order_branch_settled", "branch", "settled_at"),
    )

    repair_order_id: uuid.UUID = Field(primary_key=True)
    branch: str = Field(sa_type=String(32))
    number: str | None = Field(default=None, sa_type=String(32))
    vehicle_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    vin: str | None = Field(default=None, sa_type=String(17))
    advisor: str | None = Field(default=None, sa_type=String(100))
    opened_at: datetime | None = _utc()
    delivered_at: datetime | None = _utc()
    promised_at: datetime | None = _utc()
    settled_at: datetime | None = _utc()
    invoice_number: str | None = Field(default=None, sa_type=String(40))
    # Delivered: any job that is not maintenance or a recall (first-time fix counts these).
    has_fix: bool | None = None
    flat_rate_centihours: int | None = _cents(nullable=True)
    # Settled, all pay types, before tax.
    labour_cents: int | None = _cents(nullable=True)
    parts_cents: int | None = _cents(nullable=True)
    fees_cents: int | None = _cents(nullable=True)
    net_cents: int | None = _cents(nullable=True)
    sold_centihours: int | None = _cents(nullable=True)


class ReportInvoiceTotal(Base, table=True):
    """A settled invoice's net per pay type and line kind (labour, part, fee)."""

    __tablename__ = "report_invoice_total"
    # Covering: revenue per pay type, kind and day is read from the index alone.
    __table_args__ = (
        Index(
            "ix_report_invoice_total_branch_settled",
            "branch",
            "settled_at",
            "pay_type",
            "kind",
            "net_cents",
            "centihours",
        ),
    )

    repair_order_id: uuid.UUID = Field(primary_key=True)
    pay_type: str = Field(primary_key=True, sa_type=String(16))
    kind: str = Field(primary_key=True, sa_type=String(8))
    branch: str = Field(sa_type=String(32))
    settled_at: datetime = _utc(nullable=False)
    net_cents: int = _cents()
    centihours: int = _cents()


class ReportJob(Base, table=True):
    """A delivered job: its technician and flat-rate hours sold."""

    __tablename__ = "report_job"
    __table_args__ = (
        # Covering: technicians' efficiency reads the period's jobs from the index alone.
        Index(
            "ix_report_job_branch_delivered",
            "branch",
            "delivered_at",
            "technician_id",
            "flat_rate_centihours",
            "job_id",
        ),
        Index("ix_report_job_order", "repair_order_id"),
    )

    job_id: uuid.UUID = Field(primary_key=True)
    repair_order_id: uuid.UUID
    branch: str = Field(sa_type=String(32))
    op_code: str = Field(sa_type=String(32))
    op_group: str = Field(sa_type=String(32))
    kind: str = Field(sa_type=String(16))
    technician_id: str | None = Field(default=None, sa_type=String(64))
    flat_rate_centihours: int = _cents()
    delivered_at: datetime = _utc(nullable=False)


class ReportClock(Base, table=True):
    """A closed clock segment of a technician on a job."""

    __tablename__ = "report_clock"
    __table_args__ = (
        # Covering: utilisation (hours per technician and day) and each job's hours.
        Index("ix_report_clock_branch_ended", "branch", "ended_at", "technician_id", "centihours"),
        Index("ix_report_clock_job", "job_id", "centihours"),
    )

    clock_id: uuid.UUID = Field(primary_key=True)
    repair_order_id: uuid.UUID
    job_id: uuid.UUID
    branch: str = Field(sa_type=String(32))
    technician_id: str = Field(sa_type=String(64))
    started_at: datetime = _utc(nullable=False)
    ended_at: datetime = _utc(nullable=False)
    centihours: int = _cents()


class ReportQc(Base, table=True):
    """A quality-control result of a job."""

    __tablename__ = "report_qc"
    __table_args__ = (Index("ix_report_qc_branch_inspected", "branch", "inspected_at"),)

    qc_id: uuid.UUID = Field(primary_key=True)
    repair_order_id: uuid.UUID
    job_id: uuid.UUID
    branch: str = Field(sa_type=String(32))
    technician_id: str | None = Field(default=None, sa_type=String(64))
    passed: bool
    inspected_at: datetime = _utc(nullable=False)


class ReportAppointment(Base, table=True):
    """An appointment: booked, then closed as arrived, no-show or cancelled."""

    __tablename__ = "report_appointment"
    __table_args__ = (Index("ix_report_appointment_branch_scheduled", "branch", "scheduled_for"),)

    appointment_id: uuid.UUID = Field(primary_key=True)
    branch: str = Field(sa_type=String(32))
    customer_id: uuid.UUID
    scheduled_for: datetime = _utc(nullable=False)
    # The scheduled time above is the one from the newest event seen (as_of).
    as_of: datetime = _utc(nullable=False)
    booked_at: datetime | None = _utc()
    outcome: str | None = Field(default=None, sa_type=String(16))
    closed_at: datetime | None = _utc()


class ReportVisit(Base, table=True):
    """A follow-up visit that ended with an outcome."""

    __tablename__ = "report_visit"
    __table_args__ = (
        Index("ix_report_visit_order", "repair_order_id", "reached"),
        Index("ix_report_visit_branch_closed", "branch", "closed_at"),
    )

    visit_id: uuid.UUID = Field(primary_key=True)
    branch: str = Field(sa_type=String(32))
    repair_order_id: uuid.UUID
    outcome: str = Field(sa_type=String(24))
    reached: bool
    attempts: int = 0
    closed_at: datetime = _utc(nullable=False)


class ReportSurvey(Base, table=True):
    """A satisfaction survey: overall (CSI item), NPS and SERVQUAL per dimension."""

    __tablename__ = "report_survey"
    __table_args__ = (
        Index("ix_report_survey_branch_answered", "branch", "answered_at"),
        Index("ix_report_survey_order", "repair_order_id"),
    )

    survey_id: uuid.UUID = Field(primary_key=True)
    visit_id: uuid.UUID
    branch: str = Field(sa_type=String(32))
    repair_order_id: uuid.UUID
    overall: int
    nps: int
    answered_at: datetime = _utc(nullable=False)
    reliability_expectation: int | None = None
    reliability_perception: int | None = None
    responsiveness_expectation: int | None = None
    responsiveness_perception: int | None = None
    assurance_expectation: int | None = None
    assurance_perception: int | None = None
    empathy_expectation: int | None = None
    empathy_perception: int | None = None
    tangibles_expectation: int | None = None
    tangibles_perception: int | None = None


class ReportComeback(Base, table=True):
    """A repair order that is a comeback of an earlier one (same vehicle and op group)."""

    __tablename__ = "report_comeback"
    __table_args__ = (
        Index("ix_report_comeback_order", "repair_order_id"),
        Index("ix_report_comeback_branch_delivered", "branch", "delivered_at"),
    )

    comeback_id: uuid.UUID = Field(primary_key=True)
    branch: str = Field(sa_type=String(32))
    repair_order_id: uuid.UUID
    earlier_repair_order_id: uuid.UUID
    op_group: str = Field(sa_type=String(32))
    technician_id: str | None = Field(default=None, sa_type=String(64))
    delivered_at: datetime = _utc(nullable=False)


class ReportComplaint(Base, table=True):
    """A complaint case: its severity is the newest one its events carry."""

    __tablename__ = "report_complaint"
    __table_args__ = (Index("ix_report_complaint_branch_opened", "branch", "opened_at"),)

    complaint_id: uuid.UUID = Field(primary_key=True)
    branch: str = Field(sa_type=String(32))
    repair_order_id: uuid.UUID | None = None
    severity: str = Field(sa_type=String(8))
    category: str = Field(sa_type=String(32))
    origin: str | None = Field(default=None, sa_type=String(16))
    opened_at: datetime | None = _utc()
    severity_as_of: datetime = _utc(nullable=False)


class ReportSchedule(Base, table=True):
    """A report generated on its own: daily, weekly (Mondays) or monthly (the 1st), at the
    schedule's local hour, for one branch or the group (branch null)."""

    __tablename__ = "report_schedule"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_branch: str = Field(sa_type=String(32))
    branch: str | None = Field(default=None, sa_type=String(32))
    frequency: str = Field(sa_type=String(8))
    hour: int
    language: str = Field(sa_type=String(8))
    active: bool = True
    created_by: str = Field(sa_type=String(64))
    created_at: datetime = _utc(nullable=False)


class ReportRun(Base, table=True):
    """One period of a schedule: claimed by one replica, generated once, kept."""

    __tablename__ = "report_run"
    __table_args__ = (
        UniqueConstraint("schedule_id", "from_on", name="uq_report_run_schedule_period"),
        Index("ix_report_run_owner_due", "owner_branch", "due_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    schedule_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("report_schedule.id"), nullable=False)
    )
    owner_branch: str = Field(sa_type=String(32))
    branch: str | None = Field(default=None, sa_type=String(32))
    frequency: str = Field(sa_type=String(8))
    from_on: date
    to_on: date
    due_at: datetime = _utc(nullable=False)
    status: str = Field(sa_type=String(12))  # generating, ready, failed
    claimed_at: datetime = _utc(nullable=False)
    generated_at: datetime | None = _utc()
    made_up: bool = False
    attempts: int = Field(default=1, sa_column=Column(Integer(), nullable=False))
    error: str | None = Field(default=None, sa_type=Text)


class ReportRunFile(Base, table=True):
    """A generated report file (pdf, xlsx, csv, json) of a run."""

    __tablename__ = "report_run_file"

    run_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("report_run.id"), primary_key=True, nullable=False)
    )
    format: str = Field(primary_key=True, sa_type=String(8))
    media_type: str = Field(sa_type=String(100))
    size: int
    content: bytes = Field(sa_column=Column(LargeBinary(), nullable=False))
