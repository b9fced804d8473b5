"""Reception's app factory: `uvicorn --factory services.reception.main:create_app`."""

import dataclasses
from pathlib import Path

from fastapi import FastAPI

from services.reception import (
    branch_models,  # noqa: F401  (its tables join Base.metadata)
    file_releases,
    handlers,
    routes,
    routes_appointments,
    routes_branches,
    routes_desk,
    routes_documents,
    routes_estimates,
)
from services.reception.access import PROJECTIONS
from services.reception.config import Settings
from services.reception.models import AuditEntry, Base, IdempotencyRecord, InboxEvent, OutboxEvent
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="reception",
    title="Reception",
    description="Customers, vehicles, appointments, walk-around intake, concerns, estimates "
    "and the customer's consent.",
    routers=[
        routes.router,
        routes_estimates.router,
        routes_desk.router,
        routes_appointments.router,
        routes_documents.router,
        routes_branches.router,
    ],
    metadata=Base.metadata,
    outbox_model=OutboxEvent,
    inbox_model=InboxEvent,
    idempotency_model=IdempotencyRecord,
    audit_model=AuditEntry,
    migrations=Path(__file__).parent / "migrations",
    subscribers=handlers.subscribers(Settings()),
    projections=PROJECTIONS,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    holder: dict[str, FastAPI] = {}  # the job reaches records the way requests do
    spec = dataclasses.replace(
        SPEC,
        subscribers=handlers.subscribers(settings),
        background=[file_releases.release_job(holder)],
    )
    holder["app"] = app = create_service_app(settings, spec)
    return app
