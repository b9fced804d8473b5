"""A stand-in OpenID Connect provider on loopback, for tests and trying the sign-in:
discovery document, JWKS with an RSA key, an authorization endpoint with a page to pick a
user, and a token endpoint that checks the PKCE verifier (S256), the redirect URI and that
a code is used once. Tokens carry `roles` and `branch` as the services read them.

python -m tools.oidc_provider --port 8090 [--ttl 3600]"""

import argparse
import base64
import hashlib
import html
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

USERS = {
    "advisor-oidc": {"name": "陈晓 (OIDC)", "roles": ["advisor"], "branch": "BR01"},
    "tech-oidc": {"name": "林峰 (OIDC)", "roles": ["technician"], "branch": "BR01"},
}


def create_app(issuer: str, token_ttl: int = 3600) -> FastAPI:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = secrets.token_hex(8)
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    public.update({"kid": kid, "use": "sig", "alg": "RS256"})
    codes: dict[str, dict[str, Any]] = {}
    app = FastAPI()
    app.state.token_requests = 0

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code"],
        }

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return {"keys": [public]}

    @app.get("/authorize", response_class=HTMLResponse)
    async def authorize(request: Request) -> HTMLResponse:
        q = request.query_params
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256":
            return HTMLResponse("unsupported request", status_code=400)
        if not q.get("code_challenge") or not q.get("redirect_uri") or not q.get("client_id"):
            return HTMLResponse("missing parameters", status_code=400)
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(str(v))}">'
            for k, v in q.items()
            if k in ("client_id", "redirect_uri", "state", "nonce", "code_challenge")
        )
        buttons = "".join(
            f'<button name="sub" value="{sub}" style="min-height:48px">'
            f"{html.escape(str(u['name']))}</button>"
            for sub, u in USERS.items()
        )
        return HTMLResponse(
            f'<!doctype html><html lang="en"><title>Stand-in provider</title>'
            f'<main><h1>Stand-in identity provider</h1><form method="post">{hidden}{buttons}'
            "</form></main></html>"
        )

    @app.post("/authorize")
    async def approve(
        sub: str = Form(),
        client_id: str = Form(),
        redirect_uri: str = Form(),
        code_challenge: str = Form(),
        state: str = Form(""),
        nonce: str = Form(""),
    ) -> RedirectResponse:
        code = secrets.token_urlsafe(24)
        codes[code] = {
            "sub": sub,
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "challenge": code_challenge,
            "nonce": nonce,
            "at": time.time(),
        }
        return RedirectResponse(
            f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=303
        )

    def _error(what: str) -> JSONResponse:
        return JSONResponse({"error": what}, status_code=400)

    @app.post("/token")
    async def token(
        grant_type: str = Form(),
        code: str = Form(),
        redirect_uri: str = Form(),
        client_id: str = Form(),
        code_verifier: str = Form(""),
    ) -> JSONResponse:
        app.state.token_requests += 1
        grant = codes.pop(code, None)  # a code is good once
        if grant_type != "authorization_code" or grant is None:
            return _error("invalid_grant")
        if time.time() - grant["at"] > 60 or grant["redirect_uri"] != redirect_uri:
            return _error("invalid_grant")
        if grant["client_id"] != client_id:
            return _error("invalid_client")
        digest = hashlib.sha256(code_verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            return _error("invalid_grant")  # PKCE: not the verifier of this challenge
        user = USERS[grant["sub"]]
        now = int(time.time())
        common = {"iss": issuer, "sub": grant["sub"], "iat": now, "exp": now + token_ttl}
        access = {**common, "name": user["name"], "roles": user["roles"], "branch": user["branch"]}
        ident = {**common, "aud": client_id, "nonce": grant["nonce"], "name": user["name"]}
        headers = {"kid": kid}
        return JSONResponse(
            {
                "access_token": jwt.encode(access, key, algorithm="RS256", headers=headers),
                "id_token": jwt.encode(ident, key, algorithm="RS256", headers=headers),
                "token_type": "Bearer",
                "expires_in": token_ttl,
            }
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--ttl", type=int, default=3600, help="token lifetime, seconds")
    args = parser.parse_args()
    issuer = f"http://127.0.0.1:{args.port}"
    uvicorn.run(create_app(issuer, args.ttl), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
