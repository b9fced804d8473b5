"""Bearer JWT authentication: HS256 with a shared secret in development, RS256 from a
JWKS URL (Keycloak or any OIDC provider) in production."""

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

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
    id: str
    name: str
    roles: frozenset[Role]
    branch: str

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))


class Authenticator:
    def __init__(self, settings: ServiceSettings):
        self.settings = settings
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
        return User(
            id=str(claims["sub"]),
            name=str(claims.get("name") or claims.get("preferred_username") or claims["sub"]),
            roles=frozenset(Role(r) for r in roles if r in KNOWN_ROLES),
            branch=branch,
        )


_bearer = HTTPBearer(auto_error=False)


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    if credentials is None:
        raise Unauthorized("missing bearer token")
    authenticator: Authenticator = request.app.state.authenticator
    user = await authenticator.authenticate(credentials.credentials)
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, User]]:
    """A dependency that lets in only users holding one of `roles`."""
    allowed = frozenset(roles)

    async def check(user: CurrentUser) -> User:
        if not user.roles & allowed:
            raise Forbidden(f"needs one of the roles: {', '.join(sorted(allowed))}")
        return user

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
