"""Calls to the four services' HTTP APIs with the signed-in user's token: one shared
connection pool, problem+json read into field errors, an Idempotency-Key and an If-Match
passed through from the form that asked."""

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
log = logging.getLogger("staff.api")


@dataclass
class Answer:
    """A service's answer: the body, its ETag, and the problem when it said no."""

    status: int
    body: Any = None
    etag: str | None = None
    problem: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def field_errors(self) -> dict[str, str]:
        """A 422's errors by the field they name (the last part of a dotted name too)."""
        errors: dict[str, str] = {}
        for error in (self.problem or {}).get("errors") or []:
            name = str(error.get("field") or "")
            message = str(error.get("message") or "")
            errors.setdefault(name, message)
            errors.setdefault(name.rsplit(".", 1)[-1], message)
        return errors


def page_items(body: Any) -> list[Any]:
    """The items of a list answer, `{items, next_cursor}`."""
    return list(body["items"])


class ServiceUnreachable(Exception):
    def __init__(self, service: str):
        super().__init__(service)
        self.service = service


@dataclass
class Api:
    """One user's calls; `reception`, `workorders`, … name the base URLs."""

    http: httpx.AsyncClient
    token: str
    bases: dict[str, str] = field(default_factory=dict)

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        files: Any = None,
        idempotency_key: str | None = None,
        if_match: str | None = None,
    ) -> Answer:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if if_match:
            headers["If-Match"] = if_match
        try:
            response = await self.http.request(
                method,
                self.bases[service] + path,
                json=json,
                params={k: v for k, v in (params or {}).items() if v not in (None, "")},
                files=files,
                headers=headers,
            )
        except httpx.HTTPError as exc:
            log.warning("%s unreachable: %s %s: %r", service, method, path, exc)
            raise ServiceUnreachable(service) from exc
        answer = Answer(response.status_code, etag=response.headers.get("ETag"))
        content_type = response.headers.get("content-type", "")
        if "json" in content_type:
            answer.body = response.json()
        if not answer.ok:
            answer.problem = answer.body if isinstance(answer.body, dict) else {}
        return answer

    async def get(self, service: str, path: str, **params: Any) -> Answer:
        return await self.call(service, "GET", path, params=params)


async def gather(*calls: Awaitable[T]) -> list[T]:
    """A page's calls, in parallel."""
    return list(await asyncio.gather(*calls))
