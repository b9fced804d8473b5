"""The staff app in Debian's chromium at the tablet's size, against the four services and
the staff app as real processes: development sign-in, the advisor's day, checking a car
in, both languages, role rules, accessibility (axe-core) and touch target sizes."""

import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from tests.harness import ServiceProcess, Stack, auth, eventually, round_the_clock, token
from tests.staff_pages import (
    TABLET_LANDSCAPE,
    TABLET_PORTRAIT,
    launch,
    no_serious_violations,
    require_chromium,
    shoot,
    small_targets,
    staff_process,
)
from tools.demo import with_check_digit

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
SHANGHAI = ZoneInfo("Asia/Shanghai")
ADVISOR = auth("advisor")
LINE_FIELDS = (
    "line_id", "kind", "description", "op_code", "op_group", "job_kind", "flat_rate_hours",
    "labour_rate", "part_number", "quantity", "unit_price", "discount", "pay_type",
)  # fmt: skip
SIGN_IN_PAGE = re.compile(r"/signin/dev\?next=")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, ServiceProcess]]:
    require_chromium()
    root = tmp_path_factory.mktemp("staff")
    # Promise projections 0.5 s after a change (5 s in production), for the at-risk list.
    stack = Stack(
        root, extra_env={"WORKORDERS_PROMISE_RECHECK_DELAY": "0.5", **round_the_clock()}
    ).start()
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


async def _seed_booking(reception: str, vin: str, plate: str) -> dict[str, Any]:
    """A customer, a vehicle and an appointment later today (or, late at night, early
    tomorrow), as the desk would have booked them."""
    async with httpx.AsyncClient(base_url=reception, headers=ADVISOR, timeout=10) as client:
        customer = await client.post("/customers", json={"name": "王芳", "mobile": "13800138000"})
        assert customer.status_code == 201, customer.text
        vehicle = await client.post(
            "/vehicles",
            json={
                "customer_id": customer.json()["id"],
                "vin": with_check_digit(vin),
                "plate": plate,
            },
        )
        assert vehicle.status_code == 201, vehicle.text
        starts = datetime.now(SHANGHAI) + timedelta(minutes=30)
        booked = await client.post(
            "/appointments",
            json={
                "vehicle_id": vehicle.json()["id"],
                "starts_at": starts.isoformat(),
                "planned_hours": "1.5",
                "concerns": ["刹车时有异响"],
            },
        )
        assert booked.status_code == 201, booked.text
        return dict(booked.json())


async def _sign_in(page: Any, base: str, sub: str, next_path: str) -> None:
    await page.goto(f"{base}{next_path}")
    await page.wait_for_url(SIGN_IN_PAGE)
    await page.click(f'button[data-sub="{sub}"]')
    await page.wait_for_url(lambda url: url == f"{base}{next_path}")


async def test_advisor_signs_in_sees_the_day_and_checks_a_car_in(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    booking = await _seed_booking(stack.url("reception"), "LSVAU2180N2183294", "沪A12345")
    day = booking["day"]
    next_path = f"/advisor?day={day}"
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await _sign_in(page, staff.url, "advisor-zhao", next_path)
        row = page.locator(f'tr[data-appointment="{booking["id"]}"]')
        await expect(row).to_contain_text("沪A12345")
        await expect(row).to_contain_text("王芳")
        await expect(row).to_contain_text("已预约")
        await expect(page.get_by_test_id("user")).to_contain_text("赵敏")
        await shoot(page, "staff-01-advisor-day-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        # Check in: a wrong odometer is named next to its field, in Chinese.
        await row.get_by_role("button", name="到店接车").click()
        form = page.locator(f"#arrive-{booking['id']} form")
        await form.get_by_label("里程 (km)").fill("-5")
        await form.get_by_role("button", name="开始接车").click()
        error = page.locator(f"#arrive-{booking['id']} .error")
        await expect(error).to_contain_text("应不小于 0")
        await shoot(page, "staff-02-arrive-error-zh")
        key_before = await page.locator(
            f"#arrive-{booking['id']} [name=idempotency_key]"
        ).input_value()

        await page.locator(f"#arrive-{booking['id']}").get_by_label("里程 (km)").fill("42000")
        key_after = await page.locator(
            f"#arrive-{booking['id']} [name=idempotency_key]"
        ).input_value()
        assert key_before == key_after  # the same submission, tried again, keeps its key
        await (
            page.locator(f"#arrive-{booking['id']}").get_by_role("button", name="开始接车").click()
        )
        await page.wait_for_url("**/advisor/intakes/*")
        await expect(page.get_by_test_id("intake-summary")).to_contain_text("42000")
        intake_id = page.url.rsplit("/", 1)[1]

        # The outcome, read through reception's API.
        async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
            intake = (await api.get(f"/intakes/{intake_id}")).json()
            assert intake["appointment_id"] == booking["id"] and intake["odometer_km"] == 42000
            assert intake["concerns"] == ["刹车时有异响"]
            moved = (await api.get(f"/appointments/{booking['id']}")).json()
            assert moved["status"] == "arrived"

        # English, remembered for this user after signing out and in again.
        await page.goto(f"{staff.url}{next_path}")
        await page.get_by_test_id("language").click()
        await expect(page.locator("h1")).to_have_text("Today's appointments and arrivals")
        await expect(row).to_contain_text("Arrived")
        await page.set_viewport_size(TABLET_PORTRAIT)
        await shoot(page, "staff-03-advisor-day-en-portrait")
        await no_serious_violations(page)
        assert await small_targets(page) == []
        await page.get_by_role("button", name="Sign out").click()
        await _sign_in(page, staff.url, "advisor-zhao", next_path)
        await expect(page.locator("h1")).to_have_text("Today's appointments and arrivals")
    finally:
        await context.close()


async def test_an_advisor_page_is_refused_to_a_technician(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    _, staff = running
    context = await browser.new_context(viewport=TABLET_LANDSCAPE)
    try:
        page = await context.new_page()
        await page.goto(f"{staff.url}/advisor")
        await page.click('button[data-sub="tech-li"]')
        await expect(page.locator("h1")).to_have_text("您的角色无权打开此页面。")
        response = await page.goto(f"{staff.url}/advisor")
        assert response is not None and response.status == 403
        await shoot(page, "staff-04-technician-refused")
    finally:
        await context.close()


async def test_forms_without_the_csrf_token_are_refused(
    running: tuple[Stack, ServiceProcess],
) -> None:
    _, staff = running
    async with httpx.AsyncClient(base_url=staff.url) as client:
        page = await client.get("/signin/dev")
        assert page.status_code == 200
        refused = await client.post("/signin/dev", data={"sub": "advisor-zhao", "next": "/"})
        assert refused.status_code == 403 and "staff_session" not in refused.cookies


async def test_an_expired_session_returns_to_the_page_after_signing_in(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    """A session past its token's expiry sends the user to sign in, and back."""
    from itsdangerous import URLSafeTimedSerializer

    from services.staff.config import Settings
    from services.staff.session import SESSION_COOKIE

    _, staff = running
    context = await browser.new_context(viewport=TABLET_LANDSCAPE)
    try:
        page = await context.new_page()
        today = datetime.now(SHANGHAI).date()
        await _sign_in(page, staff.url, "advisor-zhao", f"/advisor?day={today}")
        cookie = next(c for c in await context.cookies() if c["name"] == SESSION_COOKIE)
        signer = URLSafeTimedSerializer(Settings().session_secret, salt="staff-session")
        data = signer.loads(cookie["value"])
        data["exp"] = datetime.now().timestamp() - 1  # what the clock does after 12 hours
        await context.add_cookies([{**cookie, "value": signer.dumps(data)}])
        elsewhere = f"/advisor?day={today + timedelta(days=1)}"
        await page.goto(f"{staff.url}{elsewhere}")
        await page.wait_for_url(SIGN_IN_PAGE)
        assert "登录已过期" in await page.inner_text("main")
        await page.click('button[data-sub="advisor-zhao"]')
        await page.wait_for_url(lambda url: url == f"{staff.url}{elsewhere}")
    finally:
        await context.close()


async def test_advisor_registers_a_car_books_it_and_finds_it_at_the_desk(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    """Register (the VIN checked as it is typed), book from the vehicle's page, see the
    booking on its day, find the car at the desk; outcomes read through the APIs."""
    from playwright.async_api import expect

    stack, staff = running
    vin = with_check_digit("LFV2A21K0N3041234")
    wrong = vin[:8] + ("1" if vin[8] != "1" else "2") + vin[9:]
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await _sign_in(page, staff.url, "advisor-qian", "/advisor/register")
        await page.get_by_label("姓名").fill("李雷")
        await page.get_by_label("手机").fill("13912345678")
        await page.get_by_label("VIN").fill(wrong)
        check = page.get_by_test_id("vin-check")
        await expect(check).to_contain_text("第 9 位校验位")
        await shoot(page, "staff-06-register-vin-refused")
        await page.get_by_label("VIN").fill(vin[:10])
        await expect(check).to_contain_text("已输入 10 / 17 位")
        await page.get_by_label("VIN").fill(vin)
        await expect(check.locator("[data-state=ok]")).to_be_visible()
        await page.get_by_label("车牌").fill("沪B67890")
        await shoot(page, "staff-07-register-vin-ok")
        await no_serious_violations(page)
        assert await small_targets(page) == []
        await page.get_by_role("button", name="登记").click()
        await page.wait_for_url(re.compile(r"/advisor/vehicles/"))
        vehicle_id = page.url.rsplit("/", 1)[1]
        await expect(page.get_by_test_id("vehicle-summary")).to_contain_text("李雷")

        starts = datetime.now(SHANGHAI).replace(second=0, microsecond=0) + timedelta(hours=1)
        booking = page.get_by_test_id("book")
        await booking.get_by_label("到店时间").fill(starts.strftime("%Y-%m-%dT%H:%M"))
        await booking.get_by_label("预计工时").fill("2")
        await booking.get_by_label("客户描述").fill("空调有异味\n三万公里保养")
        await shoot(page, "staff-08-vehicle-book")
        await no_serious_violations(page)
        await booking.get_by_role("button", name="预约").click()
        await page.wait_for_url(re.compile(rf"/advisor\?day={starts.date()}"))
        row = page.locator("tr[data-appointment]", has_text="沪B67890")
        await expect(row).to_contain_text(starts.strftime("%H:%M"))
        await expect(row).to_contain_text("空调有异味")

        async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
            day = (await api.get("/appointments", params={"day": str(starts.date())})).json()
            mine = [a for a in day["items"] if a["vehicle_id"] == vehicle_id]
            assert len(mine) == 1 and mine[0]["concerns"] == ["空调有异味", "三万公里保养"]
            assert datetime.fromisoformat(mine[0]["starts_at"]) == starts
            vehicle = (await api.get(f"/vehicles/{vehicle_id}")).json()
            assert vehicle["vin"] == vin and vehicle["plate"] == "沪B67890"

        await page.goto(f"{staff.url}/advisor/desk")
        box = page.get_by_label("车牌、车架号后六位、手机号或姓名")
        for typed in ("B678", "13912345678", vin[-6:], "李"):
            await box.fill(typed)
            # The results that answer what was typed, not the ones before them.
            hit = page.locator(f'#results [data-q="{typed}"] tr[data-vehicle="{vehicle_id}"]')
            await expect(hit).to_contain_text("李雷")
        await box.fill("B679")
        await expect(page.locator('#results [data-q="B679"]')).to_contain_text("没有找到")
        await shoot(page, "staff-09-desk-search")
        await no_serious_violations(page)
        assert await small_targets(page) == []
    finally:
        await context.close()


def _photo(path: Path) -> Path:
    """A small real JPEG, as a tablet's camera would hand the page."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 240), (200, 200, 205))
    ImageDraw.Draw(image).line([(20, 200), (300, 40)], fill=(120, 0, 0), width=6)
    image.save(path, "JPEG")
    return path


async def _check_in(page: Any, staff: ServiceProcess, booking: dict[str, Any], km: str) -> str:
    await page.goto(f"{staff.url}/advisor?day={booking['day']}")
    row = page.locator(f'tr[data-appointment="{booking["id"]}"]')
    await row.get_by_role("button", name="到店接车").click()
    form = page.locator(f"#arrive-{booking['id']}")
    await form.get_by_label("里程 (km)").fill(km)
    await form.get_by_role("button").click()
    await page.wait_for_url(re.compile(r"/advisor/intakes/"))
    return str(page.url.rsplit("/", 1)[1])


async def test_the_walk_around_with_marks_a_photo_and_the_signature(
    running: tuple[Stack, ServiceProcess], browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    booking = await _seed_booking(stack.url("reception"), "LBVPH1101NSB00001", "京C24680")
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await _sign_in(page, staff.url, "advisor-zhao", f"/advisor?day={booking['day']}")
        intake_id = await _check_in(page, staff, booking, "61000")
        walk = page.get_by_test_id("walkaround")
        # Two marks tapped on the car outline.
        await page.locator('[data-zone="front_bumper"]').click()
        await expect(page.locator('[data-mark="front_bumper"]')).to_be_visible()
        await page.locator('[data-zone="front_left_door"]').click()
        door = page.locator('[data-mark="front_left_door"]')
        await expect(door).to_be_visible()
        await door.get_by_label("类型").select_option("dent")
        await door.get_by_label("备注").fill("凹陷约 3 厘米")
        await door.get_by_label("照片").set_input_files(str(_photo(tmp_path / "door.jpg")))
        await walk.get_by_text("50%").first.click()
        await walk.get_by_label("灯光 正常").check()
        await walk.get_by_label("雨刮 紧急").check()
        await walk.get_by_label("已提醒客户带走车内贵重物品").check()
        pad = page.get_by_test_id("signature-pad")
        box = await pad.bounding_box()
        assert box is not None
        await page.mouse.move(box["x"] + 40, box["y"] + 120)
        await page.mouse.down()
        for step in range(1, 12):
            await page.mouse.move(box["x"] + 40 + step * 35, box["y"] + 120 - (step % 3) * 30)
        await page.mouse.up()
        await shoot(page, "staff-10-walkaround-filled")
        await page.get_by_test_id("save").click()
        await expect(page.get_by_test_id("saved")).to_be_visible()
        await expect(page.get_by_test_id("photo")).to_be_visible()
        await expect(page.get_by_test_id("signature-shown")).to_be_visible()
        await shoot(page, "staff-11-walkaround-saved")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
            intake = (await api.get(f"/intakes/{intake_id}")).json()
            marks = {m["position"]: m for m in intake["damage_marks"]}
            assert set(marks) == {"front_bumper", "front_left_door"}
            assert marks["front_left_door"]["kind"] == "dent"
            assert marks["front_left_door"]["note"] == "凹陷约 3 厘米"
            assert marks["front_left_door"]["photo_file_id"]
            assert intake["signature_file_id"] and intake["valuables_acknowledged_at"]
            assert intake["fuel_level_pct"] == 50
            states = {c["item"]: c["state"] for c in intake["checklist"]}
            assert states == {"lights": "ok", "wipers": "urgent"}
            # Another tablet changes the fuel level meanwhile.
            current = await api.get(f"/intakes/{intake_id}")
            other = await api.patch(
                f"/intakes/{intake_id}",
                headers={"If-Match": current.headers["ETag"]},
                json={"fuel_level_pct": 75},
            )
            assert other.status_code == 200, other.text

        await walk.get_by_label("备注").first.fill("右侧轻微划痕")
        await page.get_by_test_id("save").click()
        changed = page.get_by_test_id("changed")
        await expect(changed).to_contain_text("油量：现在是「75%」")
        await shoot(page, "staff-12-walkaround-412")
        # The advisor's note is still there; saving again applies it over the change.
        await expect(walk.get_by_label("备注").first).to_have_value("右侧轻微划痕")
        await page.get_by_test_id("save").click()
        await expect(page.get_by_test_id("saved")).to_be_visible()
        await page.get_by_test_id("complete").click()
        await expect(page.get_by_test_id("completed")).to_be_visible()
        await shoot(page, "staff-13-walkaround-completed")
        # The same page in English on the tablet held upright.
        await page.get_by_test_id("language").click()
        await expect(page.get_by_test_id("completed")).to_have_text(
            "Walk-around completed and signed."
        )
        await page.set_viewport_size(TABLET_PORTRAIT)
        await shoot(page, "staff-13a-walkaround-en-portrait")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
            intake = (await api.get(f"/intakes/{intake_id}")).json()
            assert intake["status"] == "completed"
            marks = {m["position"]: m for m in intake["damage_marks"]}
            assert marks["front_bumper"]["note"] == "右侧轻微划痕"
        async with httpx.AsyncClient(base_url=stack.url("records"), headers=ADVISOR) as records:
            photo = await records.get(f"/files/{marks['front_left_door']['photo_file_id']}/content")
            assert photo.status_code == 200 and photo.content[:2] == b"\xff\xd8"
            signature = await records.get(f"/files/{intake['signature_file_id']}/content")
            assert signature.status_code == 200 and signature.content[:4] == b"\x89PNG"
    finally:
        await context.close()


async def _draw(page: Any, test_id: str) -> None:
    """A signature drawn with the finger (the mouse here) across the pad."""
    pad = page.get_by_test_id(test_id)
    await pad.scroll_into_view_if_needed()
    box = await pad.bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + 30, box["y"] + 100)
    await page.mouse.down()
    for step in range(1, 10):
        await page.mouse.move(box["x"] + 30 + step * 40, box["y"] + 100 - (step % 2) * 40)
    await page.mouse.up()


async def test_the_estimate_with_totals_per_payer_and_a_partial_consent(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    """Canned job and a warranty part added on the page, totals per payer as reception
    prices them, then the customer approves two lines, declines one and signs."""
    from playwright.async_api import expect

    stack, staff = running
    booking = await _seed_booking(stack.url("reception"), "LSVAU2180N2180001", "沪C11223")
    async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
        canned = await api.post(
            "/canned-jobs",
            json={
                "op_code": "BRK-PAD-F",
                "description": "更换前刹车片",
                "job_kind": "repair",
                "flat_rate_hours": "1.20",
                "labour_rate": "380.00",
                "parts": [{"part_number": "5QD698151", "description": "前刹车片",
                           "quantity": "1", "unit_price": "468.00"}],
            },
        )  # fmt: skip
        assert canned.status_code in (200, 201), canned.text
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await _sign_in(page, staff.url, "advisor-zhao", f"/advisor?day={booking['day']}")
        intake_id = await _check_in(page, staff, booking, "35500")
        await page.get_by_test_id("to-estimate").click()
        # Promised in 40 minutes: 1.2 hours of labour cannot make it, the order is at risk.
        promised = datetime.now(SHANGHAI).replace(second=0, microsecond=0) + timedelta(minutes=40)
        await page.get_by_label("承诺交车时间").fill(promised.strftime("%Y-%m-%dT%H:%M"))
        await page.get_by_role("button", name="开始估价").click()
        estimate = page.get_by_test_id("estimate")
        await expect(estimate).to_have_attribute("data-revision", "1")

        await page.get_by_test_id("canned").get_by_role("button", name="添加").click()
        await expect(estimate).to_have_attribute("data-revision", "2")
        line = page.get_by_test_id("add-line")
        await line.get_by_label("类型").select_option("part")
        await line.get_by_label("说明").fill("刹车盘")
        await line.get_by_label("单价", exact=True).fill("abc")
        await line.get_by_role("button", name="添加").click()
        # Reception's 422 shown next to the field it names, in Chinese.
        invalid = page.get_by_test_id("add-line").locator(".field.invalid")
        await expect(invalid).to_contain_text("单价")
        await expect(invalid.locator(".error")).to_have_text("应为数字")
        await shoot(page, "staff-14-estimate-line-refused")
        # Another tablet adds the same canned job meanwhile: this page's next change is
        # refused (412) and says what the estimate now is.
        async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
            now = await api.get(f"/intakes/{intake_id}/estimate")
            other = await api.post(
                f"/estimates/{now.json()['id']}/canned-jobs",
                headers={"If-Match": now.headers["ETag"]},
                json={"op_code": "BRK-PAD-F"},
            )
            assert other.status_code == 200, other.text
            other_total = other.json()["totals"]["total"]
        stale = page.get_by_test_id("add-line")
        await stale.get_by_label("配件号").fill("5QD615301")
        await stale.get_by_label("单价", exact=True).fill("620")
        await stale.get_by_role("button", name="添加").click()
        await expect(page.get_by_test_id("changed")).to_contain_text(
            f"现在是第 3 版，合计 {other_total}"
        )
        await shoot(page, "staff-15a-estimate-412")
        # The other tablet's lines are taken back out, as the advisor decides.
        async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
            now = await api.get(f"/intakes/{intake_id}/estimate")
            kept = [
                {k: v for k, v in ln.items() if k in LINE_FIELDS} for ln in now.json()["lines"][:2]
            ]
            undone = await api.put(
                f"/estimates/{now.json()['id']}",
                headers={"If-Match": now.headers["ETag"]},
                json={"promised_at": now.json()["promised_at"], "lines": kept},
            )
            assert undone.status_code == 200, undone.text
        await page.reload()
        await expect(estimate).to_have_attribute("data-revision", "4")
        line = page.get_by_test_id("add-line")
        await line.get_by_label("类型").select_option("part")
        await line.get_by_label("说明").fill("刹车盘")
        await line.get_by_label("配件号").fill("5QD615301")
        await line.get_by_label("单价", exact=True).fill("620")
        await line.get_by_label("付费方").select_option("warranty")
        await line.get_by_role("button", name="添加").click()
        await expect(estimate).to_have_attribute("data-revision", "5")
        totals = page.get_by_test_id("totals")
        await shoot(page, "staff-15-estimate-lines")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
            priced = (await api.get(f"/intakes/{intake_id}/estimate")).json()
        assert [ln["kind"] for ln in priced["lines"]] == ["labour", "part", "part"]
        for row in priced["totals"]["by_pay_type"]:
            shown = totals.locator(f'tr[data-pay-type="{row["pay_type"]}"]')
            await expect(shown).to_contain_text(row["total"])
        await expect(totals.locator('tr[data-pay-type="all"]')).to_contain_text(
            priced["totals"]["total"]
        )
        assert {r["pay_type"] for r in priced["totals"]["by_pay_type"]} == {"customer", "warranty"}

        # The QR code of the approval link.
        await page.get_by_test_id("make-link").click()
        await expect(page.get_by_test_id("approval-qr").locator("img")).to_be_visible()
        url = await page.get_by_test_id("approval-url").inner_text()
        assert "/approve/" in url

        # Partial consent in person: labour and its pads approved, the disc declined.
        labour, pads, disc = priced["lines"]
        consent = page.get_by_test_id("consent")
        await consent.get_by_role("button", name="记录客户确认").click()
        await expect(page.get_by_test_id("consent").locator(".error")).to_have_text(
            "请至少为一个项目选择同意或不做。"
        )
        consent = page.get_by_test_id("consent")
        await (
            consent.locator(f'[data-consent-line="{labour["line_id"]}"]')
            .get_by_text("同意")
            .click()
        )
        await (
            consent.locator(f'[data-consent-line="{pads["line_id"]}"]').get_by_text("同意").click()
        )
        await (
            consent.locator(f'[data-consent-line="{disc["line_id"]}"]').get_by_text("不做").click()
        )
        await _draw(page, "consent-signature")
        await shoot(page, "staff-16-consent-signing")
        # The at-risk list, open in another tab before the consent, follows live.
        watching = await context.new_page()
        await watching.goto(f"{staff.url}/advisor/at-risk")
        await expect(
            watching.get_by_test_id("none-at-risk").or_(watching.get_by_test_id("at-risk-list"))
        ).to_be_visible()
        await watching.evaluate("window.notReloaded = true")
        await consent.get_by_role("button", name="记录客户确认").click()
        await expect(estimate).to_have_attribute("data-status", "answered")
        await shoot(page, "staff-17-consent-recorded")
        await no_serious_violations(page)

        async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
            answered = (await api.get(f"/intakes/{intake_id}/estimate")).json()
            decisions = {ln["line_id"]: ln["answer"]["decision"] for ln in answered["lines"]}
            assert decisions == {
                labour["line_id"]: "approved",
                pads["line_id"]: "approved",
                disc["line_id"]: "declined",
            }
            assert answered["status"] == "answered"
            ledger = (await api.get(f"/estimates/{answered['id']}/consents")).json()["items"]
            assert {c["channel"] for c in ledger} == {"in_person"}
            assert all(c["signature_file_id"] for c in ledger)
            assert {c["by"] for c in ledger} == {"王芳"}

        # Workorders opens the order and projects it late: the row appears by itself.
        row = watching.locator("tr[data-order]", has_text="沪C11223")
        await expect(row).to_be_visible(timeout=20000)
        assert await watching.evaluate("window.notReloaded") is True
        await expect(row).to_contain_text(promised.strftime("%H:%M"))
        await shoot(watching, "staff-18-at-risk")
        await no_serious_violations(watching)
        assert await small_targets(watching) == []
        order_id = await row.get_attribute("data-order")
        # The projection, rounded up to the quarter hour, is offered as the new promise.
        offered = await row.get_by_label("新承诺时间（已告知客户）").input_value()
        assert offered.endswith((":00", ":15", ":30", ":45")) and offered > promised.strftime(
            "%Y-%m-%dT%H:%M"
        )
        new_promise = promised + timedelta(hours=3)
        await row.get_by_label("新承诺时间（已告知客户）").fill(
            new_promise.strftime("%Y-%m-%dT%H:%M")
        )
        await row.get_by_role("button", name="记录").click()
        await expect(watching.get_by_test_id("recorded")).to_be_visible()
        await expect(watching.locator(f'tr[data-order="{order_id}"]')).to_have_count(0)
        async with httpx.AsyncClient(base_url=stack.url("workorders"), headers=ADVISOR) as api:
            order = (await api.get(f"/repair-orders/{order_id}")).json()
            assert datetime.fromisoformat(order["promised_at"]) == new_promise
            assert order["customer_told_at"] and order["at_risk_since"] is None
            assert len(order["jobs"]) == 1 and order["declined_lines"]

        # The technician finds more work; it waits for the advisor and the customer.
        tech = {"Authorization": f"Bearer {token('technician', sub='tech-li')}"}
        async with httpx.AsyncClient(base_url=stack.url("workorders"), headers=tech) as api:
            found = await api.post(
                f"/repair-orders/{order_id}/extra-work",
                json={
                    "job_id": order["jobs"][0]["id"],
                    "findings": "后刹车盘磨损",
                    "proposed_lines": [
                        {"kind": "labour", "op_code": "BRK-DISC-R", "flat_rate_hours": "1.5",
                         "description": "更换后刹车盘"},
                        {"kind": "part", "part_number": "BD-1", "description": "后刹车盘"},
                    ],
                },
            )  # fmt: skip
            assert found.status_code == 201, found.text

        async def listed() -> bool:
            await page.goto(f"{staff.url}/advisor/extra-work")
            return await page.locator("tr[data-estimate]", has_text="沪C11223").count() == 1

        await eventually(listed, what="the extra work on the advisor's list")
        await shoot(page, "staff-20-extra-work")
        await no_serious_violations(page)
        assert await small_targets(page) == []
        await page.get_by_role("link", name="定价并确认").click()
        for price in ("380", "420"):
            await page.get_by_test_id("price-line").first.get_by_role("textbox").fill(price)
            await page.get_by_test_id("price-line").first.get_by_role("button").click()
            await expect(page.get_by_test_id("saved")).to_be_visible()
        await expect(page.get_by_test_id("price-line")).to_have_count(0)
        extra = page.get_by_test_id("consent")
        await extra.locator("tr", has_text="BRK-DISC-R").get_by_text("同意").click()
        await extra.locator("tr", has_text="BD-1").get_by_text("不做").click()
        await _draw(page, "consent-signature")
        await extra.get_by_role("button", name="记录客户确认").click()
        await expect(estimate).to_have_attribute("data-status", "answered")
        await shoot(page, "staff-21-extra-work-answered")
        async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
            final = (await api.get(f"/intakes/{intake_id}/estimate")).json()
            answers = {
                ln["op_code"] or ln["part_number"]: (ln["net"], ln["answer"]["decision"])
                for ln in final["lines"]
                if ln["extra_work_id"]
            }
            assert answers == {"BRK-DISC-R": ("570.00", "approved"), "BD-1": ("420.00", "declined")}
            waiting = (await api.get("/estimates/extra-work")).json()["items"]
            assert all(e["id"] != final["id"] for e in waiting)
    finally:
        await context.close()


async def test_offline_is_said_and_a_lost_answer_is_retried_with_the_same_key(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    """Shaky Wi-Fi: the check-in reaches the staff app and reception, but its answer is
    lost. The page says it is offline; once back online it sends the same form again
    with the same Idempotency-Key, and reception answers the first intake again."""
    from playwright.async_api import expect

    stack, staff = running
    booking = await _seed_booking(stack.url("reception"), "LSVAU2180N2180002", "沪D55667")
    context = await browser.new_context(viewport=TABLET_PORTRAIT, locale="zh-CN")
    try:
        page = await context.new_page()
        await _sign_in(page, staff.url, "advisor-zhao", f"/advisor?day={booking['day']}")
        row = page.locator(f'tr[data-appointment="{booking["id"]}"]')
        await row.get_by_role("button", name="到店接车").click()
        form = page.locator(f"#arrive-{booking['id']}")
        await form.get_by_label("里程 (km)").fill("12000")
        sent: list[str] = []

        async def lose_the_answer(route: Any) -> None:
            sent.append(route.request.post_data or "")
            await route.fetch()  # the server did the work...
            await context.set_offline(True)
            await route.abort("internetdisconnected")  # ...the tablet never heard

        await page.route("**/arrive", lose_the_answer, times=1)
        await form.get_by_role("button").click()
        await expect(page.locator("#offline")).to_be_visible()
        await expect(page.locator("#offline")).to_contain_text("网络已断开")
        await shoot(page, "staff-19-offline")
        await context.set_offline(False)
        await page.wait_for_url(re.compile(r"/advisor/intakes/"))
        intake_id = page.url.rsplit("/", 1)[1]
        await expect(page.locator("#offline")).to_be_hidden()

        key = re.search(r"idempotency_key=(\w+)", sent[0])
        assert key is not None
        async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
            moved = (await api.get(f"/appointments/{booking['id']}")).json()
            assert moved["status"] == "arrived"
            # The retry was answered with the first intake: asking again as the same
            # advisor with the same key and body replays it.
            zhao = token("advisor", sub="advisor-zhao")
            again = await api.post(
                "/intakes",
                headers={"Authorization": f"Bearer {zhao}", "Idempotency-Key": key.group(1)},
                json={"vehicle_id": booking["vehicle_id"], "appointment_id": booking["id"],
                      "odometer_km": 12000},
            )  # fmt: skip
        assert again.status_code in (200, 201), again.text
        assert again.json()["id"] == intake_id and again.headers["Idempotent-Replayed"] == "true"
    finally:
        await context.close()


async def test_the_advisor_flow_from_booking_to_partial_consent(
    running: tuple[Stack, ServiceProcess], browser: Any, tmp_path: Path
) -> None:
    """The whole visit on the tablet, driven only through the pages: register and book,
    the customer arrives, the walk-around with a photo and the signature, the estimate
    from a canned job and a fee, the customer approves one line and declines two. The
    outcomes are read through the services' APIs."""
    from playwright.async_api import expect

    stack, staff = running
    async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
        canned = await api.post(
            "/canned-jobs",
            json={"op_code": "MNT-10K", "description": "一万公里保养", "job_kind": "maintenance",
                  "flat_rate_hours": "0.80", "labour_rate": "380.00",
                  "parts": [{"part_number": "06L115562B", "description": "机油滤清器",
                             "quantity": "1", "unit_price": "68.00"}]},
        )  # fmt: skip
        assert canned.status_code == 201, canned.text
    vin = with_check_digit("LSVAU2180N2189999")
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await _sign_in(page, staff.url, "advisor-zhao", "/advisor/register")
        await page.get_by_label("姓名").fill("赵小红")
        await page.get_by_label("手机").fill("13600001234")
        await page.get_by_label("VIN").fill(vin)
        await expect(page.get_by_test_id("vin-check").locator("[data-state=ok]")).to_be_visible()
        await page.get_by_label("车牌").fill("沪E98765")
        await page.get_by_role("button", name="登记").click()
        await page.wait_for_url(re.compile(r"/advisor/vehicles/"))
        vehicle_id = page.url.rsplit("/", 1)[1]

        # Booked for 30 minutes from now; the customer comes early and is checked in.
        starts = datetime.now(SHANGHAI).replace(second=0, microsecond=0) + timedelta(minutes=30)
        booking = page.get_by_test_id("book")
        await booking.get_by_label("到店时间").fill(starts.strftime("%Y-%m-%dT%H:%M"))
        await booking.get_by_label("预计工时").fill("1")
        await booking.get_by_label("客户描述").fill("一万公里保养\n车门有划痕")
        await booking.get_by_role("button", name="预约").click()
        await page.wait_for_url(re.compile(rf"/advisor\?day={starts.date()}"))
        row = page.locator("tr[data-appointment]", has_text="沪E98765")
        appointment_id = await row.get_attribute("data-appointment")
        await row.get_by_role("button", name="到店接车").click()
        await page.locator(f"#arrive-{appointment_id}").get_by_label("里程 (km)").fill("10230")
        await page.locator(f"#arrive-{appointment_id}").get_by_role("button").click()
        await page.wait_for_url(re.compile(r"/advisor/intakes/"))
        intake_id = page.url.rsplit("/", 1)[1]

        # The walk-around: a scratch with its photo, fuel, valuables, signature.
        await page.locator('[data-zone="rear_left_door"]').click()
        mark = page.locator('[data-mark="rear_left_door"]')
        await mark.get_by_label("照片").set_input_files(str(_photo(tmp_path / "scratch.jpg")))
        walk = page.get_by_test_id("walkaround")
        await walk.get_by_text("75%").first.click()
        await walk.get_by_label("已提醒客户带走车内贵重物品").check()
        await _draw(page, "signature-pad")
        await page.get_by_test_id("save").click()
        await expect(page.get_by_test_id("photo")).to_be_visible()
        await page.get_by_test_id("complete").click()
        await expect(page.get_by_test_id("completed")).to_be_visible()
        await shoot(page, "staff-22-flow-walkaround")

        # The estimate: the 10,000 km service and a disposal fee.
        await page.get_by_test_id("to-estimate").click()
        promised = starts + timedelta(hours=6)
        await page.get_by_label("承诺交车时间").fill(promised.strftime("%Y-%m-%dT%H:%M"))
        await page.get_by_role("button", name="开始估价").click()
        estimate = page.get_by_test_id("estimate")
        # The customer needs the car an hour later than first said.
        promised += timedelta(hours=1)
        change = page.get_by_test_id("promise")
        await change.get_by_label("承诺交车时间").fill(promised.strftime("%Y-%m-%dT%H:%M"))
        await change.get_by_role("button", name="修改承诺时间").click()
        await expect(estimate).to_have_attribute("data-revision", "2")
        await page.get_by_test_id("canned").get_by_label("标准项目").select_option("MNT-10K")
        await page.get_by_test_id("canned").get_by_role("button", name="添加").click()
        await expect(estimate).to_have_attribute("data-revision", "3")
        line = page.get_by_test_id("add-line")
        await line.get_by_label("类型").select_option("fee")
        await line.get_by_label("说明").fill("环保处理费")
        await line.get_by_label("单价", exact=True).fill("15")
        await line.get_by_role("button", name="添加").click()
        await expect(estimate).to_have_attribute("data-revision", "4")

        # Partial consent: the labour yes, the filter and the fee no.
        consent = page.get_by_test_id("consent")
        await consent.locator("tr", has_text="MNT-10K").get_by_text("同意").click()
        await consent.locator("tr", has_text="06L115562B").get_by_text("不做").click()
        await consent.locator("tr", has_text="环保处理费").get_by_text("不做").click()
        await _draw(page, "consent-signature")
        await consent.get_by_role("button", name="记录客户确认").click()
        await expect(estimate).to_have_attribute("data-status", "answered")
        await shoot(page, "staff-23-flow-consented")
    finally:
        await context.close()

    async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
        appointment = (await api.get(f"/appointments/{appointment_id}")).json()
        assert appointment["vehicle_id"] == vehicle_id and appointment["status"] == "arrived"
        assert appointment["concerns"] == ["一万公里保养", "车门有划痕"]
        intake = (await api.get(f"/intakes/{intake_id}")).json()
        assert intake["status"] == "completed" and intake["fuel_level_pct"] == 75
        assert intake["damage_marks"][0]["photo_file_id"] and intake["signature_file_id"]
        answered = (await api.get(f"/intakes/{intake_id}/estimate")).json()
        decisions = {
            ln["part_number"] if ln["kind"] == "part" else ln["op_code"] or ln["description"]: ln[
                "answer"
            ]["decision"]
            for ln in answered["lines"]
        }
        assert decisions == {"MNT-10K": "approved", "06L115562B": "declined",
                             "环保处理费": "declined"}  # fmt: skip
        assert datetime.fromisoformat(answered["promised_at"]) == promised
    async with httpx.AsyncClient(base_url=stack.url("workorders"), headers=ADVISOR) as api:

        async def opened() -> dict[str, Any] | None:
            found = await api.get("/repair-orders", params={"intake_id": intake_id})
            items = found.json()["items"]
            return items[0] if items and items[0]["status"] == "open" else None

        order = await eventually(opened, what="the repair order opened from the consent")
        detail = (await api.get(f"/repair-orders/{order['id']}")).json()
        assert [job["op_code"] for job in detail["jobs"]] == ["MNT-10K"]
        assert detail["jobs"][0]["parts"] == []  # the declined filter is not fitted
