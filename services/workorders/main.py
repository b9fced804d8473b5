"""Workorders's app factory: `uvicorn --factory services.workorders.main:create_app`."""

from pathlib import Path

from fastapi import FastAPI

from services.workorders import (
    board,
    handlers,
    promise,
    routes,
    routes_inspection,
    routes_invoice,
    screens,
)
from services.workorders.access import PROJECTIONS
from services.workorders.config import Settings
from services.workorders.models import Base, IdempotencyRecord, InboxEvent, OutboxEvent
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="workorders",
    title="Workorders",
    description=(
        "Repair orders from consent to delivery: dispatch, clocking, parts, QC, "
        "settlement, delivery, promise-time control and the live status board."
    ),
    routers=[
        routes.router,
        routes_invoice.router,
        routes_inspection.router,
        board.router,
        screens.router,
    ],
    metadata=Base.metadata,
    outbox_model=OutboxEvent,
    inbox_model=InboxEvent,
    idempotency_model=IdempotencyRecord,
    migrations=Path(__file__).parent / "migrations",
    subscribers=handlers.subscriber,
    projections=PROJECTIONS,
    background=[promise.promise_timer, board.board_feed],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(settings or Settings(), SPEC)
