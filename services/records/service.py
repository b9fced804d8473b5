"""Records' use cases: the archive built from every service's events, the customer's
data export and the erasure of their personal data on request."""

import logging
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import orjson
from sqlalchemy import Row, Text, func, or_, type_coerce
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.records import files
from services.records.models import (
    ArchivedCustomer,
    ArchivedVehicle,
    CustomerErasure,
    ErasureRequest,
    StoredFile,
    TimelineEntry,
)
from services.records.storage import FileStorage
from shared import audit
from shared.auth import User
from shared.contracts import CustomerSnapshot, VehicleSnapshot
from shared.events import Contract, utcnow
from shared.pagination import decode_cursor, encode_cursor
from shared.problems import Conflict, NotFound

# An entry's id follows from its source event, so a timeline rebuilt from the same events
# in another order is the same timeline, ties in time included.
log = logging.getLogger(__name__)

ENTRY_NAMESPACE = uuid.UUID("6f0b2c1e-3d4a-4e5f-8a9b-0c1d2e3f4a5b")
# Keys in an entry's summary that identify a person; erasure removes them everywhere.
PERSONAL_KEYS = frozenset({"name", "customer_name", "mobile", "plate", "consented_by"})
# Entries the law requires to be kept (invoices): erasure keeps amounts and numbers.
KEPT_FOR_LAW = frozenset({"repair_order.settled"})
ERASED = "erased"


def strip_personal(value: Any) -> Any:
    """The summary with every personal field blanked, at any depth."""
    if isinstance(value, dict):
        return {
            k: (ERASED if k in PERSONAL_KEYS and v is not None else strip_personal(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [strip_personal(v) for v in value]
    return value


async def serialise(session: AsyncSession, *keys: uuid.UUID | None) -> None:
    """Hold back concurrent handlers working on the same customer, visit or case until this
    transaction ends, so each sees the other's entry and links it (and an erasure sees every
    entry). PostgreSQL only: SQLite has one writer at a time anyway.

    A handler that looks another entry up must take the keys both share before it looks
    (READ COMMITTED reads afresh after the wait); it takes them all in one call where it
    can, since the keys of one call are taken in one order everywhere."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted({str(k) for k in keys if k is not None}):
        await session.exec(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


async def _erased(session: AsyncSession, customer_id: uuid.UUID | None) -> bool:
    if customer_id is None:
        return False
    card = await session.get(ArchivedCustomer, customer_id)
    return card is not None and card.erased_at is not None


async def remember_customer(
    session: AsyncSession, branch: str, customer: CustomerSnapshot, *, as_of: datetime
) -> None:
    """Keep the newest details of the customer; an older event changes nothing, and nothing
    comes back once the customer's data has been erased."""
    card = await session.get(ArchivedCustomer, customer.id)
    if card is None:
        session.add(
            ArchivedCustomer(
                customer_id=customer.id,
                branch=branch,
                name=customer.name,
                mobile=customer.mobile,
                preferred_channel=customer.preferred_channel,
                language=customer.language,
                as_of=as_of,
            )
        )
    elif card.erased_at is None and as_of >= card.as_of:
        card.name, card.mobile = customer.name, customer.mobile
        card.preferred_channel, card.language = customer.preferred_channel, customer.language
        card.as_of = as_of


async def remember_vehicle(
    session: AsyncSession,
    branch: str,
    vehicle: VehicleSnapshot,
    customer_id: uuid.UUID,
    *,
    as_of: datetime,
) -> None:
    """Keep the newest description of the vehicle; an older event changes nothing."""
    erased = await _erased(session, customer_id)
    plate = None if erased else vehicle.plate
    card = await session.get(ArchivedVehicle, vehicle.id)
    if card is None:
        session.add(
            ArchivedVehicle(
                vehicle_id=vehicle.id,
                branch=branch,
                vin=vehicle.vin,
                plate=plate,
                make=vehicle.make,
                model=vehicle.model,
                model_year=vehicle.model_year,
                customer_id=customer_id,
                as_of=as_of,
            )
        )
    elif as_of >= card.as_of:
        card.vin, card.plate, card.make = vehicle.vin, plate, vehicle.make
        card.model, card.model_year = vehicle.model, vehicle.model_year
        card.customer_id, card.as_of = customer_id, as_of


def _same_case(reference_id: uuid.UUID, repair_order_id: uuid.UUID | None) -> Any:
    """Entries about the same thing (a complaint, an estimate) or the same visit."""
    if repair_order_id is None:
        return TimelineEntry.reference_id == reference_id
    return or_(
        col(TimelineEntry.reference_id) == reference_id,
        col(TimelineEntry.repair_order_id) == repair_order_id,
    )


async def append(
    session: AsyncSession,
    event: Contract,
    *,
    kind: str,
    branch: str,
    occurred_at: datetime,
    reference_id: uuid.UUID,
    vehicle_id: uuid.UUID | None = None,
    customer_id: uuid.UUID | None = None,
    repair_order_id: uuid.UUID | None = None,
    intake_id: uuid.UUID | None = None,
    appointment_id: uuid.UUID | None = None,
    invoice_number: str | None = None,
    summary: dict[str, Any] | None = None,
    entry_key: str | None = None,
) -> bool:
    """One entry per source event: a repeat of the same event adds nothing (returns
    False). `entry_key` names the fact when its producer may send it again as a new
    event (an ERP payment): then one entry per key.

    An event that names only the repair order takes the vehicle and customer from the
    visit's other entries; one that names them hands them to entries that came earlier
    without. So the links do not depend on the order events arrive in."""
    event_id = event.envelope.id
    entry_id = uuid.uuid5(ENTRY_NAMESPACE, entry_key or event_id)
    exists = await session.exec(
        select(TimelineEntry.id).where(
            or_(col(TimelineEntry.event_id) == event_id, col(TimelineEntry.id) == entry_id)
        )
    )
    if exists.first() is not None:
        return False
    await serialise(session, customer_id, repair_order_id, reference_id)
    same_case = _same_case(reference_id, repair_order_id)
    if vehicle_id is None or customer_id is None:
        visit = (
            await session.exec(
                select(TimelineEntry.vehicle_id, TimelineEntry.customer_id).where(
                    same_case,
                    TimelineEntry.branch == branch,
                    or_(
                        col(TimelineEntry.vehicle_id).is_not(None),
                        col(TimelineEntry.customer_id).is_not(None),
                    ),
                )
            )
        ).all()
        vehicle_id = vehicle_id or next((v for v, _ in visit if v), None)
        customer_id = customer_id or next((c for _, c in visit if c), None)
    summary = summary or {}
    if await _erased(session, customer_id):
        summary = strip_personal(summary)
    session.add(
        TimelineEntry(
            id=entry_id,
            # Keyed entries keep the key's id, not the event that happened to come first,
            # so the archive is the same whichever copy arrived first.
            event_id=str(entry_id) if entry_key else event_id,
            kind=kind,
            branch=branch,
            occurred_at=occurred_at,
            reference_id=reference_id,
            vehicle_id=vehicle_id,
            customer_id=customer_id,
            repair_order_id=repair_order_id,
            intake_id=intake_id,
            appointment_id=appointment_id,
            invoice_number=invoice_number,
            summary=summary,
        )
    )
    if vehicle_id is not None or customer_id is not None:
        await session.flush()
        earlier = await session.exec(
            select(TimelineEntry).where(
                same_case,
                TimelineEntry.branch == branch,
                or_(
                    col(TimelineEntry.vehicle_id).is_(None),
                    col(TimelineEntry.customer_id).is_(None),
                ),
            )
        )
        # An entry that gains the car here hands it on to the entries of its own case that
        # name nothing else (a complaint's escalation, through the complaint, through the
        # visit), so the links do not depend on which of them came first.
        links = {reference_id: (vehicle_id, customer_id)}
        filled, seen = list(earlier.all()), {reference_id}
        while filled:
            cases: dict[uuid.UUID, tuple[uuid.UUID | None, uuid.UUID | None]] = {}
            for entry in filled:
                vehicle, customer = links.get(entry.reference_id, (vehicle_id, customer_id))
                entry.vehicle_id = entry.vehicle_id or vehicle
                entry.customer_id = entry.customer_id or customer
                if entry.customer_id is not None and await _erased(session, entry.customer_id):
                    entry.summary = strip_personal(entry.summary)
                if entry.reference_id not in seen:
                    cases[entry.reference_id] = (entry.vehicle_id, entry.customer_id)
            if not cases:
                break
            seen |= cases.keys()
            links = cases
            await session.flush()
            filled = list(
                (
                    await session.exec(
                        select(TimelineEntry).where(
                            col(TimelineEntry.reference_id).in_(list(cases)),
                            TimelineEntry.branch == branch,
                            or_(
                                col(TimelineEntry.vehicle_id).is_(None),
                                col(TimelineEntry.customer_id).is_(None),
                            ),
                        )
                    )
                ).all()
            )
    return True


async def keep_latest(
    session: AsyncSession,
    event: Contract,
    *,
    entry_key: str,
    version: int,
    kind: str,
    branch: str,
    occurred_at: datetime,
    reference_id: uuid.UUID,
    vehicle_id: uuid.UUID | None = None,
    customer_id: uuid.UUID | None = None,
    repair_order_id: uuid.UUID | None = None,
    intake_id: uuid.UUID | None = None,
    summary: dict[str, Any],
) -> bool:
    """One entry per `entry_key` holding the highest `version` seen: the producer sends
    the whole current state each time, so a repeat or an older version that arrives late
    changes nothing (returns False) and the entry ends as the newest version, whatever the
    order. The version is kept in the summary."""
    entry_id = uuid.uuid5(ENTRY_NAMESPACE, entry_key)
    # Two replicas with two versions of the same thing: the second waits and sees the first.
    await serialise(session, entry_id)
    summary = {**summary, "version": version}
    entry = (await session.exec(select(TimelineEntry).where(TimelineEntry.id == entry_id))).first()
    if entry is None:
        return await append(
            session,
            event,
            kind=kind,
            branch=branch,
            occurred_at=occurred_at,
            reference_id=reference_id,
            vehicle_id=vehicle_id,
            customer_id=customer_id,
            repair_order_id=repair_order_id,
            intake_id=intake_id,
            summary=summary,
            entry_key=entry_key,
        )
    if int(entry.summary.get("version", 0)) >= version:
        return False
    await serialise(session, entry.customer_id)  # an erasure running now ends first
    erased = await _erased(session, entry.customer_id)
    entry.summary = strip_personal(summary) if erased else summary
    entry.occurred_at = occurred_at
    entry.repair_order_id = entry.repair_order_id or repair_order_id
    return True


async def link_entries(
    session: AsyncSession,
    branch: str,
    where: Any,
    *,
    vehicle_id: uuid.UUID | None,
    customer_id: uuid.UUID | None,
    repair_order_id: uuid.UUID | None = None,
) -> None:
    """Give entries matching `where` that lack them the vehicle, customer and visit an
    event that arrived later knows (a booking made before the car was known, an ERP
    payment that named only the invoice)."""
    await session.flush()
    erased = await _erased(session, customer_id)
    for entry in (
        await session.exec(select(TimelineEntry).where(where, TimelineEntry.branch == branch))
    ).all():
        entry.vehicle_id = entry.vehicle_id or vehicle_id
        entry.customer_id = entry.customer_id or customer_id
        entry.repair_order_id = entry.repair_order_id or repair_order_id
        if erased:
            entry.summary = strip_personal(entry.summary)


async def mark_reschedules(session: AsyncSession, branch: str, appointment_id: uuid.UUID) -> None:
    """A booking sent again is a reschedule: the first booking of an appointment (by the
    time it was made, whatever order the events came in) is the booking, later ones are
    marked `rescheduled`."""
    await session.flush()
    bookings = (
        await session.exec(
            select(TimelineEntry)
            .where(
                TimelineEntry.branch == branch,
                TimelineEntry.reference_id == appointment_id,
                TimelineEntry.kind == "appointment.booked",
            )
            .order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id))
        )
    ).all()
    for number, entry in enumerate(bookings):
        if entry.summary.get("rescheduled") != (number > 0):
            entry.summary = {**entry.summary, "rescheduled": number > 0}


async def vehicle_timeline(
    session: AsyncSession,
    vehicle_id: uuid.UUID,
    by: User,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[ArchivedVehicle | None, list[Row[Any]], str | None]:
    """Entries oldest first, in the order things happened (not the order events came)."""
    card = await session.get(ArchivedVehicle, vehicle_id)
    if card is not None and card.branch != by.branch:
        card = None
    entries, next_cursor = await _entries(
        session, TimelineEntry.vehicle_id == vehicle_id, by.branch, limit=limit, cursor=cursor
    )
    if card is None and not entries:
        raise NotFound(f"the archive holds nothing for vehicle {vehicle_id}")
    return card, entries, next_cursor


async def vehicle_history(
    session: AsyncSession, vehicle_id: uuid.UUID, by: User
) -> tuple[ArchivedVehicle | None, list[TimelineEntry]]:
    """The vehicle's card and its whole history, oldest first (for the printed history)."""
    card = await session.get(ArchivedVehicle, vehicle_id)
    if card is not None and card.branch != by.branch:
        card = None
    entries = list(
        (
            await session.exec(
                select(TimelineEntry)
                .where(TimelineEntry.vehicle_id == vehicle_id, TimelineEntry.branch == by.branch)
                .order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id))
            )
        ).all()
    )
    if card is None and not entries:
        raise NotFound(f"the archive holds nothing for vehicle {vehicle_id}")
    return card, entries


# Thumbnails in the printed history: up to 4 photos of each of the newest 3 walk-arounds
# (the car as it came in lately), of files small enough to read whole. Older walk-arounds
# print their counts only, so a long history costs no more than a short one: at worst 12
# photos read and shrunk, about 65 ms of CPU each for a 10 MB JPEG, far less for a
# typical phone photo.
THUMBNAILS_PER_INTAKE = 4
THUMBNAIL_INTAKES = 3
THUMBNAIL_MAX_BYTES = 12 * 1024 * 1024
THUMBNAIL_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})


async def history_photos(
    session: AsyncSession, storage: FileStorage, branch: str, entries: list[TimelineEntry]
) -> dict[str, bytes]:
    """Thumbnails (small JPEGs) of the photos the history prints, by file id, made one at
    a time off the event loop so only the small ones are held; a photo records no longer
    holds (erased, collected) or that is no readable image is left out."""
    from services.records.history_pdf import thumbnail_jpeg  # PIL loads on first use

    walkarounds = [e for e in entries if e.kind == "intake.inspected"][-THUMBNAIL_INTAKES:]
    wanted = [
        uuid.UUID(photo["file_id"])
        for entry in walkarounds
        for photo in (entry.summary.get("photos") or [])[:THUMBNAILS_PER_INTAKE]
    ]
    if not wanted:
        return {}
    rows = (
        await session.exec(
            select(StoredFile).where(
                col(StoredFile.id).in_(wanted),
                StoredFile.branch == branch,
                col(StoredFile.media_type).in_(THUMBNAIL_TYPES),
                StoredFile.size <= THUMBNAIL_MAX_BYTES,
                StoredFile.size > 0,
            )
        )
    ).all()
    thumbnails = {}
    for row in rows:
        try:
            data = b"".join([c async for c in storage.read(row.sha256, 0, row.size - 1)])
        except Exception as exc:  # the blob went meanwhile, or the store is away: no picture
            log.warning("history photo %s not read: %s", row.id, type(exc).__name__)
            continue
        small = await anyio.to_thread.run_sync(thumbnail_jpeg, data)
        if small is not None:
            thumbnails[str(row.id)] = small
    return thumbnails


async def find_vehicles(session: AsyncSession, by: User, vin: str) -> list[ArchivedVehicle]:
    query = select(ArchivedVehicle).where(
        ArchivedVehicle.branch == by.branch, ArchivedVehicle.vin == vin.upper()
    )
    return list((await session.exec(query)).all())


# The page is read as plain rows with the summary as stored JSON text, and rendered
# straight to the response (`render_page`): a long history is read often, and validating
# and re-encoding every entry was most of the cost of a page.
PAGE_COLUMNS: tuple[Any, ...] = (
    TimelineEntry.id,
    TimelineEntry.kind,
    TimelineEntry.occurred_at,
    TimelineEntry.reference_id,
    TimelineEntry.vehicle_id,
    TimelineEntry.customer_id,
    TimelineEntry.repair_order_id,
    type_coerce(TimelineEntry.summary, Text).label("summary"),
)


async def _entries(
    session: AsyncSession, where: Any, branch: str, *, limit: int, cursor: str | None
) -> tuple[list[Row[Any]], str | None]:
    """A page of entries, oldest first, in the order things happened."""
    query = select(*PAGE_COLUMNS).where(where, TimelineEntry.branch == branch)
    if cursor is not None:
        at, entry_id = decode_cursor(cursor)
        query = query.where(
            (col(TimelineEntry.occurred_at) > at)
            | ((col(TimelineEntry.occurred_at) == at) & (col(TimelineEntry.id) > entry_id))
        )
    query = query.order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id)).limit(limit + 1)
    rows = list((await session.exec(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].occurred_at, rows[-1].id)
    return rows, next_cursor


def _text(value: uuid.UUID | None) -> str | None:
    # str(), not orjson's own UUID support: asyncpg hands out its own UUID type.
    return None if value is None else str(value)


# A summary's instants: `…_at` and `…_for` fields holding an ISO 8601 time with an offset
# (events carry whatever offset their producer wrote: the request's, or UTC from a row).
_SUMMARY_TIME = re.compile(
    rb'"((?:[a-z_]+_)?at|[a-z_]+_for)":(\s*)"'
    rb'(\d{4}-\d\d-\d\dT\d\d:\d\d[0-9:.]*(?:Z|[+-]\d\d:\d\d))"'
)


def _summary(stored: str | bytes | dict[str, Any], zone: ZoneInfo) -> Any:
    """The stored summary with its instants in the branch's zone, else as stored: SQLite
    hands out the JSON text, PostgreSQL's driver a decoded dict (written compactly, as
    stored, to be read the same way)."""
    if isinstance(stored, dict):
        text = orjson.dumps(stored)
    else:
        text = stored.encode() if isinstance(stored, str) else stored

    def local(match: re.Match[bytes]) -> bytes:
        value = datetime.fromisoformat(match.group(3).decode()).astimezone(zone)
        return b'"%s":%s"%s"' % (match.group(1), match.group(2), value.isoformat().encode())

    return orjson.Fragment(_SUMMARY_TIME.sub(local, text))


def render_page(
    head: dict[str, Any], rows: list[Row[Any]], next_cursor: str | None, zone: ZoneInfo
) -> bytes:
    """The timeline response as JSON bytes, entries in TimelineEntryPublic's shape; every
    time in it (when the entry happened, the times in its summary) in the branch's
    zone, so an appointment's booking and its closing read alike."""
    entries = [
        {
            "kind": row.kind,
            "occurred_at": row.occurred_at.astimezone(zone),
            "reference_id": str(row.reference_id),
            "summary": _summary(row.summary, zone),
            "id": str(row.id),
            "vehicle_id": _text(row.vehicle_id),
            "customer_id": _text(row.customer_id),
            "repair_order_id": _text(row.repair_order_id),
        }
        for row in rows
    ]
    head = {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in head.items()}
    return orjson.dumps({**head, "entries": entries, "next_cursor": next_cursor})


async def customer_timeline(
    session: AsyncSession,
    customer_id: uuid.UUID,
    by: User,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[ArchivedCustomer | None, list[Row[Any]], str | None]:
    """Everything that happened to the customer and their cars, oldest first."""
    card = await session.get(ArchivedCustomer, customer_id)
    if card is not None and card.branch != by.branch:
        card = None
    entries, next_cursor = await _entries(
        session, TimelineEntry.customer_id == customer_id, by.branch, limit=limit, cursor=cursor
    )
    if card is None and not entries:
        raise NotFound(f"the archive holds nothing for customer {customer_id}")
    return card, entries, next_cursor


async def _customer_card(
    session: AsyncSession, customer_id: uuid.UUID, by: User
) -> ArchivedCustomer:
    card = await session.get(ArchivedCustomer, customer_id)
    if card is None or card.branch != by.branch:
        raise NotFound(f"the archive holds no customer {customer_id}")
    return card


async def export_customer(
    session: AsyncSession, customer_id: uuid.UUID, by: User
) -> dict[str, Any]:
    """Everything records holds about the customer, as one JSON document."""
    card = await _customer_card(session, customer_id, by)
    vehicles = (
        await session.exec(
            select(ArchivedVehicle)
            .where(ArchivedVehicle.customer_id == customer_id, ArchivedVehicle.branch == by.branch)
            .order_by(col(ArchivedVehicle.vin))
        )
    ).all()
    entries = (
        await session.exec(
            select(TimelineEntry)
            .where(TimelineEntry.customer_id == customer_id, TimelineEntry.branch == by.branch)
            .order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id))
        )
    ).all()
    erasures = (
        await session.exec(
            select(CustomerErasure)
            .where(CustomerErasure.customer_id == customer_id)
            .order_by(col(CustomerErasure.erased_at))
        )
    ).all()
    return {
        "customer": card.model_dump(mode="json"),
        "vehicles": [v.model_dump(mode="json") for v in vehicles],
        "files": await _files_of(session, by.branch, entries),
        "timeline": [
            {
                **e.model_dump(mode="json", exclude={"event_id", "branch"}),
                "kept_for_law": e.kind in KEPT_FOR_LAW,
            }
            for e in entries
        ],
        "erasures": [e.model_dump(mode="json") for e in erasures],
        "exported_at": utcnow().isoformat(),
        "exported_by": by.id,
    }


async def _files_of(
    session: AsyncSession, branch: str, entries: Sequence[TimelineEntry]
) -> list[dict[str, Any]]:
    """The stored files the customer's entries name (intake photos and signature, photos of
    work found), each once, with the entry that names it and whether records still holds
    it (an erasure, or reception dropping a photo, deletes the file; the reference stays)."""
    named: dict[uuid.UUID, TimelineEntry] = {}
    for entry in entries:
        for file_id in _file_ids(entry.summary):
            named.setdefault(file_id, entry)
    stored = {
        f.id: f
        for f in (
            await session.exec(
                select(StoredFile).where(
                    col(StoredFile.id).in_(list(named)), StoredFile.branch == branch
                )
            )
        ).all()
    }
    return [
        {
            "file_id": str(file_id),
            "named_by": entry.kind,
            "reference_id": str(entry.reference_id),
            "stored": file_id in stored,
            "media_type": stored[file_id].media_type if file_id in stored else None,
            "size": stored[file_id].size if file_id in stored else None,
        }
        for file_id, entry in named.items()
    ]


async def erase_customer(
    session: AsyncSession, customer_id: uuid.UUID, body: ErasureRequest, by: User
) -> tuple[CustomerErasure, list[str]]:
    """Erase the customer's personal data from the archive (personal-information law).

    Names, phone numbers and plates go from the card, the vehicles' cards and every
    timeline entry; invoices stay, with their numbers and amounts, as the law requires.
    Stored files only the customer's records refer to (intake photos, signatures, the
    photos of work found on their car) are deleted; returns the erasure and the hashes
    of the deleted files' blobs, to delete after the commit.
    Events that arrive later for this customer are stored without personal fields."""
    await serialise(session, customer_id)
    card = await _customer_card(session, customer_id, by)
    if card.erased_at is not None:
        raise Conflict(
            f"customer {customer_id}'s personal data was already erased",
            erased_at=card.erased_at.isoformat(),
        )
    now = utcnow()
    card.name = card.mobile = card.preferred_channel = card.language = None
    card.erased_at = now
    vehicles = (
        await session.exec(
            select(ArchivedVehicle).where(
                ArchivedVehicle.customer_id == customer_id, ArchivedVehicle.branch == by.branch
            )
        )
    ).all()
    for vehicle in vehicles:
        vehicle.plate = None
    entries = (
        await session.exec(
            select(TimelineEntry).where(
                TimelineEntry.customer_id == customer_id, TimelineEntry.branch == by.branch
            )
        )
    ).all()
    kept = 0
    owners = {str(customer_id), *(str(v.vehicle_id) for v in vehicles)}
    named_files: set[uuid.UUID] = set()
    for entry in entries:
        entry.summary = strip_personal(entry.summary)
        kept += entry.kind in KEPT_FOR_LAW
        if entry.kind not in KEPT_FOR_LAW:
            owners |= {str(i) for i in (entry.reference_id, entry.repair_order_id) if i}
            named_files |= set(_file_ids(entry.summary))
    erased_files = await files.erase_owned_files(session, by.branch, owners, named_files)
    erasure = CustomerErasure(
        customer_id=customer_id,
        branch=by.branch,
        requested_by=body.requested_by,
        request_channel=body.request_channel,
        reason=body.reason,
        erased_by=by.id,
        erased_by_name=by.name,
        erased_at=now,
        entries_anonymised=len(entries) - kept,
        entries_kept_for_law=kept,
        vehicles_anonymised=len(vehicles),
        files_erased=len(erased_files),
    )
    session.add(erasure)
    # Who erased whom, when and on whose request: the audit names no personal data.
    audit.record(
        session,
        action="customer.erased",
        object_type="customer",
        object_id=customer_id,
        branch=by.branch,
        actor=by,
        at=now,
        changes={
            "request_channel": body.request_channel,
            "entries_anonymised": erasure.entries_anonymised,
            "entries_kept_for_law": kept,
            "vehicles_anonymised": len(vehicles),
            "files_erased": len(erased_files),
        },
    )
    await session.flush()
    return erasure, [f.sha256 for f in erased_files]


async def erase_late_files(
    session: AsyncSession,
    branch: str,
    customer_id: uuid.UUID,
    owner_ids: set[str],
    file_ids: set[uuid.UUID],
) -> int:
    """Files an event names that arrived after the customer's erasure (intake photos taken
    before it, archived after): erased as the erasure would have, and counted on it. Their
    bytes go with the collector's sweep of blobs no file names."""
    if not await _erased(session, customer_id):
        return 0
    erased = await files.erase_owned_files(session, branch, owner_ids, file_ids)
    if erased:
        erasure = (
            await session.exec(
                select(CustomerErasure)
                .where(CustomerErasure.customer_id == customer_id)
                .order_by(col(CustomerErasure.erased_at).desc())
            )
        ).first()
        if erasure is not None:
            erasure.files_erased += len(erased)
    return len(erased)


def _file_ids(summary: Any) -> list[uuid.UUID]:
    """Stored files an entry names (`photo_file_ids`, `…_file_id`)."""
    found: list[uuid.UUID] = []
    if isinstance(summary, dict):
        for key, value in summary.items():
            if key.endswith("file_ids") and isinstance(value, list):
                found += [_uuid(v) for v in value if _uuid(v)]  # type: ignore[misc]
            elif key.endswith("file_id") and _uuid(value):
                found.append(_uuid(value))  # type: ignore[arg-type]
            else:
                found += _file_ids(value)
    elif isinstance(summary, list):
        for value in summary:
            found += _file_ids(value)
    return found


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
