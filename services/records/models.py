"""Records' tables and their output schemas."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, StringConstraints
from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, String
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


# --- Stored files -------------------------------------------------------------------------


class StoredFileBase(SQLModel):
    sha256: str = Field(sa_type=String(64))
    size: int = Field(sa_type=BigInteger)
    media_type: str = Field(sa_type=String(100))
    original_name: str = Field(sa_type=String(255))
    uploaded_by: str = Field(sa_type=String(64))
    branch: str = Field(sa_type=String(32))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class StoredFile(Base, StoredFileBase, table=True):
    """A file kept for the branch: its bytes live once per content hash in the storage."""

    __tablename__ = "stored_file"
    __table_args__ = (
        Index("ux_stored_file_branch_sha256", "branch", "sha256", unique=True),
        Index("ix_stored_file_sha256", "sha256"),
        Index("ix_stored_file_last_seen", "last_seen_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # Uploading the same content again refreshes this: the collector's grace runs from it.
    last_seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class StoredFilePublic(StoredFileBase):
    id: uuid.UUID


class FileReference(Base, table=True):
    """Something that needs the file: a file with no reference is collected after a grace."""

    __tablename__ = "file_reference"

    file_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("stored_file.id"), primary_key=True, nullable=False)
    )
    owner: str = Field(sa_type=String(60), primary_key=True)
    owner_id: str = Field(sa_type=String(64), primary_key=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class FileReferenceCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    owner: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.]{0,59}$")] = Field(
        description="what refers to the file, e.g. reception.intake_photo"
    )
    owner_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class FileReferencePublic(SQLModel):
    file_id: uuid.UUID
    owner: str
    owner_id: str
    created_at: datetime
