"""ASGI middleware every service runs: request id, JSON access log, metrics, body limit,
and no control characters in a request's text."""

import contextlib
import json
import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics, text
from shared.logs import request_id_var
from shared.problems import PROBLEM_BASE, PROBLEM_JSON, problem

log = logging.getLogger("workshop.access")


class RequestContext:
    """Request id (taken from X-Request-ID or made), access log line and metrics."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
                break
        request_id = request_id or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            metrics.REQUESTS.labels(scope["method"], path, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(scope["method"], path).observe(elapsed)
            if status >= 500 or log.isEnabledFor(logging.DEBUG):
                log.log(
                    logging.ERROR if status >= 500 else logging.DEBUG,
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={"duration_ms": round(elapsed * 1000, 2)},
                )
            request_id_var.reset(token)


class BodyLimit:
    """Refuses bodies over `max_bytes` with 413 before they are read whole; routes in
    `exempt` (e.g. "POST /files") stream their bodies under a limit of their own.

    A body without Content-Length (chunked) is counted as it arrives: the 413 is sent the
    moment the count passes the limit, and whatever the route makes of the cut body (its
    parser's "error parsing the body") is dropped unsent."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: frozenset[str] = frozenset()):
        self.app, self.max_bytes, self.exempt = app, max_bytes, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self.exempt and f"{scope['method']} {scope['path'].rstrip('/')}" in self.exempt
        ):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, send)
                return
        received = 0
        refused = started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not started:
                        await self._refuse(scope, send)
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = True
            await send(message)

        with contextlib.suppress(_TooLarge):  # answered already
            await self.app(scope, limited_receive, guarded_send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        await send_problem(
            scope,
            send,
            413,
            "payload-too-large",
            "Request body too large",
            f"the body may be at most {self.max_bytes} bytes",
        )


class _TooLarge(Exception):
    pass


async def send_problem(
    scope: Scope, send: Send, status: int, slug: str, title: str, detail: str
) -> None:
    """A problem+json answer sent straight on the ASGI channel, for middleware that
    answers before any route runs."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": scope["path"][:200],
    }
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


# What a request's head may hold. Below what the HTTP server's own parser takes (uvicorn
# with httptools cannot parse a URL of 64 KiB or more, and refuses it with a bare
# text/plain 400; `shared.server` makes that refusal problem+json too), so the app
# answers first, with a status that says which part is too long.
MAX_URL_BYTES = 8 * 1024
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 32 * 1024
MAX_HEADERS = 100


class HeadLimit:
    """Refuses an over-long request target (path and query string: 414) or header section
    (one header, all of them or too many of them: 431) with problem+json."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (refusal := head_refusal(scope)) is not None:
            status, slug, title, detail = refusal
            await send_problem(scope, send, status, slug, title, detail)
            return
        await self.app(scope, receive, send)


def head_refusal(scope: Scope) -> tuple[int, str, str, str] | None:
    # Some servers (and httpx's ASGI transport) put the query in raw_path too.
    path = (scope.get("raw_path") or scope["path"].encode()).split(b"?", 1)[0]
    query = scope.get("query_string", b"")
    target = len(path) + (1 + len(query) if query else 0)  # as in the request line
    if target > MAX_URL_BYTES:
        return (
            414,
            "uri-too-long",
            "Request target too long",
            f"the path and query string may be at most {MAX_URL_BYTES} bytes",
        )
    headers = scope["headers"]
    if len(headers) > MAX_HEADERS:
        return (
            431,
            "header-fields-too-large",
            "Request header fields too large",
            f"a request may carry at most {MAX_HEADERS} header fields",
        )
    total = 0
    for name, value in headers:
        size = len(name) + len(value)
        if size > MAX_HEADER_BYTES:
            return (
                431,
                "header-fields-too-large",
                "Request header fields too large",
                f"header {name.decode('latin-1')[:100]} is over {MAX_HEADER_BYTES} bytes",
            )
        total += size
    if total > MAX_HEADERS_BYTES:
        return (
            431,
            "header-fields-too-large",
            "Request header fields too large",
            f"the header fields may be at most {MAX_HEADERS_BYTES} bytes together",
        )
    return None


# Bytes that may spell a refused character: a percent escape or a raw byte outside printable
# ASCII in a query; in a JSON body a \u, \b or \f escape, a raw C0 byte or DEL, and the
# UTF-8 of a C1 control or a bidi control (a UTF-16 or UTF-32 body has NUL bytes). Anything
# else is passed on unparsed.
_QUERY_SUSPECT = re.compile(rb"[%\x00-\x1f\x7f-\xff]")
_BODY_SUSPECT = re.compile(
    rb"\\[ubf]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
    rb"|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]"
)
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class TextGuard:
    """Refuses a request whose text carries a control character (`shared.text`) with 422
    naming the field, before any route reads it: the path, each query parameter and every
    string of a JSON body. Routes in `exempt` stream bodies that are not JSON (uploads,
    whose file names `shared.text.check_line` checks)."""

    def __init__(self, app: ASGIApp, exempt: frozenset[str] = frozenset()):
        self.app, self.exempt = app, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = _path_or_query_refusal(scope)
        if (
            refused is None
            and scope["method"] in _WITH_BODY
            and _is_json(scope)
            and f"{scope['method']} {scope['path'].rstrip('/')}" not in self.exempt
        ):
            body, receive = await _buffered(receive)
            refused = _body_refusal(body)
        if refused is not None:
            field, message = refused
            response = problem(
                422,
                "validation-error",
                "Invalid input",
                f"{field}: {message}",
                errors=[{"field": field, "message": message}],
                instance=scope["path"],
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _path_or_query_refusal(scope: Scope) -> tuple[str, str] | None:
    if (message := text.refusal(scope["path"])) is not None:
        return "path", message
    query: bytes = scope.get("query_string", b"")
    if query and _QUERY_SUSPECT.search(query):
        # Read as Starlette reads it for the routes.
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if (message := text.refusal(value)) is not None:
                return name, message
            if (message := text.refusal(name)) is not None:
                return "query", f"a parameter's name {message}"
    return None


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI would read the body as JSON: no content type, or a JSON one."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or (
                kind.startswith(b"application/") and kind.endswith(b"+json")
            )
    return True


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body (BodyLimit, outside, bounds it) and a receive that gives it again."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


def _body_refusal(body: bytes) -> tuple[str, str] | None:
    if not _BODY_SUSPECT.search(body):
        return None
    try:
        # The parser the routes use (Starlette's), so both read the same document.
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None  # the route answers for a body it cannot read
    return text.json_refusal(document)
