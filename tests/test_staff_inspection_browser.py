"""The multi-point inspection on the technician's phone in Debian's chromium, against
reception, workorders, records and the staff app as real processes: the branch's template
set by the manager, items tapped green / amber / red with a measurement, a note and a photo
taken with the camera (stored in records' files), a stale page told, completion sending the
amber and red items to reception as extra work the customer answers; both languages,
accessibility and touch target sizes."""

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.flow import open_intake, order_opened, publish_consent, register
from tests.harness import ServiceProcess, Stack, auth, eventually, token
from tests.staff_pages import (
    TABLET_LANDSCAPE,
    launch,
    no_serious_violations,
    require_chromium,
    shoot,
    small_targets,
    staff_process,
)
from tests.test_staff_floor_browser import PHONE, assign_as_foreman, sign_in
from tests.test_workorders_api import approved_now, labour

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
MANAGER = auth("manager")
ADVISOR = auth("advisor")
TECH = {"Authorization": f"Bearer {token('technician', sub='tech-li')}"}

TEMPLATE = {
    "areas": [
        {
            "code": "tyres",
            "label_zh": "轮胎",
            "label_en": "Tyres",
            "items": [
                {
                    "code": "tread-fl",
                    "label_zh": "左前轮胎花纹深度",
                    "label_en": "Front left tyre tread",
                    "measurement": {"unit": "mm", "amber_below": "3", "red_below": "1.6"},
                    "proposed_lines": [
                        {"kind": "labour", "op_code": "TYR-010", "flat_rate_hours": "0.5"}
                    ],
                }
            ],
        },
        {
            "code": "brakes",
            "label_zh": "制动",
            "label_en": "Brakes",
            "items": [
                {
                    "code": "pads-front",
                    "label_zh": "前刹车片厚度",
                    "label_en": "Front brake pads",
                    "measurement": {"unit": "mm", "amber_below": "4", "red_below": "2"},
                    "proposed_lines": [
                        {
                            "kind": "labour",
                            "op_code": "BRK-010",
                            "flat_rate_hours": "0.8",
                            "description": "更换前刹车片",
                        }
                    ],
                },
                {"code": "lights", "label_zh": "灯光", "label_en": "Lights"},
            ],
        },
    ]
}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, ServiceProcess]]:
    require_chromium()
    root = tmp_path_factory.mktemp("inspection")
    stack = Stack(root, services=("reception", "workorders", "records")).start()
    try:
        staff = staff_process(stack, root)
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


async def working_job(stack: Stack, plate: str) -> tuple[dict[str, Any], str]:
    """A car checked in at reception, its consent given, its job under way."""
    async with httpx.AsyncClient(timeout=10) as client:
        _, vehicle = await register(client, stack.url("reception"))
        intake = await open_intake(client, stack.url("reception"), vehicle["id"])
    event = approved_now(
        lines=[labour("MNT-001", "1.0", "300")],
        intake_id=uuid.UUID(intake["id"]),
        vehicle_id=uuid.UUID(vehicle["id"]),
        vin=vehicle["vin"],
        plate=plate,
    )
    await publish_consent(stack, event)
    async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
        opened = await order_opened(api, event.intake_id)
        order = dict((await api.get(f"/repair-orders/{opened['id']}", headers=MANAGER)).json())
    job_id = order["jobs"][0]["id"]
    await assign_as_foreman(stack, job_id, "tech-li", "B3")
    async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
        assert (await api.post(f"/jobs/{job_id}/clock-on", headers=TECH)).status_code == 201
    return order, job_id


async def test_technician_fills_and_completes_the_inspection_on_the_phone(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
        current = await api.get("/inspection-template", headers=MANAGER)
        r = await api.put(
            "/inspection-template",
            headers={**MANAGER, "If-Match": current.headers["ETag"]},
            json=TEMPLATE,
        )
        assert r.status_code == 200, r.text
    order, job_id = await working_job(stack, "沪G70007")
    context = await browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True)
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "tech-li", f"/tech/jobs/{job_id}")
        await page.get_by_test_id("inspection-link").click()
        await page.wait_for_url(f"**/tech/jobs/{job_id}/inspection")
        await page.get_by_test_id("inspection-start").click()
        await expect(page.get_by_test_id("inspection-progress")).to_contain_text("0 / 3")
        await shoot(page, "inspection-01-started-phone-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []
        photo = await page.screenshot()  # what the phone's camera would have taken

        # Tread measured at 2.5 mm: amber by the template's limits, no tap needed.
        tread = page.locator("#item-tread-fl")
        await tread.get_by_label("测量值（mm）").fill("2.5")
        await tread.get_by_label("备注").fill("内侧偏磨")
        await tread.get_by_role("button", name="保存此项").click()
        tread = page.locator("#item-tread-fl")
        await expect(tread.get_by_test_id("item-saved")).to_be_visible()
        await expect(tread.get_by_label("建议关注")).to_be_checked()

        pads = page.locator("#item-pads-front")
        await pads.get_by_text("需立即处理").click()
        await pads.get_by_label("测量值（mm）").fill("1.5")
        await pads.get_by_label("拍照").set_input_files(
            {"name": "pads.png", "mimeType": "image/png", "buffer": photo}
        )
        await pads.get_by_role("button", name="保存此项").click()
        pads = page.locator("#item-pads-front")
        await expect(pads.get_by_test_id("photo-count")).to_contain_text("1")

        # Completing with an item left: told which, nothing sent.
        await page.get_by_test_id("inspection-complete").click()
        await expect(page.get_by_test_id("inspection-error")).to_contain_text("每一项")
        await expect(page.get_by_test_id("inspection-missing")).to_have_text("灯光")
        await shoot(page, "inspection-02-incomplete-phone-zh")

        # Another device saved since this page was read: the stale save is told.
        async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
            path = f"/repair-orders/{order['id']}/inspection"
            etag = (await api.get(path, headers=TECH)).headers["ETag"]
            r = await api.put(
                f"{path}/items/lights",
                headers={**TECH, "If-Match": etag},
                json={"status": "red", "note": "左后尾灯不亮"},
            )
            assert r.status_code == 200, r.text
        lights = page.locator("#item-lights")
        await lights.get_by_text("正常").click()
        await lights.get_by_role("button", name="保存此项").click()
        await expect(page.get_by_test_id("inspection-error")).to_contain_text("已被他人更新")
        await expect(page.locator("#item-lights").get_by_label("需立即处理")).to_be_checked()
        await expect(page.get_by_test_id("inspection-progress")).to_contain_text("3 / 3")
        await shoot(page, "inspection-03-filled-phone-zh")
        assert await small_targets(page) == []

        await page.get_by_test_id("inspection-complete").click()
        await expect(page.get_by_test_id("inspection-done")).to_contain_text("检查已完成")
        await shoot(page, "inspection-04-completed-phone-zh")
        await no_serious_violations(page)

        # English, on the page's own address (the form answered at the POST's).
        await page.goto(f"{staff.url}/tech/jobs/{job_id}/inspection")
        await page.get_by_test_id("language").click()
        await expect(page.get_by_test_id("inspection-done")).to_contain_text("Inspection completed")
        await expect(page.locator("#item-tread-fl")).to_contain_text("Front left tyre tread")
        await shoot(page, "inspection-05-completed-phone-en")
        assert await small_targets(page) == []

        async with httpx.AsyncClient(timeout=10) as api:
            base = stack.url("workorders")
            detail = (await api.get(f"{base}/repair-orders/{order['id']}", headers=MANAGER)).json()
            [found] = detail["extra_work"]
            codes = sorted(str(line.get("op_code")) for line in found["proposed_lines"])
            assert codes == ["BRK-010", "None", "TYR-010"]  # the lights' fee line
            [file_id] = found["photo_file_ids"]
            stored = await api.get(f"{stack.url('records')}/files/{file_id}", headers=TECH)
            assert stored.status_code == 200 and stored.json()["size"] == len(photo)

            # Reception made it a revision waiting for the customer's answer, line by line.
            async def waiting() -> list[dict[str, Any]]:
                r = await api.get(f"{stack.url('reception')}/estimates/extra-work", headers=ADVISOR)
                return [e for e in r.json()["items"] if e.get("extra_work_id") == found["id"]]

            [estimate] = await eventually(waiting)
            assert estimate["extra_work_id"] == found["id"]
    finally:
        await context.close()

    # The report, at the desk on a tablet; the technician's phone page is not theirs.
    desk = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await desk.new_page()
        await sign_in(page, staff.url, "advisor-zhao", f"/orders/{order['id']}/inspection")
        await expect(page.get_by_test_id("report-state")).to_contain_text("检查已完成")
        counts = page.get_by_test_id("report-counts")
        await expect(counts).to_contain_text("正常 0")
        await expect(counts).to_contain_text("建议关注 1")
        await expect(counts).to_contain_text("需立即处理 2")
        pads = page.locator('tr[data-item="pads-front"]')
        await expect(pads).to_contain_text("1.5 mm")
        await expect(pads).to_contain_text("已有照片 1 张")
        await expect(page.locator('tr[data-item="lights"]')).to_contain_text("左后尾灯不亮")
        await shoot(page, "inspection-06-report-tablet-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []
        refused = await page.goto(f"{staff.url}/tech/jobs/{job_id}/inspection")
        assert refused is not None and refused.status == 403
    finally:
        await desk.close()
