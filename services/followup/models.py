"""Followup's tables and their output schemas."""

import uuid
from datetime import datetime

from sqlalchemy import Column, Index, String
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.idempotency import make_idempotency_model
from shared.outbox import make_outbox_models
from shared.types import UTCDateTime


class Base(SQLModel, registry=registry()):
    """Followup's own metadata."""


OutboxEvent, InboxEvent = make_outbox_models(Base)
IdempotencyRecord = make_idempotency_model(Base)


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
