"""One trace from the tablet's POST through the outbox, the relay and every consumer's
handler, across services (OpenTelemetry with an in-memory exporter; four services in one
process over a real nats-server)."""

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.followup.config import Settings as FollowupSettings
from services.followup.main import create_app as followup_app
from services.reception.config import Settings as ReceptionSettings
from services.reception.main import create_app as reception_app
from services.records.config import Settings as RecordsSettings
from services.records.main import create_app as records_app
from services.workorders.config import Settings as WorkordersSettings
from services.workorders.main import create_app as workorders_app
from shared import tracing
from shared.events import Envelope, encode
from tests.flow import register
from tests.harness import NatsServer, auth, eventually

pytestmark = [pytest.mark.asyncio]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.install("tests", SimpleSpanProcessor(exporter))
    yield exporter
    tracing.uninstall()


@contextlib.asynccontextmanager
async def four_services(nats_url: str, root: Path) -> AsyncIterator[httpx.AsyncClient]:
    def db(name: str) -> str:
        return f"sqlite+aiosqlite:///{root / name}.db"

    apps = {
        "reception": reception_app(
            ReceptionSettings(database_url=db("reception"), nats_url=nats_url)
        ),
        "workorders": workorders_app(
            WorkordersSettings(database_url=db("workorders"), nats_url=nats_url)
        ),
        "followup": followup_app(FollowupSettings(database_url=db("followup"), nats_url=nats_url)),
        "records": records_app(
            RecordsSettings(
                database_url=db("records"), nats_url=nats_url, files_dir=str(root / "files")
            )
        ),
    }
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        mounts = {f"http://{name}": httpx.ASGITransport(app) for name, app in apps.items()}
        yield await stack.enter_async_context(httpx.AsyncClient(mounts=mounts, timeout=10))


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def test_one_trace_from_the_tablet_to_every_handler(
    exporter: InMemorySpanExporter, nats_server: NatsServer, tmp_path: Path
) -> None:
    async with four_services(nats_server.url, tmp_path) as client:
        _, vehicle = await register(client, "http://reception")
        tablet = trace.get_tracer("tablet")
        with tablet.start_as_current_span("tablet: open the intake") as root:
            headers = dict(auth("advisor"))
            TraceContextTextMapPropagator().inject(headers)
            r = await client.post(
                "http://reception/intakes",
                headers=headers,
                json={"vehicle_id": vehicle["id"], "odometer_km": 1000},
            )
            assert r.status_code == 201, r.text
        trace_id = root.get_span_context().trace_id

        handlers = (
            "handle workorders__open_repair_order",
            "handle followup__add_contact",
            "handle records__archive_intake",
            "handle records__archive_repair_order",
        )

        async def all_handled() -> list[ReadableSpan] | None:
            spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
            return spans if all(named(spans, name) for name in handlers) else None

        spans = await eventually(all_handled, what="every handler's span in the tablet's trace")

    by_id = {span.context.span_id: span for span in spans}

    def descends(span: ReadableSpan, ancestor: ReadableSpan) -> bool:
        while span.parent is not None:
            if span.parent.span_id == ancestor.context.span_id:
                return True
            span = by_id[span.parent.span_id]
        return False

    [server] = [
        s
        for s in named(spans, "POST /intakes")
        if s.attributes and s.attributes.get("service.name") == "reception"
    ]
    assert server.kind == SpanKind.SERVER
    assert server.parent is not None and server.parent.span_id == root.get_span_context().span_id
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/intakes"
    assert server.attributes["http.response.status_code"] == 201
    [publish] = named(spans, "publish reception.intake.opened.v1")
    assert publish.kind == SpanKind.PRODUCER and descends(publish, server)
    for name in handlers[:3]:
        [handled] = named(spans, name)
        assert handled.kind == SpanKind.CONSUMER
        # Each handler continues the request that wrote the event.
        assert descends(handled, server), name
        assert handled.attributes is not None
        assert handled.attributes["cloudevents.event_type"] == "reception.intake.opened.v1"
    # What a handler writes goes on in the same trace: workorders' own event is published
    # as a child of its handler.
    handler = named(spans, "handle workorders__open_repair_order")[0]
    onward = [
        s
        for s in spans
        if s.kind == SpanKind.PRODUCER
        and s.name.startswith("publish workorders.")
        and descends(s, handler)
    ]
    assert onward, sorted(s.name for s in spans)
    # ... and records' handler of that event too, two hops from the tablet.
    [archived] = named(spans, "handle records__archive_repair_order")
    assert archived.attributes is not None
    assert archived.attributes["cloudevents.event_type"] == "workorders.repair_order.opened.v1"
    assert descends(archived, handler) and descends(archived, server)


async def test_off_by_default_nothing_is_traced_or_carried() -> None:
    assert not tracing.enabled()
    assert tracing.event_context() == {}
    envelope = Envelope.model_validate(
        {
            "id": "e1",
            "source": "probe",
            "type": "probe.thing.done.v1",
            "time": "2026-01-01T00:00:00Z",
            "subject": "s",
            "data": {"note": None},
        }
    )
    written: dict[str, Any] = orjson.loads(encode(envelope))
    assert "traceparent" not in written and "tracestate" not in written
    assert written["data"] == {"note": None}
