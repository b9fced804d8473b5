"""The signed-in user's session, a signed HttpOnly SameSite cookie; the language chosen
per user; the CSRF token forms carry."""

import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "staff_session"
LANG_COOKIE = "staff_lang"
CSRF_COOKIE = "staff_csrf"
OIDC_COOKIE = "staff_oidc"
LANGUAGES = ("zh-CN", "en")
_YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class Session:
    sub: str
    name: str
    roles: tuple[str, ...]
    branch: str
    token: str
    expires_at: float

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


class Cookies:
    """Reads and writes the app's cookies, each signed with its own salt."""

    def __init__(self, secret: str, secure: bool):
        self.secure = secure
        self._session = URLSafeTimedSerializer(secret, salt="staff-session")
        self._lang = URLSafeTimedSerializer(secret, salt="staff-lang")
        self._csrf = URLSafeTimedSerializer(secret, salt="staff-csrf")
        self._oidc = URLSafeTimedSerializer(secret, salt="staff-oidc")

    def _set(self, response: Response, name: str, value: str, max_age: int, **kw: Any) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite=kw.get("samesite", "lax"),
            secure=self.secure,
            path="/",
        )

    # --- session ---------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = self._session.loads(raw)
        except BadSignature:
            return None
        return Session(
            sub=data["sub"],
            name=data["name"],
            roles=tuple(data["roles"]),
            branch=data["branch"],
            token=data["token"],
            expires_at=float(data["exp"]),
        )

    def set_session(self, response: Response, session: Session) -> None:
        value = self._session.dumps(
            {
                "sub": session.sub,
                "name": session.name,
                "roles": list(session.roles),
                "branch": session.branch,
                "token": session.token,
                "exp": session.expires_at,
            }
        )
        # The cookie outlives the token a little, so an expired session is recognised as
        # one (and the user sent back to where they were) rather than as a stranger.
        self._set(response, SESSION_COOKIE, value, int(session.expires_at - time.time()) + 86400)

    def clear_session(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/")

    # --- language, remembered per user on this device -----------------------------------

    def languages(self, request: Request) -> dict[str, str]:
        raw = request.cookies.get(LANG_COOKIE)
        if not raw:
            return {}
        try:
            data = self._lang.loads(raw)
        except BadSignature:
            return {}
        return {str(k): str(v) for k, v in data.items() if v in LANGUAGES}

    def set_language(self, request: Request, response: Response, who: str, lang: str) -> None:
        chosen = self.languages(request)
        chosen.pop(who, None)
        chosen[who] = lang
        kept = dict(list(chosen.items())[-20:])  # a shared tablet: its last 20 users
        self._set(response, LANG_COOKIE, self._lang.dumps(kept), _YEAR)

    # --- CSRF: a signed random value in a cookie that every form repeats ---------------

    def csrf(self, request: Request) -> str | None:
        raw = request.cookies.get(CSRF_COOKIE)
        if not raw:
            return None
        try:
            return str(self._csrf.loads(raw))
        except BadSignature:
            return None

    def set_csrf(self, response: Response, value: str) -> None:
        self._set(response, CSRF_COOKIE, self._csrf.dumps(value), _YEAR)

    # --- OIDC: state, nonce, PKCE verifier and the page to return to, for one sign-in ---

    def oidc(self, request: Request) -> dict[str, str] | None:
        raw = request.cookies.get(OIDC_COOKIE)
        if not raw:
            return None
        try:
            return dict(self._oidc.loads(raw, max_age=600))
        except BadSignature:
            return None

    def set_oidc(self, response: Response, data: dict[str, str]) -> None:
        self._set(response, OIDC_COOKIE, self._oidc.dumps(data), 600)

    def clear_oidc(self, response: Response) -> None:
        response.delete_cookie(OIDC_COOKIE, path="/")
