"""Records's app factory: `uvicorn --factory services.records.main:create_app`."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from services.records import (
    files,
    handlers,
    lending,
    library,
    routes,
    routes_files,
    routes_lending,
    routes_library,
)
from services.records.config import Settings
from services.records.models import Base, IdempotencyRecord, InboxEvent, OutboxEvent
from shared.http import BodyLimit
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="records",
    title="Records",
    description=(
        "Technical library with lending, stored files, the customer and vehicle archive, "
        "reports and ERP webhooks."
    ),
    routers=[routes.router, routes_files.router, routes_library.router, routes_lending.router],
    metadata=Base.metadata,
    outbox_model=OutboxEvent,
    inbox_model=InboxEvent,
    idempotency_model=IdempotencyRecord,
    migrations=Path(__file__).parent / "migrations",
    subscribers=handlers.subscriber,
    background=[files.file_collector, lending.overdue_reminder],
)


class JsonBodyLimit:
    """Keeps the usual small body limit on every route but the upload, whose body streams
    to storage under its own limit (the service-wide limit is raised to let it through)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.limited = BodyLimit(app, max_bytes=max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not (
            scope["method"] == "POST" and scope["path"].rstrip("/") == "/files"
        ):
            await self.limited(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = create_service_app(settings, SPEC)
    app.add_middleware(JsonBodyLimit, max_bytes=settings.max_json_bytes)
    service_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_lifespan(app):
            # The SQLite full-text index is derived data, made before the first request.
            await library.ensure_search_index(app.state.runtime.db)
            yield

    app.router.lifespan_context = lifespan
    return app
