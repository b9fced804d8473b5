"""Workorders's app factory: `uvicorn --factory services.workorders.main:create_app`."""

import dataclasses
from pathlib import Path

from fastapi import FastAPI

from services.workorders import (
    board,
    handlers,
    promise,
    roster,
    routes,
    routes_inspection,
    routes_invoice,
    screens,
)
from services.workorders.access import PROJECTIONS
from services.workorders.config import Settings
from services.workorders.models import AuditEntry, Base, IdempotencyRecord, InboxEvent, OutboxEvent
from shared.branch_zones import with_branch_zones, zones_job
from shared.consumers import Subscribers
from shared.service import ServiceSpec, create_service_app

# The app's own handlers and the roster's (the branch zone's is bound to each app).
SUBSCRIBERS = Subscribers()
SUBSCRIBERS.handlers = [*handlers.subscriber.handlers, *roster.subscriber.handlers]

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
    audit_model=AuditEntry,
    migrations=Path(__file__).parent / "migrations",
    subscribers=with_branch_zones(
        SUBSCRIBERS, service="workorders", model=roster.BranchZone, settings=Settings()
    ),
    projections=PROJECTIONS,
    background=[promise.promise_timer, board.board_feed, zones_job(roster.BranchZone)],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    subscribers = with_branch_zones(
        SUBSCRIBERS, service="workorders", model=roster.BranchZone, settings=settings
    )
    return create_service_app(settings, dataclasses.replace(SPEC, subscribers=subscribers))
