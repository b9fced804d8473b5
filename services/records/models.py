"""Records' tables and their output schemas."""

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, StrictBool, StringConstraints
from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from shared.audit import make_audit_model
from shared.auth import Role
from shared.branch_zones import BranchZoneColumns
from shared.idempotency import make_idempotency_model
from shared.outbox import make_outbox_models
from shared.types import Day, UTCDateTime


class Base(SQLModel, registry=registry()):
    """Records' own metadata."""


OutboxEvent, InboxEvent = make_outbox_models(Base)
IdempotencyRecord = make_idempotency_model(Base)
AuditEntry = make_audit_model(Base)


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


class ArchivedCustomer(Base, table=True):
    """The archive's card of a customer: the newest details from reception's events, until
    the customer has them erased (personal-information law)."""

    __tablename__ = "archived_customer"
    __table_args__ = (Index("ix_archived_customer_branch", "branch"),)

    customer_id: uuid.UUID = Field(primary_key=True)
    branch: str = Field(sa_type=String(32))
    name: str | None = Field(default=None, sa_type=String(100))
    mobile: str | None = Field(default=None, sa_type=String(32))
    preferred_channel: str | None = Field(default=None, sa_type=String(20))
    language: str | None = Field(default=None, sa_type=String(10))
    as_of: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    erased_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class CustomerErasure(Base, table=True):
    """Who asked for a customer's personal data to be erased, who carried it out, and when."""

    __tablename__ = "customer_erasure"
    __table_args__ = (Index("ix_customer_erasure_customer", "customer_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    customer_id: uuid.UUID
    branch: str = Field(sa_type=String(32))
    requested_by: str = Field(sa_type=String(100))
    request_channel: str = Field(sa_type=String(20))
    reason: str = Field(default="", sa_type=String(500))
    erased_by: str = Field(sa_type=String(64))
    erased_by_name: str = Field(sa_type=String(100))
    erased_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    entries_anonymised: int = 0
    entries_kept_for_law: int = 0
    vehicles_anonymised: int = 0
    # Stored files only the customer's records referred to (intake photos, signatures).
    files_erased: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


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
        Index("ix_timeline_entry_repair_order", "repair_order_id"),
        Index("ix_timeline_entry_reference", "reference_id"),
        Index("ix_timeline_entry_intake", "intake_id"),
        Index("ix_timeline_entry_appointment", "appointment_id"),
        Index("ix_timeline_entry_invoice", "invoice_number"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    event_id: str = Field(sa_type=String(36))
    branch: str = Field(sa_type=String(32))
    vehicle_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    # The visit the entry belongs to: events that name only the repair order (extra work,
    # an escalation) get the vehicle and customer from the visit's other entries.
    repair_order_id: uuid.UUID | None = None
    # What entries of one visit find each other by, whatever order they arrive in, each
    # with an index: the intake the entry came from (the intake itself, its walk-around,
    # the estimates, the repair order opened from it), the booking an intake took up, and
    # the invoice of a settlement and of the ERP's payments for it.
    intake_id: uuid.UUID | None = None
    appointment_id: uuid.UUID | None = None
    invoice_number: str | None = Field(default=None, sa_type=String(64))


class TimelineEntryPublic(TimelineEntryBase):
    id: uuid.UUID
    vehicle_id: uuid.UUID | None
    customer_id: uuid.UUID | None
    repair_order_id: uuid.UUID | None = None


class CustomerTimeline(SQLModel):
    customer_id: uuid.UUID
    name: str | None
    erased: bool
    entries: list[TimelineEntryPublic]
    next_cursor: str | None = None


class ErasureRequest(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    requested_by: Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="who asked: the customer, or who acts for them"
    )
    request_channel: Literal["in_person", "letter", "email", "phone", "app"] = "in_person"
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class ErasurePublic(SQLModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    requested_by: str
    request_channel: str
    reason: str
    erased_by: str
    erased_by_name: str
    erased_at: datetime
    entries_anonymised: int
    entries_kept_for_law: int
    vehicles_anonymised: int
    files_erased: int = 0


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


# --- Technical library ----------------------------------------------------------------------


class DocumentCategory(StrEnum):
    manual = "manual"
    bulletin = "bulletin"
    wiring_diagram = "wiring_diagram"
    picture = "picture"
    data_sheet = "data_sheet"
    training = "training"


Text300 = Annotated[str, StringConstraints(min_length=1, max_length=300, strip_whitespace=True)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=40, strip_whitespace=True)]
OpCode = Annotated[
    str, StringConstraints(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9._-]+$")
]


class Applicability(SQLModel):
    """Vehicles a document is for: a make (and model, years), or a VIN prefix."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    make: Annotated[str, StringConstraints(max_length=80, strip_whitespace=True)] | None = None
    model: Annotated[str, StringConstraints(max_length=80, strip_whitespace=True)] | None = None
    year_from: int | None = Field(default=None, ge=1950, le=2100)
    year_to: int | None = Field(default=None, ge=1950, le=2100)
    vin_prefix: (
        Annotated[
            str, StringConstraints(min_length=3, max_length=17, pattern=r"^[A-HJ-NPR-Z0-9]+$")
        ]
        | None
    ) = None


TextExtraction = Literal["typed", "extracted", "partial", "unreadable", "over_budget"]


class LibraryDocumentFields(SQLModel):
    title: Text300
    category: DocumentCategory
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")] = "zh-CN"
    tags: list[Tag] = Field(default_factory=list, max_length=30)
    op_codes: list[OpCode] = Field(default_factory=list, max_length=100)
    applies_to: list[Applicability] = Field(default_factory=list, max_length=100)
    text: Annotated[str, StringConstraints(max_length=200_000)] = Field(
        default="", description="text to search: extracted from the file or typed by the clerk"
    )
    confidential: StrictBool = False
    allowed_roles: list[Role] = Field(
        default_factory=list, description="who may read a confidential document"
    )
    shared: StrictBool = Field(default=False, description="visible to every branch of the group")


class LibraryDocumentCreate(LibraryDocumentFields):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    file_id: uuid.UUID = Field(description="the uploaded file of version 1 (POST /files)")
    note: Annotated[str, StringConstraints(max_length=500)] = ""


class LibraryDocumentUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    title: Text300 | None = None
    category: DocumentCategory | None = None
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")] | None = None
    tags: list[Tag] | None = Field(default=None, max_length=30)
    op_codes: list[OpCode] | None = Field(default=None, max_length=100)
    applies_to: list[Applicability] | None = Field(default=None, max_length=100)
    text: Annotated[str, StringConstraints(max_length=200_000)] | None = None
    confidential: StrictBool | None = None
    allowed_roles: list[Role] | None = None
    shared: StrictBool | None = None


_DOCUMENT_VERSION = Column("version", Integer, nullable=False)


class LibraryDocument(Base, table=True):
    """A document of the technical library; its bytes are in its versions' files."""

    __tablename__ = "library_document"
    __table_args__ = (
        Index("ix_library_document_branch_category", "branch", "category"),
        Index("ix_library_document_search", "search_vector", postgresql_using="gin"),
        Index("ix_library_document_title_search", "title_vector", postgresql_using="gin"),
        # Newest first: the list without a query, and the newest matches a search ranks.
        # On PostgreSQL it carries what the search's title tier reads (the visibility
        # rules, the category, the title vector), so that tier walks the index alone.
        Index(
            "ix_library_document_updated_at",
            "updated_at",
            postgresql_include=[
                "id",
                "branch",
                "confidential",
                "allowed_roles",
                "category",
                "title_vector",
                "makes",
            ],
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    # None: shared by every branch of the group.
    branch: str | None = Field(default=None, sa_type=String(32))
    owner_branch: str = Field(sa_type=String(32))
    title: str = Field(sa_type=String(300))
    category: str = Field(sa_type=String(20))
    language: str = Field(sa_type=String(8))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    op_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    applies_to: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # The makes `applies_to` names, lowercased (kept with library_applicability): on
    # PostgreSQL a search for one make checks the row itself (`makes @> '["toyota"]'`)
    # before it looks up the rules, instead of one index probe per row its walk passes.
    makes: list[str] = Field(
        default_factory=list,
        sa_column=Column(
            JSON().with_variant(JSONB(), "postgresql"), nullable=False, server_default="[]"
        ),
    )
    text: str = Field(default="", sa_type=Text)
    # Where `text` came from (TextExtraction); None: nowhere (no PDF, nothing typed).
    text_extraction: str | None = Field(default=None, sa_type=String(20))
    confidential: bool = False
    allowed_roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    current_version: int = 1
    created_by: str = Field(sa_type=String(64))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # PostgreSQL's full-text vector (title A, tags B, text C); SQLite searches through the
    # FTS5 table library_fts instead (see library.py) and leaves this empty.
    search_vector: str | None = Field(
        default=None, sa_column=Column(TSVECTOR().with_variant(Text(), "sqlite"), nullable=True)
    )
    # PostgreSQL: the title (A) and tags (B) alone, a small vector with its own GIN index,
    # for the search's first tier (documents whose title or tags hold every word).
    title_vector: str | None = Field(
        default=None, sa_column=Column(TSVECTOR().with_variant(Text(), "sqlite"), nullable=True)
    )
    # The way of indexing the document's entry was written with (library.SEARCH_INDEX_VERSION);
    # an older one is re-indexed in batches after start-up (library.reindex_stale).
    search_index_version: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    version: int = Field(default=1, sa_column=_DOCUMENT_VERSION)

    __mapper_args__ = {"version_id_col": _DOCUMENT_VERSION}


class LibraryVersion(Base, table=True):
    """One version of a document: the current one and every earlier one."""

    __tablename__ = "library_version"
    __table_args__ = (Index("ux_library_version_number", "document_id", "number", unique=True),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    document_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("library_document.id"), nullable=False)
    )
    number: int
    file_id: uuid.UUID = Field(sa_column=Column(ForeignKey("stored_file.id"), nullable=False))
    note: str = Field(default="", sa_type=String(500))
    created_by: str = Field(sa_type=String(64))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LibraryApplicability(Base, table=True):
    """The searchable form of a document's `applies_to` (lower-case make and model)."""

    __tablename__ = "library_applicability"
    __table_args__ = (
        Index("ix_library_applicability_make", "make", "model"),
        Index("ix_library_applicability_vin", "vin_prefix"),
        Index("ix_library_applicability_document", "document_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    document_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("library_document.id"), nullable=False)
    )
    make: str | None = Field(default=None, sa_type=String(80))
    model: str | None = Field(default=None, sa_type=String(80))
    year_from: int | None = None
    year_to: int | None = None
    vin_prefix: str | None = Field(default=None, sa_type=String(17))


class LibraryOpCode(Base, table=True):
    __tablename__ = "library_op_code"
    __table_args__ = (Index("ix_library_op_code_code", "op_code"),)

    document_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("library_document.id"), primary_key=True, nullable=False)
    )
    op_code: str = Field(sa_type=String(20), primary_key=True)


class LibraryDownload(Base, table=True):
    """Every download of a library document, by whom and when."""

    __tablename__ = "library_download"
    __table_args__ = (Index("ix_library_download_document", "document_id", "downloaded_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    document_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("library_document.id"), nullable=False)
    )
    version_number: int
    user_id: str = Field(sa_type=String(64))
    user_name: str = Field(sa_type=String(100))
    branch: str = Field(sa_type=String(32))
    ranged: bool = False
    downloaded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LibraryVersionPublic(SQLModel):
    number: int
    file_id: uuid.UUID
    note: str
    created_by: str
    created_at: datetime


class LibraryDocumentPublic(SQLModel):
    id: uuid.UUID
    title: str
    category: DocumentCategory
    language: str
    tags: list[str]
    op_codes: list[str]
    applies_to: list[Applicability]
    confidential: bool
    allowed_roles: list[str]
    shared: bool
    owner_branch: str
    current_version: int
    text_extraction: TextExtraction | None = Field(
        default=None,
        description=(
            "where the text to search came from: typed by the clerk, or read from the"
            " current version's PDF (`extracted`; `partial`: only its first pages, up to"
            " the page or character budget). `unreadable`: nothing could be read from it"
            " (a scan, a damaged file); `over_budget`: reading it took more time or"
            " memory than allowed. In both cases the version's content is not searchable"
            " (the document is found by its title and tags, and any text an earlier"
            " version gave). null: no PDF and nothing typed"
        ),
    )
    created_at: datetime
    updated_at: datetime
    etag: str


class LibraryHit(SQLModel):
    document: LibraryDocumentPublic
    rank: float | None = None


class LibraryDownloadPublic(SQLModel):
    version_number: int
    user_id: str
    user_name: str
    branch: str
    ranged: bool
    downloaded_at: datetime


class VersionCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    file_id: uuid.UUID
    note: Annotated[str, StringConstraints(max_length=500)] = ""


# --- Lending --------------------------------------------------------------------------------


class ItemKind(StrEnum):
    physical_copy = "physical_copy"
    restricted_document = "restricted_document"


class LoanStatus(StrEnum):
    requested = "requested"
    approved = "approved"
    rejected = "rejected"
    cancelled = "cancelled"
    out = "out"
    returned = "returned"
    lost = "lost"


class ReturnCondition(StrEnum):
    good = "good"
    worn = "worn"
    damaged = "damaged"
    incomplete = "incomplete"


class LendingItemCreate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    title: Text300
    kind: ItemKind = ItemKind.physical_copy
    document_id: uuid.UUID | None = None
    shelf_mark: Annotated[str, StringConstraints(max_length=40)] | None = None


class LendingItem(Base, table=True):
    """Something the clerk lends: a physical copy, or access to a restricted document."""

    __tablename__ = "lending_item"
    __table_args__ = (Index("ix_lending_item_branch", "branch", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    branch: str = Field(sa_type=String(32))
    title: str = Field(sa_type=String(300))
    kind: str = Field(sa_type=String(24))
    document_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("library_document.id"), nullable=True)
    )
    shelf_mark: str | None = Field(default=None, sa_type=String(40))
    lost_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class LendingItemPublic(SQLModel):
    id: uuid.UUID
    title: str
    kind: ItemKind
    document_id: uuid.UUID | None
    shelf_mark: str | None
    lost_at: datetime | None
    created_at: datetime


_LOAN_VERSION = Column("version", Integer, nullable=False)
# A loan holds its item from approval until it is back (or lost): one such loan per item.
OPEN_LOAN = "status IN ('approved', 'out')"


class Loan(Base, table=True):
    """One borrowing of an item, from the request to the return."""

    __tablename__ = "loan"
    __table_args__ = (
        Index(
            "ux_loan_open_item",
            "item_id",
            unique=True,
            sqlite_where=text(OPEN_LOAN),
            postgresql_where=text(OPEN_LOAN),
        ),
        Index("ix_loan_item", "item_id", "requested_at"),
        Index("ix_loan_borrower", "borrower_id", "requested_at"),
        Index("ix_loan_branch_status_due", "branch", "status", "due_on"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    item_id: uuid.UUID = Field(sa_column=Column(ForeignKey("lending_item.id"), nullable=False))
    branch: str = Field(sa_type=String(32))
    status: str = Field(sa_type=String(16))
    borrower_id: str = Field(sa_type=String(64))
    borrower_name: str = Field(sa_type=String(100))
    purpose: str = Field(default="", sa_type=String(500))
    requested_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    decided_by: str | None = Field(default=None, sa_type=String(64))
    decided_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    due_on: date | None = None
    handed_out_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    return_condition: str | None = Field(default=None, sa_type=String(16))
    note: str = Field(default="", sa_type=String(500))
    # The last day a reminder went out for this loan (one per overdue day at most).
    reminded_on: date | None = None
    version: int = Field(default=1, sa_column=_LOAN_VERSION)

    __mapper_args__ = {"version_id_col": _LOAN_VERSION}


class LoanRequest(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    item_id: uuid.UUID
    purpose: Annotated[str, StringConstraints(max_length=500)] = ""


class LoanAction(SQLModel):
    """The body of a transition; which fields count depends on the action."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    due_on: Day | None = Field(default=None, description="approve: when it must be back")
    condition: ReturnCondition | None = Field(default=None, description="return: its state")
    note: Annotated[str, StringConstraints(max_length=500)] = ""


class LoanPublic(SQLModel):
    id: uuid.UUID
    item_id: uuid.UUID
    status: LoanStatus
    borrower_id: str
    borrower_name: str
    purpose: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    due_on: date | None
    handed_out_at: datetime | None
    closed_at: datetime | None
    return_condition: ReturnCondition | None
    note: str
    overdue: bool = False
    etag: str = ""


class BranchZone(Base, BranchZoneColumns, table=True):
    """A branch's time zone from the branch directory (`reception.branch.changed.v1`)."""

    __tablename__ = "branch_zone"
