"""Followup's app factory: `uvicorn --factory services.followup.main:create_app`."""

import dataclasses
from pathlib import Path

from fastapi import FastAPI

from services.followup import handlers, message_routes, routes, sender, timers
from services.followup.access import PROJECTIONS
from services.followup.config import Settings
from services.followup.models import (
    AuditEntry,
    Base,
    BranchZone,
    IdempotencyRecord,
    InboxEvent,
    OutboxEvent,
)
from shared.branch_zones import zones_job
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="followup",
    title="Followup",
    description=(
        "Follow-up visits, satisfaction surveys, complaints, comebacks and service reminders."
    ),
    routers=[routes.router, message_routes.router],
    metadata=Base.metadata,
    outbox_model=OutboxEvent,
    inbox_model=InboxEvent,
    idempotency_model=IdempotencyRecord,
    audit_model=AuditEntry,
    migrations=Path(__file__).parent / "migrations",
    subscribers=handlers.subscribers(Settings()),
    background=[timers.timer_job, zones_job(BranchZone), sender.sender_job],
    projections=PROJECTIONS,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    spec = dataclasses.replace(SPEC, subscribers=handlers.subscribers(settings))
    return create_service_app(settings, spec)
