"""Records' HTTP API."""

import functools
import uuid
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import anyio
from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response, status

from services.records import files, service
from services.records.models import (
    ArchivedVehicle,
    CustomerErasure,
    CustomerTimeline,
    ErasurePublic,
    ErasureRequest,
    VehicleTimeline,
)
from shared.auth import Role, User, require
from shared.downloads import file_headers
from shared.events import utcnow
from shared.idempotency import IdempotencyDep
from shared.pagination import Cursor, Limit, Page, whole
from shared.service import ReadSessionDep, SessionDep, runtime

router = APIRouter(tags=["archive"])
JSON = "application/json"

# A vehicle's history: the desk's, and the foreman's without what the entries say (their
# summaries carry invoice amounts and payments; access.py): he learns what was done and
# when, and reads the work itself in workorders.
Reader = Annotated[
    User,
    Depends(
        require(Role.records_clerk, Role.advisor, Role.manager, Role.followup_agent, Role.foreman)
    ),
]
# A customer's file and anything printed from the archive: the desk's only.
CustomerReader = Annotated[
    User,
    Depends(require(Role.records_clerk, Role.advisor, Role.manager, Role.followup_agent)),
]
# Who may hand a customer their data or erase it on their request.
PersonalDataOfficer = Annotated[User, Depends(require(Role.records_clerk, Role.manager))]


@router.get(
    "/vehicles/{vehicle_id}/timeline",
    response_model=VehicleTimeline,
    summary="A vehicle's history, in the order things happened",
)
async def vehicle_timeline(
    vehicle_id: uuid.UUID,
    request: Request,
    session: ReadSessionDep,
    user: Reader,
    limit: Limit = 100,
    cursor: Cursor = None,
):
    card, entries, next_cursor = await service.vehicle_timeline(
        session, vehicle_id, user, limit=limit, cursor=cursor
    )
    head = {
        "vehicle_id": vehicle_id,
        "vin": card.vin if card else None,
        "plate": card.plate if card else None,
        "make": card.make if card else None,
        "model_year": card.model_year if card else None,
    }
    zone = ZoneInfo(request.app.state.settings.zone_of(user.branch))
    return Response(service.render_page(head, entries, next_cursor, zone), media_type=JSON)


PdfLang = Annotated[str, Query(pattern="^(zh-CN|en)$", description="zh-CN or en")]


@router.get(
    "/vehicles/{vehicle_id}/history.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the PDF"}},
    summary="A vehicle's whole history as a PDF, in Chinese or English",
)
async def vehicle_history_pdf(
    vehicle_id: uuid.UUID,
    request: Request,
    session: ReadSessionDep,
    user: CustomerReader,
    lang: PdfLang = "zh-CN",
) -> Response:
    from services.records import history_pdf  # the PDF libraries load on first use

    card, entries = await service.vehicle_history(session, vehicle_id, user)
    settings = request.app.state.settings
    photos = await service.history_photos(
        session, files.storage_for(settings), user.branch, entries
    )
    # Laying out a long history takes a while: off the event loop.
    data = await anyio.to_thread.run_sync(
        functools.partial(
            history_pdf.vehicle_history_pdf,
            card,
            entries,
            lang=lang,
            dealer=settings.dealer_name,
            zone=settings.time_zone,
            printed_at=utcnow(),
            photos=photos,
        )
    )
    name = f"{card.vin if card else vehicle_id}-history.pdf"
    return Response(
        data,
        media_type="application/pdf",
        headers={**file_headers("application/pdf", name)[1], "Cache-Control": "no-store"},
    )


@router.get(
    "/vehicles",
    response_model=Page[ArchivedVehicle],
    summary="Archived vehicles by VIN (one page)",
)
async def find_vehicles(
    session: ReadSessionDep, user: Reader, vin: Annotated[str, Query(min_length=17, max_length=17)]
) -> Any:
    return whole(await service.find_vehicles(session, user, vin))


@router.get(
    "/customers/{customer_id}/timeline",
    response_model=CustomerTimeline,
    summary="A customer's history with their vehicles, in the order things happened",
)
async def customer_timeline(
    customer_id: uuid.UUID,
    request: Request,
    session: ReadSessionDep,
    user: CustomerReader,
    limit: Limit = 100,
    cursor: Cursor = None,
):
    card, entries, next_cursor = await service.customer_timeline(
        session, customer_id, user, limit=limit, cursor=cursor
    )
    head = {
        "customer_id": customer_id,
        "name": card.name if card else None,
        "erased": bool(card and card.erased_at),
    }
    zone = ZoneInfo(request.app.state.settings.zone_of(user.branch))
    return Response(service.render_page(head, entries, next_cursor, zone), media_type=JSON)


@router.get(
    "/customers/{customer_id}/export",
    summary="Everything records holds about the customer, as JSON (personal-information law)",
)
async def export_customer(
    customer_id: uuid.UUID, session: ReadSessionDep, user: PersonalDataOfficer
) -> dict[str, Any]:
    return await service.export_customer(session, customer_id, user)


@router.post(
    "/customers/{customer_id}/erasure",
    status_code=status.HTTP_201_CREATED,
    response_model=ErasurePublic,
    summary="Erase the customer's personal data on their request; invoices are kept",
)
async def erase_customer(
    customer_id: uuid.UUID,
    body: ErasureRequest,
    request: Request,
    session: SessionDep,
    user: PersonalDataOfficer,
    idempotency: IdempotencyDep,
    background: BackgroundTasks,
):
    async def erase() -> CustomerErasure:
        erasure, hashes = await service.erase_customer(session, customer_id, body, user)
        if hashes:
            # After the commit (background tasks run once the response is out); a crash
            # before leaves blobs with no row, which the collector removes later.
            rt = runtime(request)
            storage = files.storage_for(rt.settings)  # type: ignore[arg-type]
            background.add_task(files.delete_unused_blobs, rt.db, storage, hashes)
        return erasure

    return await idempotency(session).run(erase, ErasurePublic)
