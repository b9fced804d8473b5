"""What tracing does when it is on (shared/tracing.py imports this module only then)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_PROPAGATOR = TraceContextTextMapPropagator()
_KINDS = {"producer": SpanKind.PRODUCER, "consumer": SpanKind.CONSUMER}
_provider: TracerProvider | None = None
_tracers: dict[str, trace.Tracer] = {}
_processors: list[SpanProcessor] = []


def install(service: str, processor: SpanProcessor) -> None:
    """One provider per process (a second service in the same process, as in tests, adds
    its processor); each service names its spans' instrumentation scope."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": service}))
        trace.set_tracer_provider(_provider)
    _provider.add_span_processor(processor)
    _processors.append(processor)


def shutdown() -> None:
    """Stop the processors (tests turn tracing off): spans made after this go nowhere."""
    while _processors:
        _processors.pop().shutdown()


def tracer(service: str) -> trace.Tracer:
    found = _tracers.get(service)
    if found is None:
        found = _tracers[service] = trace.get_tracer(f"workshop.{service}")
    return found


def inject() -> dict[str, str]:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def _parent(traceparent: str | None, tracestate: str | None) -> otel_context.Context | None:
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return _PROPAGATOR.extract(carrier)


@contextmanager
def event_span(
    service: str,
    name: str,
    kind: str,
    traceparent: str | None,
    tracestate: str | None,
    attributes: dict[str, Any],
) -> Iterator[None]:
    with tracer(service).start_as_current_span(
        name,
        context=_parent(traceparent, tracestate),
        kind=_KINDS[kind],
        attributes={"service.name": service}
        | {k: v for k, v in attributes.items() if v is not None},
    ):
        yield


async def serve(app: ASGIApp, service: str, scope: Scope, receive: Receive, send: Send) -> None:
    headers = {
        key.decode("latin-1"): value.decode("latin-1")
        for key, value in scope.get("headers", [])
        if key in (b"traceparent", b"tracestate")
    }
    parent = _PROPAGATOR.extract(headers) if headers else None
    method = scope.get("method", "GET")
    with tracer(service).start_as_current_span(
        f"{method} {scope.get('path', '')}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={
            "service.name": service,
            "http.request.method": method,
            "url.path": scope.get("path", ""),
        },
    ) as span:

        async def traced_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            await send(message)

        try:
            await app(scope, receive, traced_send)
        finally:
            path = getattr(scope.get("route"), "path", None)
            if path:
                span.update_name(f"{method} {path}")
                span.set_attribute("http.route", path)
