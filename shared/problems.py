"""RFC 9457 problem details for every error a service returns."""

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:workshop:problem:"


class DomainError(Exception):
    """A rule of the workshop said no. Subclasses set status, slug and title."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict with the current state"


class InvalidInput(DomainError):
    status, slug, title = 422, "validation-error", "Invalid input"

    def __init__(self, field: str, message: str, **extra: Any):
        super().__init__(
            f"{field}: {message}", errors=[{"field": field, "message": message}], **extra
        )


class PreconditionFailed(DomainError):
    status, slug, title = 412, "precondition-failed", "The resource changed since you read it"


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Not allowed for your role or branch"


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class RateLimited(DomainError):
    """429 with `Retry-After` (whole seconds, at least 1) in the header and the body."""

    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, retry_after: float, **extra: Any):
        super().__init__(detail, retry_after=max(1, math.ceil(retry_after)), **extra)


_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Invalid input"),
    429: ("rate-limited", "Too many requests"),
}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_BASE + slug, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0] if loc else "body")


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem(
            400, "malformed-json", "Malformed JSON", "The request body is not valid JSON.", request
        )
    fields = [
        {"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
        for e in errors
    ]
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    return problem(422, "validation-error", "Invalid input", detail, request, errors=fields)


async def _domain(request: Request, exc: DomainError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.extra["retry_after"])}
    return problem(exc.status, exc.slug, exc.title, exc.detail, request, headers, **exc.extra)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem(
        exc.status_code, slug, title, detail, request, dict(exc.headers) if exc.headers else None
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(
        500,
        "internal-error",
        "Internal error",
        "Something went wrong on our side; the request was not applied.",
        request,
    )


async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
    return problem(
        412,
        "precondition-failed",
        "The resource changed since you read it",
        "another change was saved first; reload and apply yours again",
        request,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StaleDataError, _stale)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, _domain)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
