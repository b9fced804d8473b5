"""Signing in to the staff app through OpenID Connect (authorization code with PKCE)
against a stand-in provider on loopback, with reception configured to trust the
provider's JWKS: the user lands on the page they asked for, reception accepts their
token, the development sign-in is refused, and a technician is refused an advisor page."""

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.harness import ServiceProcess, Stack, free_port
from tests.staff_pages import TABLET_LANDSCAPE, launch, require_chromium, shoot, staff_process
from tools.processes import ROOT
from tools.processes import _wait_port as wait_port

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    require_chromium()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.oidc_provider", "--port", str(port)], cwd=ROOT
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        wait_port(port, 20, process)
        yield issuer
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def running(
    provider: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, ServiceProcess]]:
    root = tmp_path_factory.mktemp("staff-oidc")
    trust = {"{SERVICE}_JWT_JWKS_URL": f"{provider}/jwks", "{SERVICE}_JWT_ISSUER": provider}
    stack = Stack(root, services=("reception",), extra_env=trust).start()
    try:
        staff = staff_process(stack, root, {"STAFF_OIDC_ISSUER": provider})
        try:
            yield stack, staff
        finally:
            staff.stop()
    finally:
        stack.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(running: Any) -> AsyncIterator[Any]:
    async for chromium in launch():
        yield chromium


async def test_signing_in_through_the_provider_lands_on_the_page_asked_for(
    running: tuple[Stack, ServiceProcess], provider: str, browser: Any
) -> None:
    from playwright.async_api import expect

    _, staff = running
    context = await browser.new_context(viewport=TABLET_LANDSCAPE)
    try:
        page = await context.new_page()
        await page.goto(f"{staff.url}/advisor?day=2026-12-24")
        await page.wait_for_url(lambda url: url.startswith(f"{provider}/authorize?"))
        query = httpx.URL(page.url).params
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
        assert query["redirect_uri"] == f"{staff.url}/auth/callback" and query["nonce"]
        await page.get_by_role("button", name="陈晓 (OIDC)").click()
        await page.wait_for_url(lambda url: url == f"{staff.url}/advisor?day=2026-12-24")
        await expect(page.get_by_test_id("user")).to_contain_text("陈晓 (OIDC)")
        # Reception took the provider's RS256 token: the day's list, not a refusal.
        await expect(page.get_by_test_id("empty")).to_be_visible()
        assert await page.get_by_test_id("problem").count() == 0
        session = next(c for c in await context.cookies() if c["name"] == "staff_session")
        assert session["httpOnly"] and session["sameSite"] == "Lax"
        await shoot(page, "staff-05-oidc-signed-in")
    finally:
        await context.close()


async def test_the_development_sign_in_is_refused_with_a_provider(
    running: tuple[Stack, ServiceProcess],
) -> None:
    _, staff = running
    async with httpx.AsyncClient(base_url=staff.url) as client:
        assert (await client.get("/signin/dev")).status_code == 404
        assert (await client.post("/signin/dev", data={"sub": "advisor-zhao"})).status_code in (
            403,
            404,
        )


async def test_a_code_is_refused_without_its_pkce_verifier(provider: str) -> None:
    """The stand-in checks PKCE as a provider must: the staff app's exchange above passed
    it, and a code presented with another verifier gets nothing."""
    async with httpx.AsyncClient(base_url=provider, follow_redirects=False) as client:
        approved = await client.post(
            "/authorize",
            data={
                "sub": "advisor-oidc",
                "client_id": "staff",
                "redirect_uri": "http://127.0.0.1:1/auth/callback",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "state": "s",
                "nonce": "n",
            },
        )
        code = httpx.URL(approved.headers["location"]).params["code"]
        refused = await client.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "http://127.0.0.1:1/auth/callback",
                "client_id": "staff",
                "code_verifier": "not-the-verifier",
            },
        )
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


async def test_a_technician_signed_in_through_the_provider_is_refused_advisor_pages(
    running: tuple[Stack, ServiceProcess], provider: str, browser: Any
) -> None:
    from playwright.async_api import expect

    _, staff = running
    context = await browser.new_context(viewport=TABLET_LANDSCAPE)
    try:
        page = await context.new_page()
        await page.goto(f"{staff.url}/advisor")
        await page.get_by_role("button", name="林峰 (OIDC)").click()
        await expect(page.locator("h1")).to_have_text("您的角色无权打开此页面。")
    finally:
        await context.close()


async def test_an_expired_session_signs_in_again_at_the_provider_and_returns(
    running: tuple[Stack, ServiceProcess], provider: str, browser: Any
) -> None:
    """Past its token's expiry the session sends the user through the provider again and
    back to the page they asked for."""
    from itsdangerous import URLSafeTimedSerializer

    from services.staff.config import Settings
    from services.staff.session import SESSION_COOKIE

    _, staff = running
    context = await browser.new_context(viewport=TABLET_LANDSCAPE)
    try:
        page = await context.new_page()
        await page.goto(f"{staff.url}/advisor/desk")
        await page.get_by_role("button", name="陈晓 (OIDC)").click()
        await page.wait_for_url(f"{staff.url}/advisor/desk")
        cookie = next(c for c in await context.cookies() if c["name"] == SESSION_COOKIE)
        signer = URLSafeTimedSerializer(Settings().session_secret, salt="staff-session")
        data = signer.loads(cookie["value"])
        data["exp"] = time.time() - 1  # what the clock does once the token's hour is over
        await context.add_cookies([{**cookie, "value": signer.dumps(data)}])
        await page.goto(f"{staff.url}/advisor/at-risk")
        await page.wait_for_url(lambda url: url.startswith(f"{provider}/authorize?"))
        await page.get_by_role("button", name="陈晓 (OIDC)").click()
        await page.wait_for_url(f"{staff.url}/advisor/at-risk")
    finally:
        await context.close()
