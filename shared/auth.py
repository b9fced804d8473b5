"""Bearer JWT authentication: HS256 with a shared secret in development, RS256 from a
JWKS URL (Keycloak or any OIDC provider) in production."""

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict

from shared.problems import Forbidden, Unauthorized
from shared.settings import ServiceSettings


class Role(StrEnum):
    advisor = "advisor"
    foreman = "foreman"
    technician = "technician"
    qc = "qc"
    cashier = "cashier"
    followup_agent = "followup_agent"
    records_clerk = "records_clerk"
    manager = "manager"
    screen = "screen"
    erp = "erp"
    admin = "admin"


KNOWN_ROLES = frozenset(r.value for r in Role)
# A registered status-board screen's token (workorders): no JWT, it opens only the board.
SCREEN_TOKEN_PREFIX = "scr_"


class User(BaseModel):
    model_config = ConfigDict(frozen=True)  # one verified token's user serves many requests

    id: str
    name: str
    roles: frozenset[Role]
    branch: str

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))


# Verified tokens by their exact text: a tablet sends the same token with every request,
# and checking its signature again cost as much as the rest of authentication. An entry
# is used only until the token's `exp` and the newest this many are kept.
VERIFIED_TOKENS = 1024


class Authenticator:
    def __init__(self, settings: ServiceSettings, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.clock = clock
        self._verified: OrderedDict[str, tuple[float, User]] = OrderedDict()
        self._jwks = (
            jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True)
            if settings.jwt_jwks_url
            else None
        )

    async def _key(self, token: str) -> Any:
        if self._jwks is None:
            return self.settings.jwt_secret
        # PyJWKClient fetches over blocking I/O; its cache makes this rare.
        signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
        return signing_key.key

    async def authenticate(self, token: str) -> User:
        if token.startswith(SCREEN_TOKEN_PREFIX):
            raise Unauthorized("a registered screen's token opens only the status board")
        now = self.clock()
        verified = self._verified.get(token)
        if verified is not None:
            expires, user = verified
            if now < expires:
                self._verified.move_to_end(token)
                return user
            del self._verified[token]
        user, expires = await self._verify(token)
        if expires <= now:
            raise Unauthorized("invalid token: Signature has expired")
        self._verified[token] = (expires, user)
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return user

    async def _verify(self, token: str) -> tuple[User, float]:
        try:
            key = await self._key(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256", "ES256"] if self._jwks else self.settings.jwt_algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "sub"], "verify_aud": bool(self.settings.jwt_audience)},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        roles = claims.get("roles") or claims.get("realm_access", {}).get("roles", [])
        branch = claims.get("branch")
        if not isinstance(branch, str) or not branch:
            raise Unauthorized("token carries no branch")
        user = User(
            id=str(claims["sub"]),
            name=str(claims.get("name") or claims.get("preferred_username") or claims["sub"]),
            roles=frozenset(Role(r) for r in roles if r in KNOWN_ROLES),
            branch=branch,
        )
        return user, float(claims["exp"])


_bearer = HTTPBearer(auto_error=False)


BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def current_user(request: Request, credentials: BearerCredentials) -> User:
    if credentials is None:
        raise Unauthorized("missing bearer token")
    authenticator: Authenticator = request.app.state.authenticator
    user = await authenticator.authenticate(credentials.credentials)
    request.state.user = user
    return user


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, User]]:
    """A dependency that lets in only users holding one of `roles`."""
    allowed = frozenset(roles)

    # `current_user` called, not depended on: one dependency less to solve per request.
    async def check(request: Request, credentials: BearerCredentials) -> User:
        user = await current_user(request, credentials)
        if not user.roles & allowed:
            raise Forbidden(f"needs one of the roles: {', '.join(sorted(allowed))}")
        return user

    check.allowed_roles = allowed  # type: ignore[attr-defined]  # shown in the OpenAPI
    return check


def issue_dev_token(
    secret: str,
    *,
    role: str | list[str],
    branch: str = "BR01",
    sub: str | None = None,
    name: str | None = None,
    ttl: int = 12 * 3600,
) -> str:
    roles = [role] if isinstance(role, str) else role
    now = int(time.time())
    claims = {
        "sub": sub or f"dev-{roles[0]}-{uuid.uuid4().hex[:6]}",
        "name": name or f"Dev {roles[0]}",
        "roles": roles,
        "branch": branch,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, secret, algorithm="HS256")
