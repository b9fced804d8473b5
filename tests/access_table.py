"""A service README's access table, read and held against the running app: every operation
of the app's OpenAPI called with a token of every role, the outcome (refused with 403 or
let in) and the fields of each answer compared with what the table says.

The table (section "## Who may do what"): a row per operation (`METHOD /path`), a column
per role. A cell is `✓` (allowed, every field), `–` (403), `open` (no role is checked: a
health check, a customer's link, an ERP signature), `own` (allowed on the caller's own
records only, 403 on anyone else's) or a view's name in backticks (allowed, that view's
fields). The views table below it (`| view | fields |`) gives each view's
fields in the syntax of `shared.access`."""

import asyncio
import json
import re
import uuid
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI

from shared.access import Tree, parse_view
from shared.auth import Role
from tests.harness import token

ROLES = [role.value for role in Role]
ALL, REFUSED, OPEN, OWN = "✓", "–", "open", "own"
SECTION = "## Who may do what"


@dataclass
class AccessTable:
    operations: dict[str, dict[str, str]]  # "GET /path" -> role -> cell
    views: dict[str, Tree]


def _rows(text: str, first: str) -> list[list[str]]:
    lines = text.splitlines()
    for at, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            rows = [cells]
            for row in lines[at + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"no table starting with {first!r}")


def read_table(readme: Path) -> AccessTable:
    text = readme.read_text()
    assert SECTION in text, f"{readme} has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    header, *rows = _rows(section, "operation")
    assert header[1:] == ROLES, f"the table's role columns must be {ROLES}, not {header[1:]}"
    operations: dict[str, dict[str, str]] = {}
    for row in rows:
        operation = row[0].strip("`")
        assert operation not in operations, f"{operation} is in the table twice"
        assert len(row) == len(header), f"{operation}: {len(row) - 1} cells for {len(ROLES)}"
        operations[operation] = dict(zip(ROLES, (c.strip("`") for c in row[1:]), strict=True))
    views: dict[str, Tree] = {}
    view_rows = _rows(section, "view")[1:] if "| view |" in section else []
    for name, fields in view_rows:
        views[name.strip("`")] = parse_view(fields, views)
    for operation, cells in operations.items():
        for role, cell in cells.items():
            assert cell in (ALL, REFUSED, OPEN, OWN) or cell in views, (
                f"{operation} × {role}: {cell!r} is no outcome and no view"
            )
    return AccessTable(operations, views)


def operations_of(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in app.openapi()["paths"].items()
        for method, op in ops.items()
    ]


# --- calling the app: plain ASGI, so that an event stream answers its status and stops ----


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    streaming: bool = False

    def json(self) -> Any:
        return json.loads(self.body)


async def call(
    app: FastAPI, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
) -> Answer:
    parts = urlsplit(url)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("test", 80),
        "app": app,
    }
    answer: Answer | None = None
    chunks: list[bytes] = []
    done = asyncio.Event()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays until the call is over
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal answer
        if message["type"] == "http.response.start":
            answer = Answer(
                message["status"],
                {k.decode().lower(): v.decode() for k, v in message.get("headers", [])},
            )
            if answer.headers.get("content-type", "").startswith("text/event-stream"):
                answer.streaming = True
                done.set()  # a stream: its status is the outcome; it runs on otherwise
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    task = asyncio.create_task(app(scope, receive, send))
    waiter = asyncio.create_task(done.wait())
    await asyncio.wait({task, waiter}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, waiter):
        if not pending.done():
            pending.cancel()
    await asyncio.gather(task, waiter, return_exceptions=True)
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    assert answer is not None, f"{method} {url}: no answer within 30 s"
    answer.body = b"".join(chunks)
    return answer


# --- the walk ------------------------------------------------------------------------------

DUMMY = {"day": "2026-11-30", "number": "1", "fmt": "json", "action": "return"}


def _value(name: str, known: Mapping[str, str]) -> str:
    if name in known:
        return known[name]
    if name in DUMMY:
        return DUMMY[name]
    if name.endswith("_id") or name == "token":
        return str(uuid.uuid4())
    return "x1"


def _url(path: str, known: Mapping[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _value(m.group(1), known), path)


def shape(value: Any, at: str = "") -> set[str]:
    """Every key path of a JSON value (`jobs.parts.net`; a list's items merged)."""
    if isinstance(value, list):
        return set().union(*(shape(item, at) for item in value)) if value else set()
    if isinstance(value, dict):
        paths: set[str] = set()
        for key, sub in value.items():
            path = f"{at}.{key}" if at else key
            paths |= {path, *shape(sub, path)}
        return paths
    return set()


def cut(value: Any, tree: Tree | None) -> Any:
    """What `tree` leaves of a value: the expectation, computed here, not by the app."""
    if tree is None:
        return value
    if isinstance(value, list):
        return [cut(item, tree) for item in value]
    if isinstance(value, dict):
        return {k: cut(v, tree[k]) for k, v in value.items() if k in tree}
    return value


def resources(body: Any) -> Any:
    """The resources of an answer: a page's items, a list, or the one resource."""
    if isinstance(body, dict) and "items" in body and "next_cursor" in body:
        return body["items"]
    return body


@dataclass
class Walk:
    """The outcome of walking every operation with every role."""

    mismatches: list[str] = field(default_factory=list)
    views_checked: set[tuple[str, str]] = field(default_factory=set)


async def walk(
    app: FastAPI,
    table: AccessTable,
    *,
    params: Mapping[str, str] | None = None,
    queries: Mapping[str, str] | None = None,
    own: Mapping[str, str] | None = None,
    full_role: str = "manager",
    branch: str = "BR01",
) -> Walk:
    """Calls each operation as each role. Writes are sent made-up ids and an empty JSON
    object, which every write refuses (404, 422) once the role is let in, so nothing is
    written; reads are sent the seeded ids in `params`, so that a view is compared with a
    real answer (and a read's query from `queries`, by operation, where it needs one).
    An `own` cell is called twice: with someone else's id in the path parameter `own` names
    for the operation (403) and with the caller's own (let in)."""
    operations = operations_of(app)
    in_app = {f"{m} {p}" for m, p, _ in operations}
    missing = sorted(in_app - set(table.operations))
    extra = sorted(set(table.operations) - in_app)
    assert not missing, f"operations missing from the access table: {missing}"
    assert not extra, f"operations in the access table but not in the app: {extra}"
    result = Walk()
    tokens = {role: token(role, branch, sub=f"{role}-walking") for role in ROLES}
    for method, path, op in operations:
        operation = f"{method} {path}"
        url = _url(path, (params or {}) if method == "GET" else {})
        if (queries or {}).get(operation):
            url += "?" + (queries or {})[operation]
        body = b"{}" if "requestBody" in op else b""
        full: Any = None
        for role in ROLES:
            cell = table.operations[operation][role]
            headers = {"authorization": f"Bearer {tokens[role]}"}
            if body:
                headers["content-type"] = "application/json"
            answer = await call(app, method, url, headers, body)
            where = f"{operation} as {role}: {answer.status} {answer.body[:200]!r}"
            if cell == REFUSED:
                if answer.status != 403:
                    result.mismatches.append(f"{where}, the table says 403")
                continue
            if cell == OWN:
                name = (own or {}).get(operation)
                assert name, f"{operation}: an `own` cell needs the path parameter naming whose"
                mine = await call(app, method, _url(path, {name: f"{role}-walking"}), headers, body)
                if answer.status != 403 or mine.status in (401, 403):
                    result.mismatches.append(
                        f"{where}, own: {mine.status}; the table says 403 on another's, "
                        "allowed on one's own"
                    )
                continue
            if cell == OPEN:
                if answer.status == 403:
                    result.mismatches.append(f"{where}, the table says open")
                continue
            if answer.status in (401, 403):
                result.mismatches.append(f"{where}, the table says allowed")
                continue
            if method != "GET" or not 200 <= answer.status < 300 or answer.streaming:
                continue
            if not answer.headers.get("content-type", "").startswith("application/json"):
                continue
            if full is None:
                # Every field: the answer of the manager, or of the first role seeing all.
                cells = table.operations[operation]
                whole = (
                    full_role
                    if cells[full_role] == ALL
                    else next((r for r in ROLES if cells[r] == ALL), None)
                )
                assert whole, f"{operation}: no role sees every field to compare views with"
                headers = {"authorization": f"Bearer {tokens[whole]}"}
                full_answer = await call(app, method, url, headers)
                assert full_answer.status == answer.status, f"{operation} as {whole}"
                full = resources(full_answer.json())
            seen = resources(answer.json())
            if cell == ALL:
                # Every field: all a role seeing everything sees (a list may be shorter).
                if seen and shape(seen) != shape(full):
                    result.mismatches.append(
                        f"{operation} as {role} (✓): lacks {sorted(shape(full) - shape(seen))}"
                        f", shows {sorted(shape(seen) - shape(full))}"
                    )
                continue
            if not seen:
                result.mismatches.append(f"{where}: nothing seeded to compare the view with")
                continue
            expected = shape(cut(full, table.views[cell]))
            if shape(seen) != expected:
                result.mismatches.append(
                    f"{operation} as {role} ({cell}): shows {sorted(shape(seen) - expected)}, "
                    f"lacks {sorted(expected - shape(seen))}"
                )
            result.views_checked.add((operation, role))
    return result


def views_on_reads(table: AccessTable) -> set[tuple[str, str]]:
    """The (read, role) cells that name a view: each must have been compared."""
    return {
        (operation, role)
        for operation, cells in table.operations.items()
        if operation.startswith("GET ")
        for role, cell in cells.items()
        if cell not in (ALL, REFUSED, OPEN, OWN)
    }
