"""Rendering pages and fragments, and who may open them: the signed-in user from the
session cookie, the language they chose, the CSRF check on every form."""

import functools
import hashlib
import secrets
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.types import Scope

from services.staff.api import Api
from services.staff.config import Settings
from services.staff.i18n import labels
from services.staff.session import LANGUAGES, Cookies, Session

HERE = Path(__file__).resolve().parent


def environment() -> Environment:
    folders = [HERE / "templates", *sorted(HERE.glob("pages/*/templates"))]
    env = Environment(
        loader=FileSystemLoader([str(f) for f in folders]),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = static_url
    return env


@functools.cache
def static_url(name: str) -> str:
    """An asset's address carrying its content's hash: the browser keeps it for a year
    (`StaticAssets`), and a changed file is a new address."""
    digest = hashlib.sha256((HERE / "static" / name).read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"


class StaticAssets(StaticFiles):
    """The pinned assets: kept for a year when asked for by their hashed address."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200 and "v" in parse_qs(scope["query_string"].decode()):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


class SignInNeeded(Exception):
    def __init__(self, next_url: str, expired: bool):
        super().__init__(next_url)
        self.next_url, self.expired = next_url, expired


class RoleRefused(Exception):
    pass


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def safe_next(value: str | None) -> str:
    """Only a path of this app: never an address elsewhere (an open redirect)."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//"):
        return "/"
    return value


def current_place(request: Request) -> str:
    """The page the user was on: for htmx, the page the fragment belongs to."""
    if is_htmx(request):
        current = request.headers.get("HX-Current-URL", "")
        parts = urlsplit(current)
        return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
    if request.method == "GET":
        query = request.url.query
        return safe_next(request.url.path + (f"?{query}" if query else ""))
    referer = urlsplit(request.headers.get("referer", ""))
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))


def cookies(request: Request) -> Cookies:
    jar: Cookies = request.app.state.cookies
    return jar


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def language(request: Request, who: str | None) -> str:
    chosen = cookies(request).languages(request)
    lang = chosen.get(who or "_") or chosen.get("_")
    if lang in LANGUAGES:
        return lang
    return settings_of(request).default_language


@dataclass
class Viewer:
    """The signed-in user as a page sees them."""

    session: Session
    lang: str
    api: Api
    tz: ZoneInfo

    @property
    def t(self) -> dict[str, str]:
        return labels(self.lang)

    def today(self) -> date:
        return datetime.now(self.tz).date()

    def local(self, value: str | datetime | None) -> datetime | None:
        if value is None:
            return None
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return moment.astimezone(self.tz)


async def viewer(request: Request) -> Viewer:
    session = cookies(request).session(request)
    if session is None or session.expired:
        raise SignInNeeded(current_place(request), expired=session is not None)
    settings = settings_of(request)
    api = Api(request.app.state.http, session.token, request.app.state.api_bases)
    return Viewer(session, language(request, session.sub), api, ZoneInfo(settings.time_zone))


def needs(*roles: str) -> Callable[..., Coroutine[Any, Any, Viewer]]:
    async def check(request: Request) -> Viewer:
        seen = await viewer(request)
        if not seen.session.has(*roles):
            raise RoleRefused()
        return seen

    return check


async def checked_form(request: Request) -> dict[str, str]:
    """The form's fields, once its CSRF token matched the cookie's."""
    form = await request.form()
    sent = request.headers.get("X-CSRF-Token") or str(form.get("csrf") or "")
    expected = cookies(request).csrf(request)
    if not expected or sent != expected:
        raise RoleRefused()
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


Form = Annotated[dict[str, str], Depends(checked_form)]


def render(
    request: Request,
    template: str,
    *,
    lang: str,
    viewer: Viewer | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page (or, for htmx, a fragment) with the words, the user and a CSRF token."""
    jar = cookies(request)
    csrf = jar.csrf(request)
    fresh = csrf is None
    if fresh:
        csrf = secrets.token_urlsafe(24)
    env: Environment = request.app.state.templates
    html = env.get_template(template).render(
        request=request,
        t=labels(lang),
        lang=lang,
        viewer=viewer,
        user=viewer.session if viewer else None,
        csrf=csrf,
        new_key=lambda: uuid.uuid4().hex,
        path=request.url.path,
        quote=quote,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    if fresh:
        assert csrf is not None
        jar.set_csrf(response, csrf)
    return response


def redirect(url: str, request: Request) -> Response:
    """A 303 for a plain form, an HX-Redirect for htmx (which would swap the page in)."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return Response(status_code=303, headers={"Location": url})
