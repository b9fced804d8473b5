"""Workorders' tables and their output schemas."""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from services.workorders.schemas import HandoverRecord
from services.workorders.states import JobStatus, PartStatus, RepairOrderStatus
from shared.audit import make_audit_model
from shared.contracts import EstimateLine
from shared.events import utcnow
from shared.idempotency import make_idempotency_model
from shared.outbox import make_outbox_models
from shared.types import UTCDateTime


class Base(SQLModel, registry=registry()):
    """Workorders' own metadata."""


OutboxEvent, InboxEvent = make_outbox_models(Base)
IdempotencyRecord = make_idempotency_model(Base)
AuditEntry = make_audit_model(Base)


class RepairOrderNumber(Base, table=True):
    """Last number handed out per branch and year: RO-2026-000123."""

    __tablename__ = "repair_order_number"

    branch: str = Field(sa_type=String(32), primary_key=True)
    year: int = Field(primary_key=True)
    last: int = 0


_ORDER_VERSION = Column("version", Integer, nullable=False)
_JOB_VERSION = Column("version", Integer, nullable=False)
_PART_VERSION = Column("version", Integer, nullable=False)
_CHECK_VERSION = Column("version", Integer, nullable=False)


class RepairOrderBase(SQLModel):
    number: str = Field(sa_type=String(32))
    branch: str = Field(sa_type=String(32))
    intake_id: uuid.UUID
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID
    vin: str = Field(sa_type=String(17))
    plate: str | None = Field(default=None, sa_type=String(16))
    customer_name: str = Field(sa_type=String(100))
    advisor: str = Field(sa_type=String(64))
    odometer_km: int
    status: RepairOrderStatus = Field(default=RepairOrderStatus.draft, sa_type=String(16))


class RepairOrder(Base, RepairOrderBase, table=True):
    __tablename__ = "repair_order"
    __table_args__ = (
        Index("ux_repair_order_intake", "intake_id", unique=True),
        Index("ux_repair_order_branch_number", "branch", "number", unique=True),
        Index("ix_repair_order_branch_opened", "branch", "opened_at"),
        Index("ix_repair_order_vehicle", "vehicle_id"),
        # The status board reads the open orders of a branch among a million closed ones.
        Index("ix_repair_order_branch_status", "branch", "status"),
        Index("ix_repair_order_invoice_number", "invoice_number"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    opened_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    currency: str = Field(default="CNY", sa_type=String(3))
    estimate_id: uuid.UUID | None = None
    promised_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # Every promise the customer agreed to, oldest first; the last one counts.
    promises: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # Lines the customer declined (EstimateLine as JSON), told again at delivery.
    declined_lines: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # Lines that are no labour job: parts without a job and fees (EstimateLine as JSON).
    other_lines: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    invoice: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    settled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    handover: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    cancelled_reason: str | None = Field(default=None, sa_type=Text)
    customer_told_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    invoice_number: str | None = Field(default=None, sa_type=String(32))
    # How often the invoice was printed: the first print is the original, later ones copies.
    invoice_prints: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    # When the ERP's confirmed payments first covered what the customer owes.
    paid_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    version: int = Field(default=1, sa_column=_ORDER_VERSION)

    __mapper_args__ = {"version_id_col": _ORDER_VERSION}


class Promise(BaseModel):
    promised_at: datetime
    agreed_at: datetime
    source: str  # estimate, extra_work, advisor


class RepairOrderPublic(RepairOrderBase):
    id: uuid.UUID
    opened_at: datetime
    currency: str = "CNY"
    estimate_id: uuid.UUID | None = None
    promised_at: datetime | None = None
    promises: list[Promise] = []
    declined_lines: list[EstimateLine] = []
    other_lines: list[EstimateLine] = []
    settled_at: datetime | None = None
    delivered_at: datetime | None = None
    projected_finish_at: datetime | None = None
    at_risk_since: datetime | None = None
    customer_told_at: datetime | None = None
    invoice_number: str | None = None
    invoice_prints: int = 0
    paid_at: datetime | None = None
    version: int


class Job(Base, table=True):
    """One labour operation of a repair order, with the parts that belong to it."""

    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_order", "repair_order_id"),
        Index("ix_job_branch_technician", "branch", "technician_id"),
        Index("ux_job_order_line", "repair_order_id", "line_id", unique=True),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    repair_order_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("repair_order.id"), nullable=False)
    )
    branch: str = Field(sa_type=String(32))
    line_id: uuid.UUID
    op_code: str = Field(default="", sa_type=String(32))
    op_group: str = Field(default="", sa_type=String(32))
    description: str = Field(default="", sa_type=Text)
    kind: str = Field(default="repair", sa_type=String(16))
    pay_type: str = Field(default="customer", sa_type=String(16))
    # The approved labour line and its parts lines, as EstimateLine JSON (Decimals as text).
    line: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    parts: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    extra_work_id: uuid.UUID | None = None
    status: JobStatus = Field(default=JobStatus.pending, sa_type=String(16))
    technician_id: str | None = Field(default=None, sa_type=String(64))
    bay: str | None = Field(default=None, sa_type=String(32))
    planned_start_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    pause_reason: str | None = Field(default=None, sa_type=String(32))
    rework_count: int = 0
    road_test: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    done_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    version: int = Field(default=1, sa_column=_JOB_VERSION)

    __mapper_args__ = {"version_id_col": _JOB_VERSION}

    @property
    def flat_rate_hours(self) -> Decimal:
        return Decimal(str(self.line.get("flat_rate_hours", "0")))


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    repair_order_id: uuid.UUID
    line_id: uuid.UUID
    op_code: str
    op_group: str
    description: str
    kind: str
    pay_type: str
    flat_rate_hours: Decimal
    parts: list[EstimateLine] = []
    extra_work_id: uuid.UUID | None = None
    status: JobStatus
    technician_id: str | None = None
    bay: str | None = None
    planned_start_at: datetime | None = None
    pause_reason: str | None = None
    rework_count: int = 0
    road_test: bool = False
    done_at: datetime | None = None
    actual_hours: Decimal = Decimal("0")
    # When the last part it waits for is due; None when it waits for none.
    parts_eta_at: datetime | None = None
    version: int


class PartToFit(BaseModel):
    """A part line of a job as the workshop needs it: what to fit, not what it costs."""

    line_id: uuid.UUID
    kind: str
    description: str = ""
    part_number: str | None = None
    quantity: Decimal = Decimal("1")
    pay_type: str


class MyJob(JobPublic):
    """A technician's or QC's job as their phone lists it: with the car and the order, and
    the parts without their prices (the workshop's lists carry no money)."""

    parts: list[PartToFit] = []  # type: ignore[assignment]

    repair_order_number: str
    plate: str | None = None
    vin: str
    promised_at: datetime | None = None


class TimeEntry(Base, table=True):
    """A technician's time on a job, from clock-on to clock-off."""

    __tablename__ = "time_entry"
    __table_args__ = (
        Index("ix_time_entry_job", "job_id"),
        Index("ix_time_entry_technician_started", "branch", "technician_id", "started_at"),
        # At most one open entry per technician: one job at a time, even under a race.
        Index(
            "ux_time_entry_open_technician",
            "technician_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    job_id: uuid.UUID = Field(sa_column=Column(ForeignKey("job.id"), nullable=False))
    branch: str = Field(sa_type=String(32))
    technician_id: str = Field(sa_type=String(64))
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # Why the clock stopped: finished, break, waiting_parts, end_of_shift, other.
    stop_reason: str | None = Field(default=None, sa_type=String(32))


class TimeEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    job_id: uuid.UUID
    technician_id: str
    started_at: datetime
    ended_at: datetime | None = None
    stop_reason: str | None = None


class ExtraWorkStatus(StrEnum):
    proposed = "proposed"
    approved = "approved"
    partly_approved = "partly_approved"
    declined = "declined"


class ExtraWork(Base, table=True):
    """Work a technician found; none of it starts before the customer consents."""

    __tablename__ = "extra_work"
    __table_args__ = (Index("ix_extra_work_order", "repair_order_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    repair_order_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("repair_order.id"), nullable=False)
    )
    branch: str = Field(sa_type=String(32))
    job_id: uuid.UUID | None = None
    found_by: str = Field(sa_type=String(64))
    findings: str = Field(sa_type=Text)
    photo_file_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    proposed_lines: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    status: ExtraWorkStatus = Field(default=ExtraWorkStatus.proposed, sa_type=String(16))
    found_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    answered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class ExtraWorkPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    repair_order_id: uuid.UUID
    job_id: uuid.UUID | None = None
    found_by: str
    findings: str
    photo_file_ids: list[uuid.UUID] = []
    proposed_lines: list[EstimateLine] = []
    status: ExtraWorkStatus
    found_at: datetime
    answered_at: datetime | None = None


class QcInspection(Base, table=True):
    """One QC verdict on a job: the checklist, pass or fail, and why."""

    __tablename__ = "qc_inspection"
    __table_args__ = (Index("ix_qc_inspection_job", "job_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    job_id: uuid.UUID = Field(sa_column=Column(ForeignKey("job.id"), nullable=False))
    inspector: str = Field(sa_type=String(64))
    passed: bool = Field(sa_column=Column(Boolean, nullable=False))
    checklist: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    reason: str | None = Field(default=None, sa_type=Text)
    road_test: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    inspected_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PartLine(Base, table=True):
    """A part on its way to a job: requested, ordered with an ETA, issued, returned."""

    __tablename__ = "part_line"
    __table_args__ = (
        Index("ix_part_line_order", "repair_order_id"),
        Index("ix_part_line_job", "job_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    repair_order_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("repair_order.id"), nullable=False)
    )
    job_id: uuid.UUID | None = None
    branch: str = Field(sa_type=String(32))
    # The approved estimate line it comes from; None for a part a technician asked for.
    line_id: uuid.UUID | None = None
    part_number: str = Field(sa_type=String(64))
    description: str = Field(default="", sa_type=Text)
    quantity: str = Field(default="1", sa_type=String(20))
    status: PartStatus = Field(default=PartStatus.requested, sa_type=String(16))
    eta_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    requested_by: str = Field(sa_type=String(64))
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    version: int = Field(default=1, sa_column=_PART_VERSION)

    __mapper_args__ = {"version_id_col": _PART_VERSION}


class PartLinePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    repair_order_id: uuid.UUID
    job_id: uuid.UUID | None = None
    line_id: uuid.UUID | None = None
    part_number: str
    description: str
    quantity: Decimal
    status: PartStatus
    eta_at: datetime | None = None
    requested_by: str
    updated_at: datetime
    version: int


class PromiseCheck(Base, table=True):
    """The latest projection of an open order, and since when (against which promise) it
    is at risk. Kept apart from the order so that the timer does not change the order's
    ETag every minute under the tablets' feet."""

    __tablename__ = "promise_check"
    __table_args__ = (Index("ix_promise_check_branch_risk", "branch", "at_risk_since"),)

    repair_order_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("repair_order.id"), primary_key=True)
    )
    branch: str = Field(sa_type=String(32))
    projected_finish_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    checked_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    at_risk_since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    at_risk_promised_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # Two replicas checking at once: the second write fails instead of warning twice.
    version: int = Field(default=1, sa_column=_CHECK_VERSION)

    __mapper_args__ = {"version_id_col": _CHECK_VERSION}


class InvoicePrintRecord(Base, table=True):
    """One print of an order's invoice: who printed it and when (1 is the original)."""

    __tablename__ = "invoice_print"

    repair_order_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("repair_order.id"), primary_key=True)
    )
    printed: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    branch: str = Field(sa_type=String(32))
    printed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    printed_by: str = Field(sa_type=String(64))
    printed_by_name: str = Field(default="", sa_type=String(200))


class InvoicePrint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    printed: int  # 1 is the original, 2 and on are copies
    is_copy: bool
    printed_at: datetime
    printed_by: str
    printed_by_name: str = ""


class RepairOrderDetail(RepairOrderPublic):
    jobs: list[JobPublic] = []
    part_lines: list[PartLinePublic] = []
    extra_work: list[ExtraWorkPublic] = []
    invoice: dict[str, Any] | None = None
    # What the ERP confirmed against the invoice, and whether it covers the customer's due.
    erp_paid: Decimal = Decimal("0")
    paid: bool = False
    # Every recorded print of the invoice, the original first.
    invoice_print_log: list[InvoicePrint] = []
    # The hand-over checklist, once the car was delivered.
    handover: HandoverRecord | None = None


class _BoardRow(Base):
    """A change of an order's card: which branch and order, and when."""

    # INTEGER PRIMARY KEY on SQLite (the rowid), BIGINT identity on PostgreSQL.
    id: int | None = Field(
        default=None, primary_key=True, sa_type=BigInteger().with_variant(Integer, "sqlite")
    )
    branch: str = Field(sa_type=String(32))
    repair_order_id: uuid.UUID
    changed_at: datetime = Field(sa_type=UTCDateTime(), nullable=False)


class BoardChange(_BoardRow, table=True):
    """One change of a card on the status board, in commit order: screens resume from the
    last id they saw (SSE Last-Event-ID). Trimmed by age; the newest row always stays."""

    __tablename__ = "board_change"
    __table_args__ = (
        Index("ix_board_change_branch_id", "branch", "id"),
        Index("ix_board_change_changed_at", "changed_at"),
    )


class BoardPending(_BoardRow, table=True):
    """PostgreSQL: a change of a card as its writer committed it, not yet in the board's
    log. Writers commit these side by side; the feed moves them into `board_change` one
    mover at a time, so the log's ids become visible in id order without writers waiting
    for each other (SQLite, with one writer, writes `board_change` directly)."""

    __tablename__ = "board_pending"


class ScreenVariant(StrEnum):
    board = "board"  # the workshop's board: names of advisors and technicians
    lounge = "lounge"  # the customer lounge: masked plates, no names


class ScreenLang(StrEnum):
    zh_cn = "zh-CN"
    en = "en"


_SCREEN_VERSION = Column("version", Integer, nullable=False)


class BoardScreen(Base, table=True):
    """A TV registered by the foreman to show the status board. Only the SHA-256 of its
    token's secret is kept; revoking it ends its access at once, without touching the
    other screens (a revoked screen stays listed)."""

    __tablename__ = "board_screen"
    __table_args__ = (Index("ix_board_screen_branch_created", "branch", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    name: str = Field(sa_type=String(80))
    variant: ScreenVariant = Field(sa_type=String(16))
    lang: ScreenLang = Field(sa_type=String(8))
    token_hash: str = Field(sa_type=String(64))
    created_by: str = Field(sa_type=String(64))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    revoked_by: str | None = Field(default=None, sa_type=String(64))
    # Set when a stream of it connects and at most once a minute while one runs (without
    # a new version: the foreman's If-Match stays valid).
    last_seen_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    version: int = Field(default=1, sa_column=_SCREEN_VERSION)

    __mapper_args__ = {"version_id_col": _SCREEN_VERSION}


class ErpPayment(Base, table=True):
    """A payment the dealer's ERP confirmed; kept even when no order matches it (the
    cashier's list of unmatched payments)."""

    __tablename__ = "erp_payment"
    __table_args__ = (
        Index("ix_erp_payment_order", "repair_order_id"),
        Index("ix_erp_payment_branch_invoice", "branch", "invoice_number"),
    )

    erp_payment_id: str = Field(sa_type=String(64), primary_key=True)
    branch: str = Field(sa_type=String(32))
    invoice_number: str = Field(sa_type=String(64))
    repair_order_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("repair_order.id"), nullable=True)
    )
    amount: str = Field(sa_type=String(24))  # Decimal as text, as the ERP sent it
    currency: str = Field(sa_type=String(3))
    method: str = Field(sa_type=String(32))
    paid_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ErpPaymentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    erp_payment_id: str
    invoice_number: str
    amount: Decimal
    currency: str
    method: str
    paid_at: datetime
    received_at: datetime


class UnmatchedErpPayment(ErpPaymentPublic):
    branch: str
    recorded_at: datetime


# --- multi-point inspection ---------------------------------------------------------------

_TEMPLATE_VERSION = Column("version", Integer, nullable=False)
_INSPECTION_VERSION = Column("version", Integer, nullable=False)


class InspectionTemplate(Base, table=True):
    """A branch's multi-point inspection: areas of items, each maybe with a measurement
    (unit and limits) and the canned work it proposes when amber or red. A branch without
    a row reads the default (`inspections.DEFAULT_AREAS`), version 0."""

    __tablename__ = "inspection_template"

    branch: str = Field(sa_type=String(32), primary_key=True)
    areas: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    updated_by: str = Field(sa_type=String(64))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    version: int = Field(default=1, sa_column=_TEMPLATE_VERSION)

    __mapper_args__ = {"version_id_col": _TEMPLATE_VERSION}


class Inspection(Base, table=True):
    """The inspection of one repair order, filled item by item on the technician's phone."""

    __tablename__ = "inspection"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    repair_order_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("repair_order.id"), nullable=False, unique=True)
    )
    branch: str = Field(sa_type=String(32))
    status: str = Field(default="open", sa_type=String(16))  # open, completed
    items: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    started_by: str = Field(sa_type=String(64))
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    completed_by: str | None = Field(default=None, sa_type=String(64))
    completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    extra_work_id: uuid.UUID | None = None
    version: int = Field(default=1, sa_column=_INSPECTION_VERSION)

    __mapper_args__ = {"version_id_col": _INSPECTION_VERSION}
