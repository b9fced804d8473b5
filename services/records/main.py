"""Records's app factory: `uvicorn --factory services.records.main:create_app`."""

from pathlib import Path

from fastapi import FastAPI

from services.records import handlers, routes
from services.records.config import Settings
from services.records.models import Base, IdempotencyRecord, InboxEvent, OutboxEvent
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="records",
    title="Records",
    description=(
        "Technical library with lending, stored files, the customer and vehicle archive, "
        "reports and ERP webhooks."
    ),
    routers=[routes.router],
    metadata=Base.metadata,
    outbox_model=OutboxEvent,
    inbox_model=InboxEvent,
    idempotency_model=IdempotencyRecord,
    migrations=Path(__file__).parent / "migrations",
    subscribers=handlers.subscriber,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(settings or Settings(), SPEC)
