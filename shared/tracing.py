"""Traces across HTTP and NATS (OpenTelemetry), off unless configured.

With `<PREFIX>_OTLP_ENDPOINT` set (an OTLP/HTTP collector, e.g.
`http://otel-collector:4318/v1/traces`) each service records:

- a server span per HTTP request, continuing the caller's W3C `traceparent` header;
- the trace context in every event it writes, as the CloudEvents distributed tracing
  extension (`traceparent`, `tracestate` attributes of the envelope), taken in the
  transaction that writes the event;
- a producer span when the relay publishes the event, and a consumer span around each
  handler, both children of the context the event carries, so that what a handler writes
  continues the same trace.

So one trace runs from the tablet's POST through the outbox, the relay and every
consumer's handler, in every service. Off (no endpoint), `enabled()` is False and nothing
here runs: no middleware is installed, no context is read or written, envelopes carry no
tracing attributes, and OpenTelemetry is not even imported (`shared/otel.py` holds what
runs when it is on).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor

log = logging.getLogger(__name__)

_enabled = False
_exporting_to: set[str] = set()


def enabled() -> bool:
    return _enabled


def configure(service: str, endpoint: str | None) -> None:
    """Export spans by OTLP/HTTP to `endpoint`; without one, tracing stays off."""
    if not endpoint or endpoint in _exporting_to:
        return
    _exporting_to.add(endpoint)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    install(service, BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    log.info("traces exported by OTLP to %s", endpoint)


def install(service: str, processor: "SpanProcessor") -> None:
    """Turn tracing on with this span processor (tests give an in-memory exporter's)."""
    global _enabled
    from shared import otel

    otel.install(service, processor)
    _enabled = True


def uninstall() -> None:
    """Tracing off again (tests): nothing is recorded or carried from now on."""
    global _enabled
    if _enabled:
        from shared import otel

        otel.shutdown()
    _enabled = False


def event_context() -> dict[str, str]:
    """The current trace context as CloudEvents tracing attributes (`traceparent`,
    `tracestate`); empty when off or outside a span."""
    if not _enabled:
        return {}
    from shared import otel

    return otel.inject()


@contextmanager
def event_span(
    service: str,
    name: str,
    kind: str,
    traceparent: str | None,
    tracestate: str | None = None,
    **attributes: Any,
) -> Iterator[None]:
    """A span for one event (`kind` "producer" or "consumer"), child of the context the
    event carries; nothing when off."""
    if not _enabled:
        yield
        return
    from shared import otel

    with otel.event_span(service, name, kind, traceparent, tracestate, attributes):
        yield


class TracingMiddleware:
    """A server span per HTTP request, continuing the caller's `traceparent`. Installed
    only when tracing is on."""

    def __init__(self, app: ASGIApp, service: str):
        from shared import otel

        self.app, self.service, self._serve = app, service, otel.serve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self._serve(self.app, self.service, scope, receive, send)
