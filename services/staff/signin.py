"""Signing in: OpenID Connect's authorization code flow with PKCE against the provider
whose JWKS the services trust, or, with no provider configured (development), a page
listing the demo staff of each role, whose tokens are minted as `make token` does."""

import asyncio
import time
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.staff.config import Settings
from services.staff.session import LANGUAGES, Session
from services.staff.web import (
    Form,
    RoleRefused,
    cookies,
    current_place,
    language,
    redirect,
    render,
    safe_next,
    settings_of,
)
from shared.auth import KNOWN_ROLES, issue_dev_token

router = APIRouter()
ROLE_ORDER = ("advisor", "foreman", "technician", "qc", "cashier", "followup_agent", "manager")


class NotOffered(Exception):
    """The development sign-in, asked for while a provider is configured."""


class Provider:
    """The OIDC provider's endpoints (discovery, read once) and its signing keys."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient):
        assert settings.oidc_issuer
        self.settings, self.http = settings, http
        self.issuer = settings.oidc_issuer.rstrip("/")
        self._config: dict[str, Any] | None = None
        self._jwks: jwt.PyJWKClient | None = None

    async def config(self) -> dict[str, Any]:
        if self._config is None:
            answer = await self.http.get(f"{self.issuer}/.well-known/openid-configuration")
            answer.raise_for_status()
            self._config = dict(answer.json())
            self._jwks = jwt.PyJWKClient(self._config["jwks_uri"], cache_keys=True)
        return self._config

    @property
    def redirect_uri(self) -> str:
        return self.settings.public_base_url.rstrip("/") + "/auth/callback"

    async def authorization_url(self, state: str, nonce: str, verifier: str) -> str:
        config = await self.config()
        return str(
            prepare_grant_uri(
                config["authorization_endpoint"],
                self.settings.oidc_client_id,
                "code",
                redirect_uri=self.redirect_uri,
                scope=self.settings.oidc_scope,
                state=state,
                nonce=nonce,
                code_challenge=create_s256_code_challenge(verifier),
                code_challenge_method="S256",
            )
        )

    async def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        config = await self.config()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.settings.oidc_client_id,
            "code_verifier": verifier,
        }
        if self.settings.oidc_client_secret:
            secret = (self.settings.oidc_client_id, self.settings.oidc_client_secret)
            answer = await self.http.post(config["token_endpoint"], data=form, auth=secret)
        else:
            answer = await self.http.post(config["token_endpoint"], data=form)
        answer.raise_for_status()
        return dict(answer.json())

    async def claims(self, token: str, *, audience: str | None) -> dict[str, Any]:
        await self.config()
        assert self._jwks is not None
        key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        return dict(
            jwt.decode(
                token,
                key.key,
                algorithms=["RS256", "ES256"],
                issuer=self.issuer,
                audience=audience,
                options={"require": ["exp", "sub"], "verify_aud": audience is not None},
            )
        )


def _session_from(token: str, claims: dict[str, Any]) -> Session:
    roles = claims.get("roles") or claims.get("realm_access", {}).get("roles", [])
    return Session(
        sub=str(claims["sub"]),
        name=str(claims.get("name") or claims.get("preferred_username") or claims["sub"]),
        roles=tuple(r for r in roles if r in KNOWN_ROLES),
        branch=str(claims.get("branch") or ""),
        token=token,
        expires_at=float(claims["exp"]),
    )


def home_of(session: Session) -> str:
    if session.has("advisor", "manager"):
        return "/advisor"
    if session.has("foreman"):
        return "/foreman"
    if session.has("technician"):
        return "/tech"
    if session.has("qc"):
        return "/qc"
    if session.has("cashier"):
        return "/cashier"
    if session.has("followup_agent"):
        return "/followup"
    if session.has("records_clerk"):
        return "/records"
    return "/welcome"


@router.get("/signin", include_in_schema=False)
async def sign_in(request: Request, next: str | None = None, expired: bool = False) -> Response:
    target = safe_next(next)
    provider: Provider | None = request.app.state.provider
    if provider is None:
        query = f"?next={quote(target, safe='/')}" + ("&expired=1" if expired else "")
        return Response(status_code=303, headers={"Location": "/signin/dev" + query})
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    url = await provider.authorization_url(state, nonce, verifier)
    response = Response(status_code=303, headers={"Location": url})
    cookies(request).set_oidc(
        response, {"state": state, "nonce": nonce, "verifier": verifier, "next": target}
    )
    return response


@router.get("/auth/callback", include_in_schema=False)
async def callback(request: Request, code: str = "", state: str = "") -> Response:
    provider: Provider | None = request.app.state.provider
    jar = cookies(request)
    pending = jar.oidc(request)
    if provider is None:
        raise NotOffered()
    if pending is None or not code or state != pending["state"]:
        return Response(status_code=303, headers={"Location": "/signin"})
    tokens = await provider.exchange(code, pending["verifier"])
    access = str(tokens["access_token"])
    claims = await provider.claims(access, audience=None)
    if "id_token" in tokens:
        id_claims = await provider.claims(
            str(tokens["id_token"]), audience=provider.settings.oidc_client_id
        )
        if id_claims.get("nonce") != pending["nonce"]:
            return Response(status_code=303, headers={"Location": "/signin"})
    session = _session_from(access, claims)
    response = Response(status_code=303, headers={"Location": _landing(pending["next"], session)})
    jar.clear_oidc(response)
    jar.set_session(response, session)
    return response


def _landing(next_url: str, session: Session) -> str:
    return next_url if next_url != "/" else home_of(session)


@router.get("/signin/dev", include_in_schema=False)
async def dev_page(request: Request, next: str | None = None, expired: bool = False) -> Response:
    settings = settings_of(request)
    if settings.oidc_issuer:
        raise NotOffered()
    lang = language(request, None)
    staff = sorted(
        settings.demo_staff,
        key=lambda s: ROLE_ORDER.index(s.role) if s.role in ROLE_ORDER else 99,
    )
    return render(
        request,
        "signin_dev.html",
        lang=lang,
        staff=staff,
        next=safe_next(next),
        expired=expired,
    )


@router.post("/signin/dev", include_in_schema=False)
async def dev_sign_in(request: Request, form: Form) -> Response:
    settings = settings_of(request)
    if settings.oidc_issuer:
        raise NotOffered()
    member = next((s for s in settings.demo_staff if s.sub == form.get("sub")), None)
    if member is None:
        raise RoleRefused()
    ttl = 12 * 3600
    token = issue_dev_token(
        settings.jwt_secret,
        role=member.role,
        branch=member.branch,
        sub=member.sub,
        name=member.name,
        ttl=ttl,
    )
    session = Session(
        sub=member.sub,
        name=member.name,
        roles=(member.role,),
        branch=member.branch,
        token=token,
        expires_at=time.time() + ttl,
    )
    response = redirect(_landing(safe_next(form.get("next")), session), request)
    cookies(request).set_session(response, session)
    return response


@router.post("/signout", include_in_schema=False)
async def sign_out(request: Request, form: Form) -> Response:
    response = redirect("/signin", request)
    cookies(request).clear_session(response)
    return response


@router.post("/language", include_in_schema=False)
async def choose_language(request: Request, form: Form) -> Response:
    lang = form.get("lang", "")
    if lang not in LANGUAGES:
        lang = settings_of(request).default_language
    jar = cookies(request)
    session = jar.session(request)
    back = safe_next(form.get("next")) if form.get("next") else current_place(request)
    response = redirect(back, request)
    jar.set_language(request, response, session.sub if session else "_", lang)
    return response
