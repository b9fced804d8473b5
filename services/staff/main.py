"""The staff app: pages for every member of staff, rendered on the server, calling the
four services' APIs with the signed-in user's token. It owns no business data."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.staff import live
from services.staff.api import ServiceUnreachable
from services.staff.config import Settings
from services.staff.pages.advisor import appointments as advisor_appointments
from services.staff.pages.advisor import at_risk as advisor_at_risk
from services.staff.pages.advisor import delivery as advisor_delivery
from services.staff.pages.advisor import desk as advisor_desk
from services.staff.pages.advisor import estimate as advisor_estimate
from services.staff.pages.advisor import intake as advisor_intake
from services.staff.pages.advisor import routes as advisor
from services.staff.pages.floor import cashier, foreman, orders_flow, qc, technician, technician_job
from services.staff.pages.floor import inspection as floor_inspection
from services.staff.pages.followup import complaints as followup_complaints
from services.staff.pages.followup import visits as followup_visits
from services.staff.pages.manager import dashboard as manager_dashboard
from services.staff.pages.manager import panels as manager_panels
from services.staff.pages.records import routes as records_pages
from services.staff.session import Cookies
from services.staff.signin import NotOffered, Provider, home_of
from services.staff.signin import router as signin_router
from services.staff.web import (
    HERE,
    RoleRefused,
    SignInNeeded,
    StaticAssets,
    cookies,
    environment,
    is_htmx,
    language,
    render,
    viewer,
)

log = logging.getLogger("staff")

# Scripts and styles come from this app only; pictures may be data: or blob: (a photo
# shown before it is uploaded, a QR code).
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, form_action: str):
        self.app = app
        self.csp = _CSP.replace("form-action 'self'", f"form-action 'self' {form_action}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", self.csp.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    logging.basicConfig(level=settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=40)
        async with httpx.AsyncClient(timeout=settings.api_timeout_seconds, limits=limits) as http:
            app.state.http = http
            app.state.provider = Provider(settings, http) if settings.oidc_issuer else None
            yield

    app = FastAPI(title="Staff app", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.cookies = Cookies(
        settings.session_secret, secure=settings.public_base_url.startswith("https://")
    )
    app.state.templates = environment()
    app.state.api_bases = {
        "reception": settings.reception_url.rstrip("/"),
        "workorders": settings.workorders_url.rstrip("/"),
        "followup": settings.followup_url.rstrip("/"),
        "records": settings.records_url.rstrip("/"),
    }
    app.add_middleware(SecurityHeaders, form_action=settings.oidc_issuer or "")
    # Pages and scripts compress to a third over the tablets' Wi-Fi (not the live streams).
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.mount("/static", StaticAssets(directory=HERE / "static"), name="static")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        seen = await viewer(request)
        return Response(status_code=303, headers={"Location": home_of(seen.session)})

    @app.get("/welcome", include_in_schema=False)
    async def welcome(request: Request) -> Response:
        seen = await viewer(request)
        return render(request, "welcome.html", lang=seen.lang, viewer=seen)

    @app.get("/font.ttf", include_in_schema=False)
    async def font() -> Response:
        # The same CJK face the PDFs embed: a tablet without Chinese fonts still reads.
        if not hasattr(app.state, "font"):
            from shared import pdf

            app.state.font = await asyncio.to_thread(pdf.font_ttf)
        return Response(
            app.state.font, media_type="font/ttf", headers={"Cache-Control": "max-age=604800"}
        )

    app.include_router(signin_router)
    advisor.install(app)
    advisor_desk.install(app)
    advisor_intake.install(app)
    advisor_estimate.install(app)
    advisor_at_risk.install(app)
    advisor_appointments.install(app)
    advisor_delivery.install(app)
    live.install(app)
    foreman.install(app)
    technician.install(app)
    technician_job.install(app)
    floor_inspection.install(app)
    qc.install(app)
    cashier.install(app)
    followup_visits.install(app)
    followup_complaints.install(app)
    manager_dashboard.install(app)
    manager_panels.install(app)
    records_pages.install(app)
    orders_flow.install(app)
    _install_errors(app)
    return app


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, exc: SignInNeeded) -> Response:
        from urllib.parse import quote

        url = f"/signin?next={quote(exc.next_url, safe='/')}" + (
            "&expired=1" if exc.expired else ""
        )
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": url})
        return Response(status_code=303, headers={"Location": url})

    def page(request: Request, status: int, message_key: str, **fmt: Any) -> Response:
        session = cookies(request).session(request)
        lang = language(request, session.sub if session else None)
        template = "error_fragment.html" if is_htmx(request) else "error.html"
        headers = (
            {"HX-Reswap": "innerHTML", "HX-Retarget": "#messages"} if is_htmx(request) else None
        )
        return render(
            request,
            template,
            lang=lang,
            status_code=status,
            headers=headers,
            message_key=message_key,
            fmt=fmt,
        )

    @app.exception_handler(RoleRefused)
    async def role_refused(request: Request, exc: RoleRefused) -> Response:
        return page(request, 403, "forbidden")

    @app.exception_handler(NotOffered)
    async def not_offered(request: Request, exc: NotOffered) -> Response:
        return page(request, 404, "not_found")

    @app.exception_handler(ServiceUnreachable)
    async def unreachable(request: Request, exc: ServiceUnreachable) -> Response:
        return page(request, 503, "unreachable", service=exc.service)
