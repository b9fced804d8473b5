"""Helpers for the staff app's browser tests: the stack with the staff app as a real
process, Debian's chromium, screenshots under var/screenshots/, axe-core checks."""

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ServiceProcess, Stack
from tools.processes import ROOT

CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() == "true"
SCREENSHOTS = ROOT / "var" / "screenshots"
TABLET_LANDSCAPE = {"width": 1024, "height": 768}
TABLET_PORTRAIT = {"width": 768, "height": 1024}


def require_chromium() -> None:
    if shutil.which(CHROMIUM) is None:
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing (CI installs Debian's chromium package)")
        pytest.skip(f"{CHROMIUM} not installed")


def staff_process(stack: Stack, root: Path, env: dict[str, str] | None = None) -> ServiceProcess:
    """The staff app as a real process, calling the stack's services."""
    urls = {f"STAFF_{name.upper()}_URL": svc.url for name, svc in stack.services.items()}
    process = ServiceProcess("staff", {**urls, **(env or {})}, root / "logs")
    process.env["STAFF_PUBLIC_BASE_URL"] = process.url
    return process.start()


async def launch() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


async def shoot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def no_serious_violations(page: Any) -> None:
    """axe-core finds no serious or critical accessibility violation on the page."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    bad = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
    assert not bad, f"axe on {page.url}: {bad}"


async def small_targets(page: Any) -> list[str]:
    """Buttons, links and fields smaller than 44 × 44 px that are shown."""
    found: list[str] = await page.evaluate(
        """() => [...document.querySelectorAll(
                'button, a, input:not([type=hidden]), select, textarea')]
            .filter((el) => el.offsetParent !== null)
            // A box or a radio button inside its label: the label is what a finger hits.
            .map((el) => [el, (el.closest('label') || el).getBoundingClientRect()])
            .filter(([el, r]) => r.width > 0 && (r.height < 44 || r.width < 44))
            .map(([el, r]) =>
                `${el.tagName} ${el.textContent.trim().slice(0, 20)} ${r.width}x${r.height}`)"""
    )
    return found
