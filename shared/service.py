"""Builds a service's FastAPI app: lifespan (database, NATS, relay, consumers), health,
metrics, problem details and middleware. Nothing connects before the app starts."""

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import MetaData
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import gauges, metrics, openapi, tracing
from shared.access import Projections
from shared.aio import settle
from shared.audit import AUDIT_MODEL, audit_router
from shared.auth import Authenticator, BearerCredentials, Role, User, require
from shared.consumers import ConsumerRunner, Subscribers
from shared.db import Database
from shared.driver import Statements
from shared.housekeeping import housekeeping_job
from shared.http import BodyLimit, HeadLimit, RequestContext, TextGuard
from shared.idempotency import IDEMPOTENCY_MODEL, Idempotency, IdempotencyKey, _idempotency
from shared.logs import configure_logging
from shared.messaging import Messaging
from shared.migrations import upgrade
from shared.outbox import OUTBOX_MODEL, Relay
from shared.problems import install_problem_handlers, problem
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass
class ServiceSpec:
    """What makes one service: its name, routes, handlers, tables and migrations."""

    name: str
    title: str
    description: str
    routers: list[APIRouter]
    metadata: MetaData
    outbox_model: Any
    inbox_model: Any
    idempotency_model: Any
    migrations: Path
    subscribers: Subscribers = field(default_factory=Subscribers)
    # Long-running jobs of the service (timers, sweepers): started after migrations with
    # the runtime, cancelled at shutdown. Each must survive its own errors.
    background: list[Callable[["Runtime"], Coroutine[Any, Any, None]]] = field(default_factory=list)
    # Run once after migrations, before the first request (derived indexes and the like).
    startup: list[Callable[["Runtime"], Coroutine[Any, Any, None]]] = field(default_factory=list)
    # Routes ("METHOD /path") whose bodies stream past max_body_bytes under their own limit.
    large_bodies: frozenset[str] = frozenset()
    # Which fields of which operations' answers each role sees (least privilege).
    projections: Projections | None = None
    # The service's own gauges, read when /metrics is scraped (shared/gauges.py).
    gauges: list[Callable[["Runtime"], Coroutine[Any, Any, None]]] = field(default_factory=list)
    version: str = "0.1.0"
    # The service's audit_entry table (`shared.audit.make_audit_model`): `record` writes
    # it, `GET /audit` reads it, housekeeping keeps it to `audit_retention_days`.
    audit_model: Any = None


LAG_PROBE_INTERVAL = 0.25


async def loop_lag_probe(runtime: "Runtime") -> None:
    """Background job: how late the event loop wakes a timer, four times a second
    (`event_loop_lag_seconds`). A long synchronous stretch (a full garbage collection, a
    big SQLite read inline, a PDF rendered on the loop) shows up here as every request's
    wait."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + LAG_PROBE_INTERVAL
        await asyncio.sleep(LAG_PROBE_INTERVAL)
        metrics.EVENT_LOOP_LAG.observe(max(0.0, loop.time() - due))


class Runtime:
    """The running parts of a service, kept on app.state.runtime."""

    def __init__(self, settings: ServiceSettings, spec: ServiceSpec):
        self.settings, self.spec = settings, spec
        self.db = Database(
            settings.database_url,
            echo=settings.echo_sql,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            info={
                OUTBOX_MODEL: spec.outbox_model,
                IDEMPOTENCY_MODEL: spec.idempotency_model,
                **({AUDIT_MODEL: spec.audit_model} if spec.audit_model is not None else {}),
            },
        )
        self.messaging = Messaging(settings)
        self.relay: Relay | None = None
        self.runner: ConsumerRunner | None = None
        self._starting: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self.settings.auto_migrate:
            await upgrade(self.db, self.spec.migrations)
        for step in self.spec.startup:
            await step(self)
        self._starting = asyncio.create_task(self._start_messaging(), name="messaging-start")
        for job in [housekeeping_job, loop_lag_probe, *self.spec.background]:
            self._background.append(asyncio.create_task(job(self), name=job.__name__))

    async def _start_messaging(self) -> None:
        await self.messaging.connect()
        self.relay = Relay(
            self.db,
            self.messaging,
            self.spec.outbox_model,
            batch=self.settings.relay_batch,
            poll_interval=self.settings.relay_poll_interval,
            backoff_max=self.settings.relay_backoff_max,
        )
        self.db.on_events_committed(self.relay.committed)
        relay = self.relay

        async def wake_relay() -> None:
            relay.wake()

        self.messaging.on_reconnect(wake_relay)
        self.relay.start()
        self.runner = ConsumerRunner(
            self.db,
            self.messaging,
            self.spec.subscribers.handlers,
            self.spec.inbox_model,
            self.settings,
        )
        await self.runner.start()
        log.info("messaging started: relay and %d consumers", len(self.spec.subscribers.handlers))

    async def stop(self) -> None:
        # A flag first: on Python 3.11 a cancellation can be swallowed by wait_for inside a
        # library, and a retry loop must not start over after that.
        self.messaging.closing = True
        tasks = [*self._background]
        if self._starting and not self._starting.done():
            tasks.append(self._starting)
        for task in tasks:
            task.cancel()
        for task in tasks:
            await settle(task)
        if self.runner:
            await self.runner.stop()
        if self.relay:
            await self.relay.stop()
        await self.messaging.close()
        await self.db.dispose()


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with runtime(request).db.transaction() as session:
        yield session


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with runtime(request).db.reader() as session:
        yield session


# The request commits once, at the boundary, before the response is sent: a failed
# commit is the client's error response, never a 2xx for a lost write.
SessionDep = Annotated[AsyncSession, Depends(_write_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]


@dataclass(frozen=True, slots=True)
class Write:
    """A hot write's caller, its Idempotency-Key and its transaction, from one dependency."""

    user: User
    idempotency: Idempotency
    statements: Statements


def writer(*roles: Role) -> Callable[..., AsyncIterator[Write]]:
    """A dependency for a hot write route (`Depends(writer(...), scope="function")`): the
    role check, the Idempotency-Key and the write transaction (`Database.hot_transaction`,
    taken last: SQLite's writer lock) as one dependency instead of three. It commits like
    `SessionDep`."""
    check = require(*roles)

    async def write(
        request: Request,
        credentials: BearerCredentials,
        idempotency_key: IdempotencyKey = None,
    ) -> AsyncIterator[Write]:
        user = await check(request, credentials)
        keyed = await _idempotency(request, idempotency_key)
        async with runtime(request).db.hot_transaction() as statements:
            yield Write(user, keyed(statements), statements)

    write.allowed_roles = check.allowed_roles  # type: ignore[attr-defined]
    return write


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


def _ops_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Database reachable, JetStream taking events",
        response_model=Readiness,
        responses={503: {"description": "Not ready: the failing check is named in `checks`"}},
    )
    async def readyz(request: Request) -> Any:
        rt = runtime(request)

        async def database() -> str:
            try:
                await asyncio.wait_for(rt.db.ping(), 2)
            except Exception as exc:
                return f"down: {type(exc).__name__}"
            return "ok"

        # At once: each may take its whole timeout when its dependency is away.
        database_status, nats_status = await asyncio.gather(
            database(), rt.messaging.jetstream_status()
        )
        if nats_status == "ok" and rt.relay is not None and rt.relay.failing:
            # The relay's own publishes are the first to know; the stream's info can look
            # healthy for seconds after its leader lost its replicas.
            nats_status = "jetstream unavailable: the outbox relay cannot publish"
        checks = {"database": database_status, "nats": nats_status}
        if all(v == "ok" for v in checks.values()):
            return {"status": "ready", "checks": checks}
        return problem(
            503, "not-ready", "Not ready", "a dependency is unreachable", request, checks=checks
        )

    @router.get(
        "/metrics",
        summary="Prometheus metrics (text exposition format)",
        dependencies=[Depends(require(Role.admin, Role.manager))],
        response_class=PlainTextResponse,
    )
    async def metrics_endpoint(request: Request) -> Response:
        await gauges.refresh(runtime(request))
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


# The collector's thresholds once the start-up heap is frozen: young collections every
# 10,000 new container objects instead of 700, so what a request holds while 30 others run
# dies young instead of being promoted and walked again by a full collection.
GC_THRESHOLDS = (10_000, 10, 10)
_heap_frozen = False


def settle_heap() -> None:
    """Move what start-up built (modules, the app, its routes and models, about 150,000
    objects) out of the collector's reach, once per process. A full collection walked them
    all every few seconds under load: 75-95 ms with every request waiting behind it."""
    global _heap_frozen
    if _heap_frozen:
        return
    _heap_frozen = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _project_answers(app: FastAPI, projections: Projections) -> None:
    """Each route with a projection answers with its caller's view only; a projection
    naming no route of the app is a mistake, found at start-up."""
    unknown = set(projections.operations)
    for route in app.router.routes:
        if not isinstance(route, APIRoute):
            continue
        for method in route.methods or ():
            operation = f"{method} {route.path}"
            if operation in projections.operations:
                route.app = projections.wrap(operation, route.app)
                described = projections.describe(operation)
                route.description = "\n\n".join(filter(None, [route.description, described]))
                unknown.discard(operation)
    if unknown:
        raise ValueError(f"projections for operations the app lacks: {sorted(unknown)}")


def create_service_app(settings: ServiceSettings, spec: ServiceSpec) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(spec.name, settings.log_level)
        rt = Runtime(settings, spec)
        app.state.runtime = rt
        app.state.authenticator = Authenticator(settings)
        await rt.start()
        settle_heap()
        try:
            yield
        finally:
            await rt.stop()

    tracing.configure(spec.name, settings.otlp_endpoint)
    app = FastAPI(
        title=spec.title, description=spec.description, version=spec.version, lifespan=lifespan
    )
    app.state.settings = settings
    install_problem_handlers(app)
    openapi.install(app)
    # The routes go straight onto the app's router: `include_router` keeps each router as a
    # nested one, which matched every request twice through layers of scope bookkeeping
    # (7% of a clock-on's instructions). The routers carry no prefix or dependencies of
    # their own beyond what their routes already hold.
    audit = [audit_router(spec.audit_model)] if spec.audit_model is not None else []
    for router in (_ops_router(), *spec.routers, *audit):
        app.router.routes.extend(router.routes)
    if spec.projections is not None:
        _project_answers(app, spec.projections)
    app.add_middleware(TextGuard, exempt=spec.large_bodies)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, exempt=spec.large_bodies)
    app.add_middleware(HeadLimit)
    app.add_middleware(RequestContext)
    if tracing.enabled():
        app.add_middleware(tracing.TracingMiddleware, service=spec.name)
    return app
