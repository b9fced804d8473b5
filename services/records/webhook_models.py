"""ERP webhooks' tables (on records' metadata) and their input and output schemas."""

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, StrictBool, StringConstraints, field_validator
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from services.records.models import Base
from shared.types import Instant, UTCDateTime


class EventType(StrEnum):
    """What an ERP can subscribe to (the `type` of the delivered payload)."""

    invoice_settled = "invoice.settled"
    parts_used = "parts.used"
    customer_registered = "customer.registered"
    vehicle_registered = "vehicle.registered"
    customer_updated = "customer.updated"
    vehicle_owner_changed = "vehicle.owner_changed"


PING = "webhook.ping"


class DeliveryStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"


_ENDPOINT_VERSION = Column("version", Integer, nullable=False)


class WebhookEndpoint(Base, table=True):
    """Where a branch's ERP wants its events, signed with the endpoint's secret."""

    __tablename__ = "webhook_endpoint"
    __table_args__ = (Index("ix_webhook_endpoint_branch", "branch"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    url: str = Field(sa_type=String(2000))
    description: str = Field(default="", sa_type=String(200))
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret: str = Field(sa_type=String(200))
    # During a rotation the old secret signs too, until this time.
    previous_secret: str | None = Field(default=None, sa_type=String(200))
    previous_secret_until: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    disabled_reason: str | None = Field(default=None, sa_type=String(40))
    disabled_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    # After 429/502/504 nothing is sent to the endpoint before this time.
    throttled_until: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    created_by: str = Field(sa_type=String(64))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    version: int = Field(default=1, sa_column=_ENDPOINT_VERSION)

    __mapper_args__ = {"version_id_col": _ENDPOINT_VERSION}

    def secrets(self, now: datetime) -> list[str]:
        """The secrets that sign right now: the current one, and the previous during overlap."""
        if self.previous_secret and self.previous_secret_until and now < self.previous_secret_until:
            return [self.secret, self.previous_secret]
        return [self.secret]


class WebhookDelivery(Base, table=True):
    """One message to one endpoint: the exact body, retried until it succeeds or gives up."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "message_id", name="uq_webhook_delivery_message"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_endpoint", "endpoint_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    endpoint_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("webhook_endpoint.id"), nullable=False)
    )
    branch: str = Field(sa_type=String(32))
    # `webhook-id`: the same for every attempt and every endpoint of one message.
    message_id: str = Field(sa_type=String(64))
    event_type: str = Field(sa_type=String(60))
    source_event_id: str | None = Field(default=None, sa_type=String(36))
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=DeliveryStatus.pending, sa_type=String(12))
    attempts: int = 0
    # Attempts since the delivery was queued or last replayed: what the retry schedule counts.
    round_attempts: int = 0
    trigger: str = Field(default="event", sa_type=String(12))  # event, ping, replay
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_attempt_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    last_status_code: int | None = None
    last_response_ms: int | None = None
    last_error: str | None = Field(default=None, sa_type=String(500))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


class WebhookAttempt(Base, table=True):
    """One try of a delivery: what came back and how long it took."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_delivery", "delivery_id", "number"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    delivery_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("webhook_delivery.id"), nullable=False)
    )
    number: int
    trigger: str = Field(default="event", sa_type=String(12))  # event, ping, replay, retry
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status_code: int | None = None
    response_ms: int | None = None
    response_body: str | None = Field(default=None, sa_type=String(1000))
    error: str | None = Field(default=None, sa_type=String(500))


class ErpSource(Base, table=True):
    """An ERP allowed to call records' inbound endpoints, known by its signing secret."""

    __tablename__ = "erp_source"
    __table_args__ = (Index("ix_erp_source_branch", "branch"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    name: str = Field(sa_type=String(100))
    secret: str = Field(sa_type=String(200))
    previous_secret: str | None = Field(default=None, sa_type=String(200))
    previous_secret_until: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    created_by: str = Field(sa_type=String(64))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))

    def secrets(self, now: datetime) -> list[str]:
        if self.previous_secret and self.previous_secret_until and now < self.previous_secret_until:
            return [self.secret, self.previous_secret]
        return [self.secret]


class ErpInboundMessage(Base, table=True):
    """Each signed message an ERP sent (its `webhook-id`): a replay is answered, not redone."""

    __tablename__ = "erp_inbound_message"

    source_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("erp_source.id"), primary_key=True, nullable=False)
    )
    message_id: str = Field(sa_column=Column(String(100), primary_key=True, nullable=False))
    kind: str = Field(sa_type=String(20))
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ErpPayment(Base, table=True):
    """A payment the ERP confirmed; one per ERP payment id and branch."""

    __tablename__ = "erp_payment"
    __table_args__ = (
        UniqueConstraint("branch", "erp_payment_id", name="uq_erp_payment_branch_payment"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    source_id: uuid.UUID = Field(sa_column=Column(ForeignKey("erp_source.id"), nullable=False))
    erp_payment_id: str = Field(sa_type=String(64))
    invoice_number: str = Field(sa_type=String(60))
    repair_order_id: uuid.UUID | None = None
    amount: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))
    currency: str = Field(sa_type=String(3))
    method: str = Field(sa_type=String(20))
    paid_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ErpInvoice(Base, table=True):
    """Invoice number → repair order, from settlements, so an ERP payment finds its order."""

    __tablename__ = "erp_invoice"

    branch: str = Field(sa_column=Column(String(32), primary_key=True, nullable=False))
    invoice_number: str = Field(sa_column=Column(String(60), primary_key=True, nullable=False))
    repair_order_id: uuid.UUID


class PartPriceList(Base, table=True):
    """A parts price list the ERP pushed; the newest one in force gives a part's price."""

    __tablename__ = "part_price_list"
    __table_args__ = (
        UniqueConstraint("source_id", "list_id", name="uq_part_price_list_source_list"),
        Index("ix_part_price_list_branch_valid", "branch", "valid_from"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    source_id: uuid.UUID = Field(sa_column=Column(ForeignKey("erp_source.id"), nullable=False))
    list_id: str = Field(sa_type=String(100))
    currency: str = Field(sa_type=String(3))
    valid_from: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    item_count: int = 0
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class PartPrice(Base, table=True):
    __tablename__ = "part_price"
    __table_args__ = (Index("ix_part_price_branch_part", "branch", "part_number"),)

    price_list_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("part_price_list.id"), primary_key=True, nullable=False)
    )
    part_number: str = Field(sa_column=Column(String(40), primary_key=True, nullable=False))
    branch: str = Field(sa_type=String(32))
    description: str = Field(default="", sa_type=String(200))
    unit_price: Decimal = Field(sa_column=Column(Numeric(14, 2), nullable=False))
    valid_from: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


# --- input and output --------------------------------------------------------------

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Text200 = Annotated[str, StringConstraints(max_length=200)]
Token = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class EndpointCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    url: Url
    event_types: list[EventType] = Field(min_length=1, max_length=len(EventType))
    description: Text200 = ""
    active: StrictBool = True

    @field_validator("event_types")
    @classmethod
    def _distinct(cls, value: list[EventType]) -> list[EventType]:
        return sorted(set(value))


class EndpointUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    url: Url | None = None
    event_types: list[EventType] | None = Field(
        default=None, min_length=1, max_length=len(EventType)
    )
    description: Text200 | None = None
    active: StrictBool | None = None


class SecretRotation(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    # How long the old secret keeps signing beside the new one (default one day).
    overlap_seconds: int = Field(default=86400, ge=0, le=7 * 86400)


class EndpointPublic(SQLModel):
    id: uuid.UUID
    branch: str
    url: str
    description: str
    event_types: list[str]
    active: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    throttled_until: datetime | None
    previous_secret_until: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    etag: str


class EndpointWithSecret(EndpointPublic):
    secret: str


class AttemptPublic(SQLModel):
    number: int
    trigger: str
    started_at: datetime
    status_code: int | None
    response_ms: int | None
    response_body: str | None
    error: str | None


class DeliveryPublic(SQLModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    message_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_response_ms: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


class DeliveryDetail(DeliveryPublic):
    request_body: Any
    attempt_log: list[AttemptPublic]


class ErpSourceCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class ErpSourceUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
        | None
    ) = None
    active: StrictBool | None = None


class ErpSourcePublic(SQLModel):
    id: uuid.UUID
    branch: str
    name: str
    active: bool
    previous_secret_until: datetime | None
    created_at: datetime
    inbound_paths: list[str]


class ErpSourceWithSecret(ErpSourcePublic):
    secret: str


class PriceListItemIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    part_number: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)
    ]
    description: Text200 = ""
    unit_price: Decimal = Field(ge=0, max_digits=14, decimal_places=2)


class PriceListIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    list_id: Token
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    valid_from: Instant
    items: list[PriceListItemIn] = Field(min_length=1, max_length=20000)

    @field_validator("valid_from")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone offset")
        return value

    @field_validator("items")
    @classmethod
    def _unique_parts(cls, value: list[PriceListItemIn]) -> list[PriceListItemIn]:
        numbers = [i.part_number for i in value]
        if len(set(numbers)) != len(numbers):
            raise ValueError("a part number appears twice")
        return value


class PaymentIn(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    erp_payment_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)
    ]
    invoice_number: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)
    ]
    repair_order_id: uuid.UUID | None = None
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    method: Annotated[
        str, StringConstraints(pattern=r"^(transfer|card|cash|wechat|alipay|fleet_account)$")
    ]
    paid_at: Instant

    @field_validator("paid_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("needs a time zone offset")
        return value


class InboundAnswer(SQLModel):
    status: str  # accepted, duplicate
    id: uuid.UUID | None = None


class ErpPaymentPublic(SQLModel):
    id: uuid.UUID
    erp_payment_id: str
    invoice_number: str
    repair_order_id: uuid.UUID | None
    amount: Decimal
    currency: str
    method: str
    paid_at: datetime
    received_at: datetime


class PriceListPublic(SQLModel):
    id: uuid.UUID
    list_id: str
    currency: str
    valid_from: datetime
    item_count: int
    received_at: datetime


class PartPricePublic(SQLModel):
    part_number: str
    description: str
    unit_price: Decimal
    currency: str
    valid_from: datetime
    price_list_id: uuid.UUID
    list_id: str
