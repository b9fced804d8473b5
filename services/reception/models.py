"""Reception's tables and their input/output schemas."""

import hashlib
import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic import Field as PField
from sqlalchemy import JSON, Column, Index, Integer, Numeric, String
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.audit import make_audit_model
from shared.events import utcnow
from shared.idempotency import make_idempotency_model
from shared.outbox import make_outbox_models
from shared.types import Instant, UTCDateTime


class Base(SQLModel, registry=registry()):
    """Reception's own metadata: its tables never mix with another service's."""


OutboxEvent, InboxEvent = make_outbox_models(Base)
IdempotencyRecord = make_idempotency_model(Base)
AuditEntry = make_audit_model(Base)

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


class AccountKind(StrEnum):
    """A private customer, a company's account, or a fleet (several vehicles, one payer)."""

    private = "private"
    company = "company"
    fleet = "fleet"


def _timestamp() -> datetime:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


# --- customers ---------------------------------------------------------------------


class CustomerBase(SQLModel):
    # Byte order on PostgreSQL as on SQLite: the desk's name prefix is a range on the index.
    name: Name = Field(sa_type=String(100).with_variant(String(100, collation="C"), "postgresql"))
    mobile: Mobile | None = Field(default=None, sa_type=String(24))
    preferred_channel: ContactChannel = Field(default=ContactChannel.phone, sa_type=String(16))
    language: Language = Field(default=Language.zh_cn, sa_type=String(8))
    company: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None, sa_type=String(200)
    )
    contact_consent: StrictBool = True
    account_kind: AccountKind = Field(
        default=AccountKind.private,
        sa_type=String(16),
        sa_column_kwargs={"server_default": "private"},
    )


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
                    "other_mobiles": ["13900139000"],
                }
            ]
        },
    )

    # Further numbers the customer answers on (work phone, a driver of a fleet car).
    other_mobiles: list[Mobile] = PField(default_factory=list, max_length=5)

    @model_validator(mode="after")
    def _company_accounts_are_named(self) -> "CustomerCreate":
        if self.account_kind != AccountKind.private and not self.company:
            raise ValueError(f"a {self.account_kind.value} account needs the company name")
        numbers = [n for n in [self.mobile, *self.other_mobiles] if n]
        if len(set(numbers)) != len(numbers):
            raise ValueError("other_mobiles: each number once, the main mobile not again")
        return self


_CUSTOMER_VERSION = Column("version", Integer, nullable=False, server_default="1")


class CustomerUpdate(BaseModel):
    """A customer's details edited at the desk; fields left out stay as they are.
    `other_mobiles` replaces the whole list of further numbers."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "王芳", "preferred_channel": "sms", "contact_consent": False}]
        },
    )

    name: Name | None = None
    mobile: Mobile | None = None
    other_mobiles: list[Mobile] | None = PField(default=None, max_length=5)
    preferred_channel: ContactChannel | None = None
    language: Language | None = None
    company: Annotated[str, StringConstraints(max_length=200)] | None = None
    contact_consent: StrictBool | None = None
    account_kind: AccountKind | None = None

    @field_validator(
        "name",
        "other_mobiles",
        "preferred_channel",
        "language",
        "contact_consent",
        "account_kind",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Only `mobile` and `company` can be cleared; the rest always hold a value.
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class Customer(Base, CustomerBase, table=True):
    __tablename__ = "customer"
    __table_args__ = (
        Index("ix_customer_branch_mobile", "branch", "mobile"),
        Index("ix_customer_branch_name", "branch", "name"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32), index=True)
    other_mobiles: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    created_at: datetime = _timestamp()
    updated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    version: int = Field(default=1, sa_column=_CUSTOMER_VERSION)

    __mapper_args__ = {"version_id_col": _CUSTOMER_VERSION}


class CustomerPublic(CustomerBase):
    id: uuid.UUID
    branch: str
    other_mobiles: list[str] = []
    created_at: datetime
    updated_at: datetime | None = None
    version: int = 1


class MobileAdd(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"mobile": "13900139000"}]}
    )

    mobile: Mobile


class CustomerPhone(Base, table=True):
    """Every number of a customer (the main one too), for the desk's phone search."""

    __tablename__ = "customer_phone"
    __table_args__ = (Index("ix_customer_phone_branch_number", "branch", "number"),)

    customer_id: uuid.UUID = Field(foreign_key="customer.id", primary_key=True)
    number: str = Field(sa_type=String(24), primary_key=True)
    branch: str = Field(sa_type=String(32))


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
    __table_args__ = (
        Index("ux_vehicle_branch_vin", "branch", "vin", unique=True),
        Index("ix_vehicle_branch_vin_last6", "branch", "vin_last6"),
        Index("ix_vehicle_branch_plate", "branch", "plate"),
        Index("ix_vehicle_branch_created", "branch", "created_at", "id"),
        Index("ix_vehicle_branch_owner_initial", "branch", "owner_initial", "created_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32), index=True)
    customer_id: uuid.UUID = Field(foreign_key="customer.id", index=True)
    vin: str = Field(sa_type=String(17))
    # The desk asks for "the last six of the VIN": kept apart so the lookup uses an index.
    vin_last6: str | None = Field(default=None, sa_type=String(6))
    make: str | None = Field(default=None, sa_type=String(80))
    model_year: int | None = None
    country: str | None = Field(default=None, sa_type=String(60))
    created_at: datetime = _timestamp()
    # The first character of the owner's name (the surname): a surname alone at the desk is
    # an equality on this, read newest first straight from its index.
    owner_initial: str | None = Field(default=None, sa_type=String(1))


class PlateSuffix(Base, table=True):
    """Every suffix of three or more characters of a plate: a partial plate is then a
    prefix range over one index, `(branch, suffix)`, on SQLite and PostgreSQL alike."""

    __tablename__ = "vehicle_plate_suffix"
    __table_args__ = (Index("ix_plate_suffix_branch_suffix", "branch", "suffix"),)

    vehicle_id: uuid.UUID = Field(foreign_key="vehicle.id", primary_key=True)
    # Byte order on PostgreSQL too, so that the prefix range is a plain range whatever
    # the database's collation (SQLite compares bytes anyway).
    suffix: str = Field(
        sa_type=String(16).with_variant(String(16, collation="C"), "postgresql"),
        primary_key=True,
    )
    branch: str = Field(sa_type=String(32))


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
    # Needed only when the reading is lower than the vehicle's last one.
    odometer_override_reason: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
        | None
    ) = None


_INTAKE_VERSION = Column("version", Integer, nullable=False, server_default="1")


class CheckState(StrEnum):
    ok = "ok"
    attention = "attention"
    urgent = "urgent"


class ChecklistEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    state: CheckState
    note: Annotated[str, StringConstraints(max_length=500)] = ""
    tread_depth_mm: Annotated[Decimal, PField(ge=0, le=30, decimal_places=1)] | None = None


class DamageKind(StrEnum):
    scratch = "scratch"
    dent = "dent"
    crack = "crack"
    chip = "chip"
    other = "other"


class DamageMark(BaseModel):
    model_config = ConfigDict(extra="forbid")

    position: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    kind: DamageKind
    photo_file_id: uuid.UUID | None = None
    note: Annotated[str, StringConstraints(max_length=500)] = ""


class IntakeWalkaround(BaseModel):
    """What the walk-around found; fields left out stay as they are."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "fuel_level_pct": 40,
                    "checklist": [
                        {"item": "tyre_front_left", "state": "attention", "tread_depth_mm": "2.5"},
                        {"item": "wipers", "state": "urgent", "note": "雨刮老化"},
                        {"item": "lights", "state": "ok"},
                    ],
                    "damage_marks": [
                        {
                            "position": "rear_bumper_left",
                            "kind": "scratch",
                            "photo_file_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
                        }
                    ],
                    "valuables_acknowledged": True,
                    "signature_file_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                }
            ]
        },
    )

    fuel_level_pct: int | None = PField(default=None, ge=0, le=100)
    charge_level_pct: int | None = PField(default=None, ge=0, le=100)
    checklist: list[ChecklistEntry] | None = PField(default=None, max_length=60)
    damage_marks: list[DamageMark] | None = PField(default=None, max_length=60)
    concerns: list[Concern] | None = PField(default=None, max_length=30)
    valuables_acknowledged: StrictBool | None = None
    signature_file_id: uuid.UUID | None = None


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
    # The walk-around (环车检查), filled in while the customer stands by the car.
    fuel_level_pct: int | None = None
    charge_level_pct: int | None = None
    checklist: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    damage_marks: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    valuables_acknowledged_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime())
    )
    signature_file_id: uuid.UUID | None = None
    completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    version: int = Field(default=1, sa_column=_INTAKE_VERSION)

    __mapper_args__ = {"version_id_col": _INTAKE_VERSION}


class FileRelease(Base, table=True):
    """A reference reception no longer needs (a photo or signature removed or replaced on
    an intake), written in the same transaction as the change and deleted once records has
    dropped it: nothing is lost while records is unreachable."""

    __tablename__ = "file_release"
    __table_args__ = (Index("ix_file_release_due", "next_attempt_at"),)

    file_id: uuid.UUID = Field(primary_key=True)
    owner: str = Field(sa_type=String(60), primary_key=True)
    owner_id: uuid.UUID = Field(primary_key=True)
    branch: str = Field(sa_type=String(32))
    created_at: datetime = _timestamp()
    next_attempt_at: datetime = _timestamp()
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=String(300))


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
    fuel_level_pct: int | None = None
    charge_level_pct: int | None = None
    checklist: list[dict[str, Any]] = []
    damage_marks: list[dict[str, Any]] = []
    valuables_acknowledged_at: datetime | None = None
    signature_file_id: uuid.UUID | None = None
    completed_at: datetime | None = None
    version: int = 1


# --- estimates and the consent ledger ----------------------------------------------


class LineKind(StrEnum):
    labour = "labour"
    part = "part"
    fee = "fee"


class PayType(StrEnum):
    customer = "customer"
    warranty = "warranty"
    internal = "internal"


class JobKind(StrEnum):
    repair = "repair"
    maintenance = "maintenance"
    recall = "recall"
    warranty = "warranty"


class Decision(StrEnum):
    approved = "approved"
    declined = "declined"


class ConsentChannel(StrEnum):
    in_person = "in_person"
    phone = "phone"
    link = "link"


Money = Annotated[Decimal, PField(ge=0, le=Decimal("9999999.99"), max_digits=9, decimal_places=2)]
# Unit prices and rates may carry fractions of a cent (oil per litre); nets never do.
Price = Annotated[
    Decimal, PField(ge=0, le=Decimal("9999999.9999"), max_digits=11, decimal_places=4)
]
Hours = Annotated[Decimal, PField(ge=0, le=Decimal("999.99"), max_digits=5, decimal_places=2)]
Quantity = Annotated[Decimal, PField(gt=0, le=Decimal("99999.999"), max_digits=8, decimal_places=3)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class LineIn(BaseModel):
    """A line as the advisor enters it. Give `line_id` to keep a line of the previous
    revision (its consent history follows it); leave it out for a new line."""

    model_config = ConfigDict(extra="forbid")

    line_id: uuid.UUID | None = None
    kind: LineKind
    description: Text = ""
    op_code: Code | None = None
    op_group: Code | None = None
    job_kind: JobKind = JobKind.repair
    flat_rate_hours: Hours = Decimal("0")
    labour_rate: Price = Decimal("0")
    part_number: Code | None = None
    quantity: Quantity = Decimal("1")
    unit_price: Price = Decimal("0")
    discount: Money = Decimal("0")
    pay_type: PayType = PayType.customer

    @model_validator(mode="after")
    def _complete_for_its_kind(self) -> "LineIn":
        if self.kind == LineKind.labour:
            if not self.op_code:
                raise ValueError("a labour line needs an op_code")
            if self.flat_rate_hours <= 0:
                raise ValueError("a labour line needs flat_rate_hours above zero")
            gross = self.flat_rate_hours * self.labour_rate
        else:
            if self.kind == LineKind.part and not self.part_number:
                raise ValueError("a parts line needs a part_number")
            if self.kind == LineKind.fee and not self.description:
                raise ValueError("a fee needs a description")
            gross = self.quantity * self.unit_price
        if self.discount > gross:
            raise ValueError(f"discount {self.discount} exceeds the line amount {gross}")
        return self


class RevisionLine(LineIn):
    """A line as one revision holds it. `offer` counts how often it was put to the
    customer: re-offering a declined line raises it, so it needs a fresh answer."""

    line_id: uuid.UUID
    net: Decimal = Decimal("0")
    offer: int = 1
    extra_work_id: uuid.UUID | None = None

    def fingerprint(self) -> str:
        """What the customer answers to: the priced content of the line, not its id."""
        content = self.model_dump(mode="json", exclude={"line_id", "net", "extra_work_id"})
        return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


_LINE_EXAMPLES: list[Any] = [
    {
        "kind": "labour",
        "op_code": "BRK-PAD-F",
        "op_group": "brakes",
        "description": "更换前刹车片 Replace front brake pads",
        "job_kind": "repair",
        "flat_rate_hours": "1.20",
        "labour_rate": "380.00",
        "pay_type": "customer",
    },
    {
        "kind": "part",
        "part_number": "5QD698151",
        "description": "前刹车片 Front brake pads",
        "quantity": "1",
        "unit_price": "468.00",
        "discount": "20.00",
    },
    {"kind": "fee", "description": "环保处理费 Disposal fee", "unit_price": "15.00"},
]


class EstimateCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "intake_id": "0b6a1f7e-2c3d-4e5f-8a9b-1c2d3e4f5a6b",
                    "promised_at": "2026-12-01T09:30:00Z",
                    "lines": _LINE_EXAMPLES,
                    "note": "刹车异响 brake noise",
                }
            ]
        },
    )

    intake_id: uuid.UUID
    promised_at: Instant
    lines: list[LineIn] = PField(default_factory=list, max_length=200)
    note: Text = ""


class EstimateRevise(BaseModel):
    """The whole new revision: lines to keep carry their line_id, the rest are new."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"promised_at": "2026-12-01T11:00:00Z", "lines": _LINE_EXAMPLES, "note": "加急"}
            ]
        },
    )

    promised_at: Instant
    lines: list[LineIn] = PField(default_factory=list, max_length=200)
    note: Text = ""


class Reoffer(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"line_ids": ["3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"]}]},
    )

    line_ids: list[uuid.UUID] = PField(min_length=1, max_length=200)


class LineDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: uuid.UUID
    decision: Decision


class ConsentCreate(BaseModel):
    """Answers for lines of the current revision, from the customer in person or by phone."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "decisions": [
                        {"line_id": "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "decision": "approved"}
                    ],
                    "by": "王芳",
                    "channel": "in_person",
                    "signature_file_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
                },
                {
                    "decisions": [
                        {"line_id": "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "decision": "declined"}
                    ],
                    "by": "王芳",
                    "channel": "phone",
                    "call_note": "客户电话确认：下次再换 declined by phone, next visit",
                },
            ]
        },
    )

    decisions: list[LineDecision] = PField(min_length=1, max_length=200)
    by: Name
    channel: ConsentChannel
    signature_file_id: uuid.UUID | None = None
    call_note: Text | None = None

    @model_validator(mode="after")
    def _evidence_for_the_channel(self) -> "ConsentCreate":
        if self.channel == ConsentChannel.link:
            raise ValueError("channel link is recorded only through the approval link")
        if self.channel == ConsentChannel.in_person and self.signature_file_id is None:
            raise ValueError("consent in person needs the signature_file_id")
        if self.channel == ConsentChannel.phone and not self.call_note:
            raise ValueError("consent by phone needs a call_note")
        return self


_ESTIMATE_VERSION = Column("version", Integer, nullable=False)


class Estimate(Base, table=True):
    __tablename__ = "estimate"
    __table_args__ = (Index("ux_estimate_intake", "intake_id", unique=True),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32), index=True)
    intake_id: uuid.UUID = Field(foreign_key="intake.id")
    customer_id: uuid.UUID = Field(foreign_key="customer.id")
    vehicle_id: uuid.UUID = Field(foreign_key="vehicle.id")
    advisor: str = Field(sa_type=String(64))
    currency: str = Field(default="CNY", sa_type=String(3))
    current_revision: int = 0
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
    version: int = Field(default=1, sa_column=_ESTIMATE_VERSION)

    __mapper_args__ = {"version_id_col": _ESTIMATE_VERSION}


class EstimateRevision(Base, table=True):
    """One revision, never changed after it is written except to mark it approved."""

    __tablename__ = "estimate_revision"
    __table_args__ = (Index("ux_estimate_revision", "estimate_id", "number", unique=True),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    estimate_id: uuid.UUID = Field(foreign_key="estimate.id")
    number: int
    promised_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    tax_rate: str = Field(sa_type=String(12))
    lines: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    note: str = Field(default="", sa_type=String(500))
    extra_work_id: uuid.UUID | None = Field(default=None, index=True)
    repair_order_id: uuid.UUID | None = None
    created_by: str = Field(sa_type=String(64))
    created_at: datetime = _timestamp()
    approved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))

    def revision_lines(self) -> list[RevisionLine]:
        return [RevisionLine.model_validate(line) for line in self.lines]


class ConsentRecord(Base, table=True):
    """The consent ledger: rows are only ever added."""

    __tablename__ = "consent_record"
    __table_args__ = (Index("ix_consent_estimate_line", "estimate_id", "line_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    estimate_id: uuid.UUID = Field(foreign_key="estimate.id")
    revision: int
    line_id: uuid.UUID
    fingerprint: str = Field(sa_type=String(32))
    decision: Decision = Field(sa_type=String(16))
    by: str = Field(sa_type=String(100))
    channel: ConsentChannel = Field(sa_type=String(16))
    signature_file_id: uuid.UUID | None = None
    call_note: str | None = Field(default=None, sa_type=String(500))
    recorded_by: str = Field(sa_type=String(64))
    at: datetime = _timestamp()


class ConsentPublic(SQLModel):
    id: uuid.UUID
    revision: int
    line_id: uuid.UUID
    decision: Decision
    by: str
    channel: ConsentChannel
    signature_file_id: uuid.UUID | None
    call_note: str | None
    recorded_by: str
    at: datetime


class LineAnswer(BaseModel):
    decision: Decision
    by: str
    channel: ConsentChannel
    at: datetime


class LinePublic(RevisionLine):
    answer: LineAnswer | None = None


class PayTypeTotalPublic(BaseModel):
    pay_type: PayType
    net: Decimal
    tax: Decimal
    total: Decimal


class TotalsPublic(BaseModel):
    by_pay_type: list[PayTypeTotalPublic]
    net: Decimal
    tax: Decimal
    total: Decimal


class EstimateStatus(StrEnum):
    awaiting_consent = "awaiting_consent"
    answered = "answered"


class EstimatePublic(BaseModel):
    id: uuid.UUID
    branch: str
    intake_id: uuid.UUID
    customer_id: uuid.UUID
    vehicle_id: uuid.UUID
    advisor: str
    currency: str
    revision: int
    current_revision: int
    status: EstimateStatus
    promised_at: datetime | None
    tax_rate: Decimal
    note: str
    extra_work_id: uuid.UUID | None
    repair_order_id: uuid.UUID | None
    lines: list[LinePublic]
    totals: TotalsPublic
    approved_at: datetime | None
    created_at: datetime
    etag: str


# --- canned jobs --------------------------------------------------------------------


class CannedPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    part_number: Code
    description: Text = ""
    quantity: Quantity = Decimal("1")
    unit_price: Price = Decimal("0")


class CannedJobCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "op_code": "MNT-10K",
                    "op_group": "maintenance",
                    "description": "一万公里保养 10,000 km service",
                    "job_kind": "maintenance",
                    "flat_rate_hours": "0.80",
                    "labour_rate": "380.00",
                    "parts": [
                        {
                            "part_number": "06L115562B",
                            "description": "机油滤清器 Oil filter",
                            "quantity": "1",
                            "unit_price": "68.00",
                        },
                        {
                            "part_number": "G052195M4",
                            "description": "机油 Engine oil 5W-30",
                            "quantity": "4.5",
                            "unit_price": "85.00",
                        },
                    ],
                }
            ]
        },
    )

    op_code: Code
    op_group: Code | None = None
    description: Text = ""
    job_kind: JobKind = JobKind.repair
    flat_rate_hours: Annotated[Hours, PField(gt=0)]
    labour_rate: Price
    parts: list[CannedPart] = PField(default_factory=list, max_length=50)


class CannedJob(Base, table=True):
    __tablename__ = "canned_job"
    __table_args__ = (Index("ux_canned_job_branch_op", "branch", "op_code", unique=True),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    op_code: str = Field(sa_type=String(40))
    template: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _timestamp()


class CannedJobPublic(CannedJobCreate):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    branch: str


class CannedJobAdd(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"op_code": "MNT-10K", "pay_type": "customer"}]},
    )

    op_code: Code
    pay_type: PayType = PayType.customer


# --- the customer approval link -----------------------------------------------------


class ApprovalLink(Base, table=True):
    """A short-lived link for the customer; only the token's hash is kept."""

    __tablename__ = "approval_link"
    __table_args__ = (Index("ux_approval_link_token", "token_hash", unique=True),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    estimate_id: uuid.UUID = Field(foreign_key="estimate.id", index=True)
    revision: int
    token_hash: str = Field(sa_type=String(64))
    created_by: str = Field(sa_type=String(64))
    created_at: datetime = _timestamp()
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class ApprovalClient(Base, table=True):
    """What one client address did on the approval pages in its current minute: uses of
    any link, and failures (a token that opens no link, or a dead one). Counted by the
    client, never by the link, so nobody can use up a customer's link by hammering it."""

    __tablename__ = "approval_client"
    __table_args__ = (Index("ix_approval_client_window", "window_started_at"),)

    client: str = Field(primary_key=True, sa_type=String(64))
    window_started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    uses: int = 0
    failures: int = 0


class ApprovalLinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"ttl_minutes": 30}]})

    ttl_minutes: int | None = PField(default=None, ge=1, le=24 * 60)


class ApprovalLinkPublic(BaseModel):
    id: uuid.UUID
    estimate_id: uuid.UUID
    revision: int
    expires_at: datetime
    revoked_at: datetime | None = None
    token: str | None = None
    url: str | None = None


class LinkConsentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "by": "王芳",
                    "decisions": [
                        {"line_id": "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "decision": "approved"}
                    ],
                }
            ]
        },
    )

    by: Name
    decisions: list[LineDecision] = PField(min_length=1, max_length=200)


# --- odometer readings and owner changes --------------------------------------------


class OdometerReading(Base, table=True):
    """Every reading of a vehicle's odometer; a lower one only with a reason."""

    __tablename__ = "odometer_reading"
    __table_args__ = (Index("ix_odometer_vehicle_read", "vehicle_id", "read_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    vehicle_id: uuid.UUID = Field(foreign_key="vehicle.id")
    branch: str = Field(sa_type=String(32))
    km: int
    intake_id: uuid.UUID | None = None
    override_reason: str | None = Field(default=None, sa_type=String(500))
    recorded_by: str = Field(sa_type=String(64))
    read_at: datetime = _timestamp()


class OdometerReadingCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"km": 45210},
                {"km": 12000, "override_reason": "仪表更换 instrument cluster replaced"},
            ]
        },
    )

    km: int = PField(ge=0, le=3_000_000)
    override_reason: Text | None = None


class OdometerReadingPublic(SQLModel):
    id: uuid.UUID
    vehicle_id: uuid.UUID
    km: int
    intake_id: uuid.UUID | None
    override_reason: str | None
    recorded_by: str
    read_at: datetime


class OwnerChange(Base, table=True):
    __tablename__ = "vehicle_owner_change"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    vehicle_id: uuid.UUID = Field(foreign_key="vehicle.id", index=True)
    branch: str = Field(sa_type=String(32))
    from_customer_id: uuid.UUID = Field(foreign_key="customer.id")
    to_customer_id: uuid.UUID = Field(foreign_key="customer.id")
    reason: str = Field(default="", sa_type=String(500))
    changed_by: str = Field(sa_type=String(64))
    changed_at: datetime = _timestamp()


class OwnerChangeCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"customer_id": "6f1c2d9e-8a4b-4c1e-9f7d-2b3a4c5d6e7f", "reason": "二手车过户 sold"}
            ]
        },
    )

    customer_id: uuid.UUID
    reason: Text = ""


class OwnerChangePublic(SQLModel):
    id: uuid.UUID
    vehicle_id: uuid.UUID
    from_customer_id: uuid.UUID
    to_customer_id: uuid.UUID
    reason: str
    changed_by: str
    changed_at: datetime


class VinCheck(BaseModel):
    """A VIN as the desk types it: checked, decoded, and whether the branch knows it."""

    vin: str
    manufacturer: str | None
    country: str | None
    model_year: int | None
    registered_vehicle_id: uuid.UUID | None


class DeskHit(BaseModel):
    """One vehicle with its owner, as the desk search lists it."""

    vehicle_id: uuid.UUID
    vin: str
    plate: str | None
    make: str | None
    model: str | None
    customer_id: uuid.UUID
    customer_name: str
    mobile: str | None
    created_at: datetime


# --- appointments and capacity ------------------------------------------------------


_APPOINTMENT_VERSION = Column("version", Integer, nullable=False)


class AppointmentStatus(StrEnum):
    booked = "booked"
    arrived = "arrived"
    no_show = "no_show"
    cancelled = "cancelled"


class DayCapacity(Base, table=True):
    """Bookable technician hours of one branch on one day (the default applies otherwise)."""

    __tablename__ = "day_capacity"

    branch: str = Field(sa_type=String(32), primary_key=True)
    day: date = Field(primary_key=True)
    bays: int
    technician_hours: Decimal = Field(sa_type=Numeric(7, 2))


class AppointmentDay(Base, table=True):
    """One row per branch and booked day: a booking writes it first, so bookings of the
    same day wait for each other (PostgreSQL row lock, SQLite's single writer) and each
    sees the hours the one before it took."""

    __tablename__ = "appointment_day"

    branch: str = Field(sa_type=String(32), primary_key=True)
    day: date = Field(primary_key=True)
    bookings: int = 0


class DayCapacitySet(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"bays": 6, "technician_hours": "48"}]}
    )

    bays: int = PField(ge=0, le=200)
    technician_hours: Annotated[Decimal, PField(ge=0, le=5000, decimal_places=2)]


class DayCapacityPublic(BaseModel):
    day: date
    # False on a day the branch is closed (a public holiday's break, its own closing day):
    # it then books nothing, whatever its bays and hours.
    open: bool = True
    bays: int
    technician_hours: Decimal
    bookable_hours: Decimal
    booked_hours: Decimal
    free_hours: Decimal


class AppointmentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "vehicle_id": "0b6a1f7e-2c3d-4e5f-8a9b-1c2d3e4f5a6b",
                    "starts_at": "2026-12-02T01:30:00Z",
                    "planned_hours": "1.5",
                    "concerns": ["一万公里保养"],
                }
            ]
        },
    )

    vehicle_id: uuid.UUID
    starts_at: Instant
    # The hours the booking takes: given, or the flat-rate hours of the planned jobs
    # (canned jobs by op code) when left out.
    planned_hours: Annotated[Decimal, PField(gt=0, le=100, decimal_places=2)] | None = None
    planned_jobs: list[Code] = PField(default_factory=list, max_length=20)
    concerns: list[Concern] = PField(default_factory=list, max_length=30)

    @model_validator(mode="after")
    def _hours_or_jobs(self) -> "AppointmentCreate":
        if self.planned_hours is None and not self.planned_jobs:
            raise ValueError("planned_hours: give the hours, or planned_jobs to add them up")
        if len(set(self.planned_jobs)) != len(self.planned_jobs):
            raise ValueError("planned_jobs: each op code once")
        return self


class AppointmentReschedule(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"starts_at": "2026-12-03T02:00:00Z"}]}
    )

    starts_at: Instant
    planned_hours: Annotated[Decimal, PField(gt=0, le=100, decimal_places=2)] | None = None


class Appointment(Base, table=True):
    __tablename__ = "appointment"
    __table_args__ = (Index("ix_appointment_branch_day", "branch", "day"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    vehicle_id: uuid.UUID = Field(foreign_key="vehicle.id", index=True)
    customer_id: uuid.UUID = Field(foreign_key="customer.id")
    starts_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    day: date
    planned_hours: Decimal = Field(sa_type=Numeric(7, 2))
    planned_jobs: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    concerns: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: AppointmentStatus = Field(default=AppointmentStatus.booked, sa_type=String(16))
    booked_by: str = Field(sa_type=String(64))
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
    version: int = Field(default=1, sa_column=_APPOINTMENT_VERSION)

    __mapper_args__ = {"version_id_col": _APPOINTMENT_VERSION}


class AppointmentPublic(BaseModel):
    id: uuid.UUID
    branch: str
    vehicle_id: uuid.UUID
    customer_id: uuid.UUID
    starts_at: datetime
    day: date
    planned_hours: Decimal
    planned_jobs: list[str] = []
    concerns: list[str]
    status: AppointmentStatus
    booked_by: str
    created_at: datetime
    version: int


class AppointmentRow(AppointmentPublic):
    """A day's appointment as the desk lists it: with the car and whose it is, so a day's
    list is one request (the staff app's day page)."""

    plate: str | None = None
    vin: str
    make: str | None = None
    model: str | None = None
    customer_name: str
    customer_mobile: str | None = None


class ShowRate(BaseModel):
    start_on: date
    end_on: date
    booked: int
    arrived: int
    no_show: int
    cancelled: int
    show_rate: Decimal | None
