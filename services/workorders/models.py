"""Workorders' tables and their output schemas."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, String
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.events import utcnow
from shared.idempotency import make_idempotency_model
from shared.outbox import make_outbox_models
from shared.types import UTCDateTime


class Base(SQLModel, registry=registry()):
    """Workorders' own metadata."""


OutboxEvent, InboxEvent = make_outbox_models(Base)
IdempotencyRecord = make_idempotency_model(Base)


class RepairOrderStatus(StrEnum):
    draft = "draft"
    open = "open"
    in_progress = "in_progress"
    waiting_parts = "waiting_parts"
    qc = "qc"
    washing = "washing"
    ready = "ready"
    settled = "settled"
    delivered = "delivered"
    cancelled = "cancelled"


class RepairOrderNumber(Base, table=True):
    """Last number handed out per branch and year: RO-2026-000123."""

    __tablename__ = "repair_order_number"

    branch: str = Field(sa_type=String(32), primary_key=True)
    year: int = Field(primary_key=True)
    last: int = 0


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
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    opened_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class RepairOrderPublic(RepairOrderBase):
    id: uuid.UUID
    opened_at: datetime
