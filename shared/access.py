"""Least privilege in answers: which fields of an operation's answer each role sees.

A service names its views (`"order-work": "id, number, jobs(@job-work)"`) and, per
operation (`"GET /repair-orders/{order_id}"`), the view of each role allowed to call it
(`"*"`: every field). Who may call an operation at all is the route's `require(...)`; the
projection then cuts its JSON answer down to the fields of the caller's roles, once, for
every route that has one (`create_service_app` wraps those routes). A user holding several
roles sees the union of their views; a role not listed for the operation adds nothing.

View syntax: a comma-separated list of fields; `field(...)` keeps only the listed fields
of an object (of each object, for a list); `@name` inside parentheses stands for the
fields of another view. A list answer, or a page (`{"items": [...], "next_cursor": ...}`),
is projected item by item."""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import Role, User

# A view as a tree: a field name to None (the whole value) or to the fields kept in it.
Tree = dict[str, "Tree | None"]
EVERYTHING = "*"


def parse_view(text: str, named: Mapping[str, Tree] | None = None) -> Tree:
    """`"id, jobs(id, parts(@line))"` as a tree; `@name` is looked up in `named`."""
    named = named or {}
    tree, rest = _fields(text.replace("`", ""), 0, named)
    if rest != len(text.replace("`", "")):
        raise ValueError(f"unbalanced ')' in view {text!r}")
    return tree


def _fields(text: str, at: int, named: Mapping[str, Tree]) -> tuple[Tree, int]:
    tree: Tree = {}
    name = ""
    while at < len(text):
        char = text[at]
        if char == "(":
            inner, at = _fields(text, at + 1, named)
            if at >= len(text) or text[at] != ")":
                raise ValueError(f"unclosed '(' after {name.strip()!r}")
            tree[_name(name)] = _merge(tree.get(_name(name)) or {}, inner)
            name = ""
        elif char == ")":
            break
        elif char == ",":
            _add(tree, name, named)
            name = ""
        else:
            name += char
        at += 1
    _add(tree, name, named)
    return tree, at


def _name(raw: str) -> str:
    name = raw.strip()
    if not name or not all(c.isalnum() or c == "_" for c in name):
        raise ValueError(f"not a field name: {raw!r}")
    return name


def _add(tree: Tree, raw: str, named: Mapping[str, Tree]) -> None:
    if not raw.strip():
        return
    if raw.strip().startswith("@"):
        ref = raw.strip()[1:]
        if ref not in named:
            raise ValueError(f"unknown view @{ref}")
        for key, sub in named[ref].items():
            tree[key] = _merge(tree[key], sub) if key in tree else sub
        return
    tree.setdefault(_name(raw), None)


def _merge(a: Tree | None, b: Tree | None) -> Tree | None:
    """The union of two views (None is the whole value)."""
    if a is None or b is None:
        return None
    merged = dict(a)
    for key, sub in b.items():
        merged[key] = _merge(merged[key], sub) if key in merged else sub
    return merged


def project(value: Any, tree: Tree | None) -> Any:
    if tree is None:
        return value
    if isinstance(value, list):
        return [project(item, tree) for item in value]
    if isinstance(value, dict):
        return {key: project(sub, tree[key]) for key, sub in value.items() if key in tree}
    return value


def project_answer(body: Any, tree: Tree | None) -> Any:
    """A resource, a list of them or a page of them, cut down to `tree`."""
    if isinstance(body, dict) and isinstance(body.get("items"), list) and "next_cursor" in body:
        return {**body, "items": project(body["items"], tree)}
    return project(body, tree)


@dataclass
class Projections:
    """A service's views and, per operation ("METHOD /path"), each role's view name."""

    views: dict[str, str]
    operations: dict[str, dict[Role, str]]
    _trees: dict[str, Tree] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for name, text in self.views.items():  # in order: a view may use those before it
            self._trees[name] = parse_view(text, self._trees)
        for operation, by_role in self.operations.items():
            for view in by_role.values():
                if view != EVERYTHING and view not in self._trees:
                    raise ValueError(f"{operation}: unknown view {view!r}")

    def tree(self, name: str) -> Tree | None:
        return None if name == EVERYTHING else self._trees[name]

    def for_roles(self, operation: str, roles: Iterable[Role]) -> Tree | None:
        """What a user with `roles` sees of `operation`'s answer (None: everything)."""
        by_role = self.operations[operation]
        seen: Tree | None = {}
        for role in roles:
            if role in by_role:
                seen = _merge(seen, self.tree(by_role[role]))
        return seen

    def describe(self, operation: str) -> str:
        """The operation's views for its OpenAPI description (a reader's client may miss
        fields the schema lists)."""
        by_view: dict[str, list[str]] = {}
        for role, view in self.operations[operation].items():
            by_view.setdefault(view, []).append(role.value)
        lines = [
            f"- {', '.join(roles)}: "
            + ("every field" if view == EVERYTHING else f"`{view}`: {self.views[view]}")
            for view, roles in by_view.items()
        ]
        return "Fields of the answer by role (others: 403):\n\n" + "\n".join(lines)

    def wrap(self, operation: str, app: ASGIApp) -> ASGIApp:
        return _Projecting(app, self, operation)


class _Projecting:
    """Around one route: a JSON 2xx answer is cut to the caller's view (the user is the one
    `require` put on the request's state); any other answer passes as it is."""

    def __init__(self, app: ASGIApp, projections: Projections, operation: str):
        self.app, self.projections, self.operation = app, projections, operation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message | None = None
        tree: Tree | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start, tree
            if message["type"] == "http.response.start":
                tree = self._tree(scope, message)
                if tree is None:
                    await send(message)
                else:
                    start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = json.dumps(
                project_answer(json.loads(b"".join(chunks)), tree),
                ensure_ascii=False,
                allow_nan=False,
                separators=(",", ":"),
            ).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)

    def _tree(self, scope: Scope, start: Message) -> Tree | None:
        if not 200 <= start["status"] < 300:
            return None
        content_type = dict(start.get("headers", [])).get(b"content-type", b"")
        if not content_type.startswith(b"application/json"):
            return None
        user = scope.get("state", {}).get("user")
        if not isinstance(user, User):
            # No user on a JSON answer of a projected route: nothing of it is shown.
            return {}
        return self.projections.for_roles(self.operation, user.roles)
