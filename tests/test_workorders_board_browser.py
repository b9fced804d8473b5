"""The status board in a real headless Chromium (Debian's package, driven by Playwright)
against workorders as a real process: the page renders, and a status change made through
the API shows on the screen within a second."""

import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import pytest_asyncio
from nats.js.errors import NotFoundError

from shared.events import encode
from tests.harness import Stack, auth, backend, eventually, postgres_available, token
from tests.test_workorders_api import approved_now, labour

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() == "true"
FOREMAN = auth("foreman")
TECH = {"Authorization": f"Bearer {token('technician', sub='tech-board')}"}
SCREEN_TOKEN = token("screen")


def _require_chromium() -> None:
    if shutil.which(CHROMIUM) is None:
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing (CI installs Debian's chromium package)")
        pytest.skip(f"{CHROMIUM} not installed")


def _start(root: Path, env: dict[str, str] | None = None) -> Stack:
    return Stack(root, services=("workorders",), extra_env=env).start()


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Stack]]:
    """Two workorders processes, started side by side: one as shipped, one whose streams
    end every half second (600 s in production), where the page must resume by itself."""
    _require_chromium()
    if backend() == "postgres" and not postgres_available():
        if IN_CI:
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is unreachable (CI requires it)")
        pytest.skip("PostgreSQL not reachable")
    restarting_env = {
        "WORKORDERS_BOARD_STREAM_MAX_SECONDS": "0.5",
        "WORKORDERS_BOARD_HEARTBEAT_SECONDS": "0.25",
    }
    with ThreadPoolExecutor(2) as pool:
        shipped = pool.submit(_start, tmp_path_factory.mktemp("board"))
        restarting = pool.submit(_start, tmp_path_factory.mktemp("board-restarts"), restarting_env)
        started = [f.result() for f in (shipped, restarting)]
    try:
        yield started[0], started[1]
    finally:
        for stack in started:
            stack.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(stacks: tuple[Stack, Stack]) -> AsyncIterator[Any]:
    """One headless Chromium for the module; each test opens its own pages."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


async def _open_order(stack: Stack, client: httpx.AsyncClient) -> dict[str, Any]:
    event = approved_now(lines=[labour("BRK-010", "1.5", "450")])
    envelope = event.to_envelope(subject=str(event.estimate_id))
    nc = await nats.connect(stack.nats.url)
    try:
        js = nc.jetstream()

        async def stream_ready() -> bool:
            try:
                await js.stream_info("RECEPTION")
            except NotFoundError:
                return False
            return True

        await eventually(stream_ready, what="reception stream created by workorders")
        await js.publish(envelope.type, encode(envelope), headers={"Nats-Msg-Id": envelope.id})
    finally:
        await nc.close()

    async def opened() -> dict[str, Any] | None:
        r = await client.get(
            "/repair-orders", params={"intake_id": str(event.intake_id)}, headers=FOREMAN
        )
        items = r.json()["items"]
        if not items or items[0]["status"] != "open":
            return None
        detail = await client.get(f"/repair-orders/{items[0]['id']}", headers=FOREMAN)
        return dict(detail.json())

    return await eventually(opened, what="repair order opened from consent")


async def test_the_board_renders_and_shows_a_status_change_within_a_second(
    stacks: tuple[Stack, Stack], browser: Any
) -> None:
    stack = stacks[0]
    base = stack.url("workorders")
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        order = await _open_order(stack, client)
        row = f'tr[data-order="{order["id"]}"]'
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.set_viewport_size({"width": 1920, "height": 1080})
            await page.goto(f"{base}/board?access_token={SCREEN_TOKEN}")
            await page.wait_for_selector(f'{row}[data-status="open"]', timeout=5000)
            assert await page.inner_text("h1") == "车间看板"
            text = await page.inner_text(row)
            assert "沪A12345" in text and "advisor-zhao" in text and "待派工" in text
            await page.wait_for_selector("#status:not(.offline)", timeout=5000)
            # The page brings its own CJK font: a TV without Chinese fonts shows the labels.
            await page.wait_for_function("document.fonts.check('32px BoardSans', '维修中')")

            job = order["jobs"][0]
            r = await client.put(
                f"/jobs/{job['id']}/assignment",
                headers={**FOREMAN, "If-Match": f'"{job["version"]}"'},
                json={"technician_id": "tech-board", "bay": "B1"},
            )
            assert r.status_code == 200, r.text
            await page.wait_for_function(
                f"document.querySelector('{row}')?.innerText.includes('tech-board')",
                timeout=5000,
            )

            r = await client.post(f"/jobs/{job['id']}/clock-on", headers=TECH)
            assert r.status_code == 201, r.text
            answered = time.monotonic()
            await page.wait_for_selector(f'{row}[data-status="in_progress"]', timeout=1000)
            assert time.monotonic() - answered < 1.0
            assert "维修中" in await page.inner_text(row)

            # The lounge in English: masked plate, no names.
            lounge = await context.new_page()
            await lounge.set_viewport_size({"width": 1920, "height": 1080})
            await lounge.goto(f"{base}/board/lounge?access_token={SCREEN_TOKEN}&lang=en")
            await lounge.wait_for_selector(f'{row}[data-status="in_progress"]', timeout=5000)
            text = await lounge.inner_text(row)
            assert "沪A***45" in text and "In repair" in text
            body = await lounge.inner_text("body")
            assert "advisor-zhao" not in body and "tech-board" not in body

            r = await client.post(
                f"/jobs/{job['id']}/clock-off", headers=TECH, json={"reason": "waiting_parts"}
            )
            assert r.status_code == 200, r.text
            await lounge.wait_for_selector(f'{row}[data-status="waiting_parts"]', timeout=1000)
            await page.wait_for_selector(f'{row}[data-status="waiting_parts"]', timeout=1000)
            if os.environ.get("WORKSHOP_BOARD_SCREENSHOT"):
                await page.screenshot(path=os.environ["WORKSHOP_BOARD_SCREENSHOT"])
        finally:
            await context.close()


async def test_the_board_keeps_updating_across_stream_restarts(
    stacks: tuple[Stack, Stack], browser: Any
) -> None:
    """A stream that ends (a server's limit, a proxy, a network blip) is resumed by the
    browser with Last-Event-ID; every change still reaches the page, with no reload."""
    stack = stacks[1]
    base = stack.url("workorders")
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        order = await _open_order(stack, client)
        row = f'tr[data-order="{order["id"]}"]'
        job = order["jobs"][0]
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.goto(f"{base}/board?access_token={SCREEN_TOKEN}")
            await page.wait_for_selector(f'{row}[data-status="open"]', timeout=5000)
            await page.evaluate("window.loaded = true")
            r = await client.put(
                f"/jobs/{job['id']}/assignment",
                headers={**FOREMAN, "If-Match": f'"{job["version"]}"'},
                json={"technician_id": "tech-board", "bay": "B1"},
            )
            assert r.status_code == 200, r.text
            for status, reason in [
                ("in_progress", None),
                ("waiting_parts", "waiting_parts"),
                ("in_progress", None),
            ]:
                # Each change after at least one more restart of the stream.
                connections = await page.evaluate("window.boardConnections")
                await page.wait_for_function(
                    f"window.boardConnections > {connections}", timeout=10000
                )
                if reason is None:
                    r = await client.post(f"/jobs/{job['id']}/clock-on", headers=TECH)
                else:
                    r = await client.post(
                        f"/jobs/{job['id']}/clock-off", headers=TECH, json={"reason": reason}
                    )
                assert r.is_success, r.text
                await page.wait_for_selector(f'{row}[data-status="{status}"]', timeout=5000)
            assert await page.evaluate("window.loaded") is True  # never reloaded
        finally:
            await context.close()


async def test_a_revoked_screen_says_so_and_stops_reconnecting(
    stacks: tuple[Stack, Stack], browser: Any
) -> None:
    """The foreman withdraws a registered TV: its open page shows, full screen and in its
    language, that its access was withdrawn, shows no cars any more and closes its stream
    (the browser would otherwise retry it); loaded again it says the same."""
    stack = stacks[0]
    base = stack.url("workorders")
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        order = await _open_order(stack, client)
        row = f'tr[data-order="{order["id"]}"]'
        r = await client.post(
            "/board/screens", json={"name": "Workshop TV 3", "variant": "board"}, headers=FOREMAN
        )
        assert r.status_code == 201, r.text
        screen = r.json()
        context = await browser.new_context()
        try:
            page = await context.new_page()
            await page.set_viewport_size({"width": 1920, "height": 1080})
            await page.goto(base + screen["url"])
            await page.wait_for_selector(row, timeout=5000)
            await page.wait_for_function("window.boardConnections >= 1", timeout=5000)
            assert await page.is_hidden("#withdrawn")

            r = await client.delete(f"/board/screens/{screen['id']}", headers=FOREMAN)
            assert r.status_code == 204, r.text
            await page.wait_for_selector("#withdrawn", state="visible", timeout=5000)
            assert await page.inner_text("#withdrawn") == "此屏幕的访问权限已被撤销"
            assert await page.query_selector(row) is None
            # Closed by the page: EventSource.CLOSED, where a dropped stream is CONNECTING.
            assert await page.evaluate("window.boardStream.readyState") == 2

            again = await context.new_page()
            response = await again.goto(base + screen["url"].replace("lang=zh-CN", "lang=en"))
            assert response is not None and response.status == 401
            assert await again.inner_text("#withdrawn") == "This screen's access was withdrawn"
        finally:
            await context.close()
