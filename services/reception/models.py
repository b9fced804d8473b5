"""Reception's tables and their input/output schemas."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, StringConstraints, field_validator
from sqlalchemy import JSON, Column, Index, String
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.events import utcnow
from shared.idempotency import make_idempotency_model
from shared.outbox import make_outbox_models
from shared.types import UTCDateTime


class Base(SQLModel, registry=registry()):
    """Reception's own metadata: its tables never mix with another service's."""


OutboxEvent, InboxEvent = make_outbox_models(Base)
IdempotencyRecord = make_idempotency_model(Base)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Mobile = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 -]{5,19}$")
]
Plate = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=2, max_length=16)
]
Concern = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class ContactChannel(StrEnum):
    phone = "phone"
    sms = "sms"
    wechat = "wechat"
    email = "email"


class Language(StrEnum):
    zh_cn = "zh-CN"
    en = "en"


def _timestamp() -> datetime:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


# --- customers ---------------------------------------------------------------------


class CustomerBase(SQLModel):
    name: Name = Field(sa_type=String(100))
    mobile: Mobile | None = Field(default=None, sa_type=String(24))
    preferred_channel: ContactChannel = Field(default=ContactChannel.phone, sa_type=String(16))
    language: Language = Field(default=Language.zh_cn, sa_type=String(8))
    company: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, sa_type=String(200)
    )
    contact_consent: bool = True


class CustomerCreate(CustomerBase):
    model_config = ConfigDict(  # type: ignore[assignment]
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "王芳",
                    "mobile": "13800138000",
                    "preferred_channel": "wechat",
                    "language": "zh-CN",
                    "contact_consent": True,
                }
            ]
        },
    )


class Customer(Base, CustomerBase, table=True):
    __tablename__ = "customer"
    __table_args__ = (Index("ix_customer_branch_mobile", "branch", "mobile"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32), index=True)
    created_at: datetime = _timestamp()


class CustomerPublic(CustomerBase):
    id: uuid.UUID
    branch: str
    created_at: datetime


# --- vehicles ----------------------------------------------------------------------


class VehicleBase(SQLModel):
    plate: Plate | None = Field(default=None, sa_type=String(16))
    colour: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        default=None, sa_type=String(40)
    )
    model: Annotated[str, StringConstraints(max_length=80)] | None = Field(
        default=None, sa_type=String(80)
    )


class VehicleCreate(VehicleBase):
    model_config = ConfigDict(  # type: ignore[assignment]
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "6f1c2d9e-8a4b-4c1e-9f7d-2b3a4c5d6e7f",
                    "vin": "LSVAU2180N2183294",
                    "plate": "沪A12345",
                    "colour": "white",
                    "model": "Lavida",
                }
            ]
        },
    )

    customer_id: uuid.UUID
    vin: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, max_length=17)]

    @field_validator("vin")
    @classmethod
    def _vin_is_seventeen(cls, value: str) -> str:
        if len(value) != 17:
            raise ValueError(f"a VIN has 17 characters, this one has {len(value)}")
        return value


class Vehicle(Base, VehicleBase, table=True):
    __tablename__ = "vehicle"
    __table_args__ = (Index("ux_vehicle_branch_vin", "branch", "vin", unique=True),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32), index=True)
    customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True)
    vin: str = Field(sa_type=String(17))
    make: str | None = Field(default=None, sa_type=String(80))
    model_year: int | None = None
    country: str | None = Field(default=None, sa_type=String(60))
    created_at: datetime = _timestamp()


class VehiclePublic(VehicleBase):
    id: uuid.UUID
    branch: str
    customer_id: uuid.UUID
    vin: str
    make: str | None
    model_year: int | None
    country: str | None
    created_at: datetime


# --- intakes -----------------------------------------------------------------------


class IntakeStatus(StrEnum):
    open = "open"
    completed = "completed"
    cancelled = "cancelled"


class IntakeCreate(SQLModel):
    model_config = ConfigDict(  # type: ignore[assignment]
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "vehicle_id": "0b6a1f7e-2c3d-4e5f-8a9b-1c2d3e4f5a6b",
                    "odometer_km": 45210,
                    "concerns": ["刹车时有异响", "Air conditioning smells musty"],
                }
            ]
        },
    )

    vehicle_id: uuid.UUID
    odometer_km: int = Field(ge=0, le=3_000_000)
    concerns: list[Concern] = Field(default_factory=list, max_length=30)
    appointment_id: uuid.UUID | None = None


class Intake(Base, table=True):
    __tablename__ = "intake"
    __table_args__ = (Index("ix_intake_branch_opened", "branch", "opened_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    vehicle_id: uuid.UUID = Field(foreign_key="vehicle.id", index=True)
    customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True)
    appointment_id: uuid.UUID | None = None
    advisor: str = Field(sa_type=String(64))
    odometer_km: int
    concerns: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: IntakeStatus = Field(default=IntakeStatus.open, sa_type=String(16))
    opened_at: datetime = _timestamp()


class IntakePublic(SQLModel):
    id: uuid.UUID
    branch: str
    vehicle_id: uuid.UUID
    customer_id: uuid.UUID
    appointment_id: uuid.UUID | None
    advisor: str
    odometer_km: int
    concerns: list[str]
    status: IntakeStatus
    opened_at: datetime
