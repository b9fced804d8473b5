"""Records' HTTP API."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from services.records import service
from services.records.models import TimelineEntryPublic, VehicleTimeline
from shared.auth import Role, User, require
from shared.pagination import Cursor, Limit
from shared.service import ReadSessionDep

router = APIRouter(tags=["archive"])

Reader = Annotated[
    User,
    Depends(
        require(Role.records_clerk, Role.advisor, Role.manager, Role.followup_agent, Role.foreman)
    ),
]


@router.get(
    "/vehicles/{vehicle_id}/timeline",
    response_model=VehicleTimeline,
    summary="A vehicle's history, in the order things happened",
)
async def vehicle_timeline(
    vehicle_id: uuid.UUID,
    session: ReadSessionDep,
    user: Reader,
    limit: Limit = 100,
    cursor: Cursor = None,
):
    card, entries, next_cursor = await service.vehicle_timeline(
        session, vehicle_id, user, limit=limit, cursor=cursor
    )
    return VehicleTimeline(
        vehicle_id=vehicle_id,
        vin=card.vin if card else None,
        plate=card.plate if card else None,
        make=card.make if card else None,
        model_year=card.model_year if card else None,
        entries=[TimelineEntryPublic.model_validate(e) for e in entries],
        next_cursor=next_cursor,
    )


@router.get("/vehicles", summary="Archived vehicles by VIN")
async def find_vehicles(
    session: ReadSessionDep, user: Reader, vin: Annotated[str, Query(min_length=17, max_length=17)]
):
    return {
        "items": [
            v.model_dump(mode="json") for v in await service.find_vehicles(session, user, vin)
        ]
    }
