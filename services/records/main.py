"""Records's app factory: `uvicorn --factory services.records.main:create_app`."""

import dataclasses
from pathlib import Path

from fastapi import FastAPI

from services.records import (
    files,
    handlers,
    lending,
    library,
    reporting,
    routes,
    routes_files,
    routes_lending,
    routes_library,
    webhooks,
)
from services.records.access import PROJECTIONS
from services.records.config import Settings
from services.records.models import (
    AuditEntry,
    Base,
    BranchZone,
    IdempotencyRecord,
    InboxEvent,
    OutboxEvent,
)
from shared.branch_zones import with_branch_zones, zones_job
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="records",
    title="Records",
    description=(
        "Technical library with lending, stored files, the customer and vehicle archive, "
        "reports and ERP webhooks."
    ),
    routers=[
        routes.router,
        routes_files.router,
        routes_library.router,
        routes_lending.router,
        reporting.router,
        webhooks.router,
    ],
    metadata=Base.metadata,
    outbox_model=OutboxEvent,
    inbox_model=InboxEvent,
    idempotency_model=IdempotencyRecord,
    audit_model=AuditEntry,
    migrations=Path(__file__).parent / "migrations",
    subscribers=with_branch_zones(
        handlers.subscriber, service="records", model=BranchZone, settings=Settings()
    ),
    background=[
        files.file_collector,
        lending.overdue_reminder,
        # Documents indexed an older way, re-indexed in batches once after start-up.
        library.reindex_on_start,
        *reporting.BACKGROUND,
        *webhooks.BACKGROUND,
        zones_job(BranchZone),
    ],
    # The SQLite full-text index is derived data, made before the first request.
    startup=[
        files.open_storage_on_start,
        library.ensure_search_index_on_start,
        *reporting.STARTUP,
        *webhooks.STARTUP,
    ],
    gauges=webhooks.GAUGES,
    large_bodies=frozenset({"POST /files"}),
    projections=PROJECTIONS,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    subscribers = with_branch_zones(
        handlers.subscriber, service="records", model=BranchZone, settings=settings
    )
    return create_service_app(settings, dataclasses.replace(SPEC, subscribers=subscribers))
