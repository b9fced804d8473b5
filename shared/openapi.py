"""The OpenAPI document as a contract: every error an operation can answer is documented
once, here, as `application/problem+json` with its schema, not route by route.

Which errors an operation documents follows from what it takes, the way the service
answers them: a bearer token (401; 403 for a role or a branch rule), a path id (404), a
body (400 malformed JSON, 413 too large, 422), any parameter (422), If-Match (412 stale,
428 missing), a write (409 against the current state); every operation may answer 414 and
431, the request's own limits (shared/http.py), before any route runs. A route adds what
only it answers (410, 415, 416, 429, 503) in its own `responses`; those get the problem
schema too. The roles an operation lets in are listed under `x-roles`, so a client (and the contract
test) knows whose token it needs.
"""

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from shared.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `type` is stable (urn:workshop:problem:<slug>).",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "examples": ["urn:workshop:problem:validation-error"]},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "each bad field, for a 422",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    # A problem may carry members of its own (current_etag, checks, line_id, ...).
    "additionalProperties": True,
}

DESCRIPTIONS = {
    400: "Malformed JSON",
    401: "No bearer token, or one that is not valid",
    403: "Not allowed for your role or branch",
    404: "Not found (or another branch's)",
    409: "Conflicts with the current state",
    410: "Gone",
    412: "The resource changed since you read it (If-Match)",
    413: "Request body too large",
    414: "The path and query string are too long",
    415: "Unsupported media type",
    416: "Range not satisfiable",
    422: "Invalid input; `errors[].field` names each bad field",
    428: "If-Match header required",
    431: "Request headers too large or too many",
    429: "Too many requests",
    503: "A dependency is unavailable; nothing was applied",
}

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A route's own roles: `shared.auth.require` marks the dependency it returns.
ROLES_ATTRIBUTE = "allowed_roles"


def content_of(
    *media_types: str, description: str, status: int = 200
) -> dict[int | str, dict[str, Any]]:
    """A route's `responses` entry for an answer that is not JSON (a PDF, a font, a file's
    own bytes: `*/*`)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {status: {"description": description, "content": {m: binary for m in media_types}}}


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _roles(route: APIRoute) -> list[str] | None:
    found: set[str] = set()
    for sub in _dependencies(route.dependant):
        roles = getattr(sub.call, ROLES_ATTRIBUTE, None)
        if roles is not None:
            found |= {str(r) for r in roles}
    return sorted(found) if found else None


def _statuses(route: APIRoute, method: str, operation: dict[str, Any]) -> set[int]:
    params = operation.get("parameters", [])
    statuses: set[int] = {414, 431}  # the request's own limits, checked before the route
    if operation.get("security"):  # the bearer token's dependency puts it there
        statuses |= {401, 403}
    if any(p.get("in") == "path" for p in params):
        statuses |= {404, 422}
    if params:
        statuses.add(422)
    if "requestBody" in operation:
        statuses |= {413, 422}
        if "application/json" in operation["requestBody"].get("content", {}):
            statuses.add(400)
    if any(p.get("in") == "header" and p.get("name", "").lower() == "if-match" for p in params):
        statuses |= {412, 428}
    if method in WRITES:
        statuses.add(409)
    statuses |= {int(code) for code in operation.get("responses", {}) if str(code)[0] in "45"}
    return statuses


def _problem_response(status: int, existing: dict[str, Any] | None) -> dict[str, Any]:
    description = (existing or {}).get("description") or DESCRIPTIONS.get(status, "Error")
    if description == "Validation Error":  # FastAPI's default 422
        description = DESCRIPTIONS[422]
    if description == "Additional Response":
        description = DESCRIPTIONS.get(status, "Error")
    # A route may answer an error in another form too (a page's HTML): kept beside it.
    content = {
        media: value
        for media, value in (existing or {}).get("content", {}).items()
        if media != "application/json"
    }
    content[PROBLEM_JSON] = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {"description": description, "content": content}


def _hoist_definitions(node: Any, components: dict[str, Any]) -> Any:
    """A schema given whole (a signed body's, through openapi_extra) keeps its `$defs`,
    which no reference can reach inside an OpenAPI document: they become components."""
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            components.setdefault(name, _hoist_definitions(definition, components))
        return {
            key: (
                value.replace("#/$defs/", "#/components/schemas/")
                if key == "$ref" and isinstance(value, str)
                else _hoist_definitions(value, components)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hoist_definitions(item, components) for item in node]
    return node


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    schema["paths"] = _hoist_definitions(schema["paths"], components)
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        path = schema["paths"].get(route.path_format, {})
        for method in route.methods or ():
            operation = path.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(_statuses(route, method, operation)):
                responses[str(status)] = _problem_response(status, responses.get(str(status)))
            roles = _roles(route)
            if roles is not None:
                operation["x-roles"] = roles
    return schema


def install(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json (built once, on first ask)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
