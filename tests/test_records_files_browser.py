"""Stored files in a real headless Chromium (Debian's package, driven by Playwright) from
records as a real process: a JPEG with a page behind it, uploaded under a page's name, is
shown as a picture and its script never runs, opened directly or framed by a page."""

import asyncio
import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.harness import Stack, auth, backend, require_postgres
from tests.test_records_files import PNG

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() == "true"
# A real (1×1 PNG-sized) image header, then a page whose script marks that it ran.
SCRIPT = b"<html><body><script>document.title='ran';parent.postMessage('ran','*')</script></html>"
POLYGLOT = PNG + SCRIPT


def _require() -> None:
    if shutil.which(CHROMIUM) is None:
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing (CI installs Debian's chromium package)")
        pytest.skip(f"{CHROMIUM} not installed")
    if backend() == "postgres":
        require_postgres()


async def test_a_picture_with_a_page_behind_it_never_runs_in_a_browser(tmp_path: Path):
    _require()
    from playwright.async_api import async_playwright

    stack = await asyncio.to_thread(Stack(tmp_path, services=("records",)).start)
    try:
        url = stack.url("records")
        headers = auth("advisor")
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            r = await client.post(
                "/files", headers=headers, files={"file": ("offer.html", POLYGLOT, "text/html")}
            )
            assert r.status_code == 201, r.text
            assert r.json()["media_type"] == "image/png"
            content = f"{url}/files/{r.json()['id']}/content"
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM)
            try:
                context = await browser.new_context(extra_http_headers=headers)
                page = await context.new_page()
                answer = await page.goto(content)
                assert answer is not None and answer.status == 200
                assert answer.headers["content-type"] == "image/png"
                # Chromium shows an image document: one <img>, no script of the file's.
                assert await page.evaluate("document.images.length") == 1
                assert await page.evaluate("document.title") != "ran"
                assert await page.evaluate("document.scripts.length") == 0

                # Framed by a page of the same origin, with the frame allowed scripts: the
                # file's own sandbox still stops them.
                await page.route(
                    f"{url}/frame",
                    lambda route: route.fulfill(
                        content_type="text/html",
                        body=(
                            "<script>window.got=[];addEventListener('message',"
                            "e=>window.got.push(e.data))</script>"
                            f'<iframe src="{content}"></iframe>'
                        ),
                    ),
                )
                await page.goto(f"{url}/frame")
                frame = page.frames[1]
                await frame.wait_for_load_state()
                assert await page.evaluate("window.got") == []
                assert await frame.evaluate("document.scripts.length") == 0
            finally:
                await browser.close()
    finally:
        await asyncio.to_thread(stack.stop)
