"""Records' tables and their output schemas."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.idempotency import make_idempotency_model
from shared.outbox import make_outbox_models
from shared.types import UTCDateTime


class Base(SQLModel, registry=registry()):
    """Records' own metadata."""


OutboxEvent, InboxEvent = make_outbox_models(Base)
IdempotencyRecord = make_idempotency_model(Base)


class ArchivedVehicle(Base, table=True):
    """The archive's card of a vehicle, kept from reception's events."""

    __tablename__ = "archived_vehicle"
    __table_args__ = (Index("ix_archived_vehicle_branch_vin", "branch", "vin"),)

    vehicle_id: uuid.UUID = Field(primary_key=True)
    branch: str = Field(sa_type=String(32))
    vin: str = Field(sa_type=String(17))
    plate: str | None = Field(default=None, sa_type=String(16))
    make: str | None = Field(default=None, sa_type=String(80))
    model: str | None = Field(default=None, sa_type=String(80))
    model_year: int | None = None
    customer_id: uuid.UUID | None = None
    as_of: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class TimelineEntryBase(SQLModel):
    kind: str = Field(sa_type=String(40))
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    reference_id: uuid.UUID
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class TimelineEntry(Base, TimelineEntryBase, table=True):
    """One thing that happened to a vehicle or customer; one row per source event."""

    __tablename__ = "timeline_entry"
    __table_args__ = (
        Index("ux_timeline_entry_event", "event_id", unique=True),
        Index("ix_timeline_entry_vehicle", "vehicle_id", "occurred_at"),
        Index("ix_timeline_entry_customer", "customer_id", "occurred_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    event_id: str = Field(sa_type=String(36))
    branch: str = Field(sa_type=String(32))
    vehicle_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None


class TimelineEntryPublic(TimelineEntryBase):
    id: uuid.UUID
    vehicle_id: uuid.UUID | None
    customer_id: uuid.UUID | None


class VehicleTimeline(SQLModel):
    vehicle_id: uuid.UUID
    vin: str | None
    plate: str | None
    make: str | None
    model_year: int | None
    entries: list[TimelineEntryPublic]
    next_cursor: str | None = None
