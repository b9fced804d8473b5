"""The shop floor's pages of the staff app in Debian's chromium, against workorders,
records and the staff app as real processes: the foreman's dispatch board (assign with a
tap, live on a second tablet, a stale edit told), the TV screens; role rules; both
languages, accessibility and touch target sizes."""

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from tests.flow import order_opened, publish_consent
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
from tests.test_workorders_api import approved_now, labour

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
SHANGHAI = ZoneInfo("Asia/Shanghai")
FOREMAN = auth("foreman")
MANAGER = auth("manager")
SIGN_IN_PAGE = re.compile(r"/signin/dev\?next=")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, ServiceProcess]]:
    require_chromium()
    root = tmp_path_factory.mktemp("floor")
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


async def sign_in(page: Any, base: str, sub: str, next_path: str) -> None:
    await page.goto(f"{base}{next_path}")
    await page.wait_for_url(SIGN_IN_PAGE)
    await page.click(f'button[data-sub="{sub}"]')
    await page.wait_for_url(lambda url: url == f"{base}{next_path}")


async def order_with_jobs(stack: Stack, plate: str, *ops: tuple[str, str]) -> dict[str, Any]:
    """A repair order the customer consented to, its jobs waiting to be dispatched."""
    event = approved_now(
        lines=[labour(code, hours, "300") for code, hours in ops],
        plate=plate,
        vehicle_id=uuid.uuid4(),
    )
    await publish_consent(stack, event)
    async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
        order = await order_opened(api, event.intake_id)
        detail = await api.get(f"/repair-orders/{order['id']}", headers=MANAGER)
        return dict(detail.json())


async def job(stack: Stack, job_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
        r = await api.get(f"/jobs/{job_id}", headers=MANAGER)
        assert r.status_code == 200, r.text
        return dict(r.json())


async def test_foreman_dispatches_live_and_a_stale_tablet_is_told_what_changed(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    order = await order_with_jobs(stack, "沪B20001", ("BRK-010", "1.5"), ("ENG-200", "2.0"))
    first, second = (j["id"] for j in order["jobs"])
    day = datetime.now(SHANGHAI).date().isoformat()
    start = datetime.now(SHANGHAI).strftime("%H:%M")
    path = f"/foreman?day={day}"

    desk = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    # A second tablet whose live feed has dropped: what it shows goes stale.
    stale = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    await stale.route("**/live", lambda route: route.abort())
    try:
        page = await desk.new_page()
        await sign_in(page, staff.url, "foreman-sun", path)
        card = page.get_by_test_id("unassigned").locator(f'[data-job="{first}"]')
        await expect(card).to_contain_text("沪B20001")
        await expect(card).to_contain_text("BRK-010")
        await shoot(page, "floor-01-dispatch-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        other = await stale.new_page()
        await sign_in(other, staff.url, "foreman-sun", path)
        await expect(other.locator(f'[data-job="{first}"]')).to_be_visible()

        # Assign with a tap: technician, bay, planned start.
        form = page.get_by_test_id(f"assign-{first}")
        await form.get_by_label("技师").select_option(label="李军")
        await form.get_by_label("工位").fill("B2")
        await form.get_by_label("计划开工").fill(start)
        await form.get_by_role("button", name="派工").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("已派给 李军，工位 B2")
        lane = page.locator('[data-technician="tech-li"]')
        await expect(lane.locator(f'[data-job="{first}"]')).to_contain_text("B2")
        assigned = await job(stack, first)
        assert (assigned["technician_id"], assigned["bay"], assigned["status"]) == (
            "tech-li",
            "B2",
            "assigned",
        )
        local = datetime.fromisoformat(assigned["planned_start_at"]).astimezone(SHANGHAI)
        assert local.strftime("%H:%M") == start and local.date().isoformat() == day

        # The stale tablet reassigns the same job from what it saw: refused, and told what
        # changed, in Chinese; nothing written.
        stale_form = other.get_by_test_id(f"assign-{first}")
        await stale_form.get_by_label("技师").select_option(label="周涛")
        await stale_form.get_by_label("工位").fill("B5")
        await stale_form.get_by_role("button", name="派工").click()
        changed = other.get_by_test_id("changed")
        await expect(changed).to_contain_text("技师：现在是「李军」")
        await expect(changed).to_contain_text("工位：现在是「B2」")
        await shoot(other, "floor-02-dispatch-stale-zh")
        assert (await job(stack, first))["technician_id"] == "tech-li"

        # The stale tablet assigns the other job; the first tablet sees it live.
        await other.reload()
        form2 = other.get_by_test_id(f"assign-{second}")
        await form2.get_by_label("技师").select_option(label="周涛")
        await form2.get_by_label("工位").fill("B3")
        await form2.get_by_role("button", name="派工").click()
        await expect(other.get_by_test_id("saved")).to_be_visible()
        live_lane = page.locator('[data-technician="tech-zhou"]')
        await expect(live_lane.locator(f'[data-job="{second}"]')).to_contain_text("B3")
        await expect(
            page.get_by_test_id("unassigned").locator(f'[data-job="{second}"]')
        ).to_have_count(0)
        assert (await job(stack, second))["technician_id"] == "tech-zhou"

        # Reassign from the technician's queue.
        queued = page.locator('[data-technician="tech-zhou"]').locator(f'[data-job="{second}"]')
        await queued.get_by_role("button", name="改派").click()
        reform = page.get_by_test_id(f"assign-{second}")
        await reform.get_by_label("技师").select_option(label="李军")
        await reform.get_by_label("工位").fill("B4")
        await reform.get_by_role("button", name="改派").click()
        await expect(lane.locator(f'[data-job="{second}"]')).to_contain_text("B4")
        assert (await job(stack, second))["technician_id"] == "tech-li"
        await shoot(page, "floor-03-dispatch-reassigned-zh")

        # English.
        await page.get_by_test_id("language").click()
        await expect(page.get_by_role("heading", name="Dispatch board")).to_be_visible()
        await expect(lane.locator(f'[data-job="{second}"]')).to_contain_text("Assigned")
        await shoot(page, "floor-04-dispatch-en")
        await page.get_by_test_id("language").click()
    finally:
        await desk.close()
        await stale.close()


async def test_foreman_registers_a_screen_sees_its_address_once_and_withdraws_it(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "foreman-sun", "/foreman/screens")
        form = page.get_by_test_id("register-screen")
        await form.get_by_label("屏幕名称").fill("   ")
        await form.get_by_role("button", name="登记大屏").click()
        await expect(page.locator(".field.invalid")).to_be_visible()
        await form.get_by_label("屏幕名称").fill("客户休息区电视")
        await form.get_by_label("类型").select_option("lounge")
        await page.get_by_test_id("register-screen").get_by_role("button", name="登记大屏").click()
        url = await page.get_by_test_id("screen-url").inner_text()
        assert "/board/lounge?access_token=scr_" in url
        await shoot(page, "floor-05-screen-registered-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
            listed = (await api.get("/board/screens", headers=MANAGER)).json()["items"]
            screen = next(s for s in listed if s["name"] == "客户休息区电视")
            assert screen["variant"] == "lounge" and screen["revoked_at"] is None
            # The address opens the lounge board.
            opened = await api.get(url.removeprefix(stack.url("workorders")))
            assert opened.status_code == 200

        await page.goto(f"{staff.url}/foreman/screens")
        await expect(page.get_by_test_id("screen-url")).to_have_count(0)  # shown once only
        row = page.locator(f'tr[data-screen="{screen["id"]}"]')
        await row.get_by_role("button", name="撤销访问").click()
        await expect(page.locator(f'tr[data-screen="{screen["id"]}"]')).to_contain_text("已撤销")
        async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
            after = (await api.get(f"/board/screens/{screen['id']}", headers=MANAGER)).json()
            assert after["revoked_at"] is not None
            assert (await api.get(url.removeprefix(stack.url("workorders")))).status_code == 401
        await shoot(page, "floor-06-screen-withdrawn-zh")
    finally:
        await context.close()


async def test_the_foreman_pages_are_refused_to_a_technician(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    _, staff = running
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await page.goto(f"{staff.url}/foreman")
        await page.wait_for_url(SIGN_IN_PAGE)
        await page.click('button[data-sub="tech-li"]')
        await page.wait_for_load_state()
        for path in ("/foreman", "/foreman/screens"):
            response = await page.goto(f"{staff.url}{path}")
            assert response is not None and response.status == 403
            assert "无权" in await page.locator("h1").inner_text()
    finally:
        await context.close()


PHONE = {"width": 390, "height": 844}


async def assign_as_foreman(stack: Stack, job_id: str, technician: str, bay: str) -> None:
    async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
        current = await api.get(f"/jobs/{job_id}", headers=MANAGER)
        r = await api.put(
            f"/jobs/{job_id}/assignment",
            headers={**FOREMAN, "If-Match": current.headers["ETag"]},
            json={"technician_id": technician, "bay": bay},
        )
        assert r.status_code == 200, r.text


async def test_technician_clocks_on_pauses_with_a_reason_and_finishes_on_the_phone(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    order = await order_with_jobs(stack, "沪C30003", ("SUS-100", "1.0"), ("AC-300", "0.5"))
    first, second = (j["id"] for j in order["jobs"])
    await assign_as_foreman(stack, first, "tech-zhou", "B7")
    await assign_as_foreman(stack, second, "tech-zhou", "B7")
    context = await browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True)
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "tech-zhou", "/tech")
        card = page.locator(f'[data-job="{first}"]')
        await expect(card).to_contain_text("沪C30003")
        await expect(card).to_contain_text("已派工")
        await shoot(page, "floor-07-my-jobs-phone-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        await card.get_by_role("button", name="开工").click()
        await expect(page.locator(f'[data-job="{first}"] [data-testid=status]')).to_have_text(
            "施工中"
        )
        assert (await job(stack, first))["status"] == "in_progress"

        # One job at a time: the second is refused, said in Chinese, nothing written.
        await page.locator(f'[data-job="{second}"]').get_by_role("button", name="开工").click()
        error = page.locator(f'[data-job="{second}"] [data-testid=clock-error]')
        await expect(error).to_contain_text("您已在另一项作业上计时")
        assert (await job(stack, second))["status"] == "assigned"
        await shoot(page, "floor-08-clock-refused-phone-zh")

        paused = page.locator(f'[data-job="{first}"]')
        await paused.get_by_label("暂停原因").select_option(label="等待配件")
        await paused.get_by_role("button", name="暂停").click()
        await expect(page.locator(f'[data-job="{first}"] [data-testid=status]')).to_have_text(
            "已暂停"
        )
        now = await job(stack, first)
        assert (now["status"], now["pause_reason"]) == ("paused", "waiting_parts")

        # Work dispatched meanwhile appears without a reload.
        later = await order_with_jobs(stack, "沪C30004", ("WHL-050", "0.3"))
        await assign_as_foreman(stack, later["jobs"][0]["id"], "tech-zhou", "B8")
        await expect(page.locator(f'[data-job="{later["jobs"][0]["id"]}"]')).to_contain_text(
            "沪C30004"
        )

        await page.locator(f'[data-job="{first}"]').get_by_role("button", name="开工").click()
        await page.locator(f'[data-job="{first}"]').get_by_role("button", name="完工").click()
        await expect(page.locator(f'[data-job="{first}"] [data-testid=status]')).to_have_text(
            "已完工"
        )
        assert (await job(stack, first))["status"] == "done"
        await shoot(page, "floor-09-my-jobs-done-phone-zh")

        await page.get_by_test_id("language").click()
        await expect(page.get_by_role("heading", name="My jobs")).to_be_visible()
        await shoot(page, "floor-10-my-jobs-phone-en")
        await page.get_by_test_id("language").click()

        # The foreman's board is not the technician's, nor the reverse.
        response = await page.goto(f"{staff.url}/foreman")
        assert response is not None and response.status == 403
    finally:
        await context.close()

    foreman = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await foreman.new_page()
        await page.goto(f"{staff.url}/tech")
        await page.wait_for_url(SIGN_IN_PAGE)
        await page.click('button[data-sub="foreman-sun"]')
        await page.wait_for_load_state()
        response = await page.goto(f"{staff.url}/tech")
        assert response is not None and response.status == 403
    finally:
        await foreman.close()


async def finished_and_in_qc(stack: Stack, plate: str, technician: str) -> tuple[str, str]:
    """A job its technician has finished, its order moved to QC (as the workshop would)."""
    order = await order_with_jobs(stack, plate, ("BRK-020", "1.0"))
    job_id = order["jobs"][0]["id"]
    await assign_as_foreman(stack, job_id, technician, "B1")
    tech = {"Authorization": f"Bearer {token('technician', sub=technician)}"}
    async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
        assert (await api.post(f"/jobs/{job_id}/clock-on", headers=tech)).status_code == 201
        r = await api.post(f"/jobs/{job_id}/clock-off", headers=tech, json={})
        assert r.status_code == 200, r.text
        current = await api.get(f"/repair-orders/{order['id']}", headers=MANAGER)
        r = await api.post(
            f"/repair-orders/{order['id']}/transitions",
            headers={**FOREMAN, "If-Match": current.headers["ETag"]},
            json={"to": "qc"},
        )
        assert r.status_code == 200, r.text
    return order["id"], job_id


async def test_qc_fails_a_job_with_its_reason_and_the_technician_sees_it(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    _, job_id = await finished_and_in_qc(stack, "沪D40004", "tech-li")
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "qc-wu", "/qc")
        form = page.get_by_test_id(f"qc-{job_id}")
        await expect(page.locator(f'[data-job="{job_id}"]')).to_contain_text("沪D40004")
        await form.get_by_label("紧固力矩已检查").check()
        await form.get_by_label("已路试").check()
        key = await form.locator("[name=idempotency_key]").input_value()
        await form.get_by_role("button", name="不通过，返工").click()
        form = page.get_by_test_id(f"qc-{job_id}")
        await expect(form.locator(".field.invalid .error")).to_contain_text("不通过时必须写明原因")
        assert await form.locator("[name=idempotency_key]").input_value() == key
        await expect(form.get_by_label("已路试")).to_be_checked()
        await shoot(page, "floor-11-qc-reason-required-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        await form.get_by_label("不通过的原因（不通过时必填）").fill("制动时仍有异响")
        await form.get_by_role("button", name="不通过，返工").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("作业已退回技师返工")
        await expect(page.locator(f'[data-job="{job_id}"]')).to_have_count(0)
        async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
            verdicts = (await api.get(f"/jobs/{job_id}/qc", headers=MANAGER)).json()["items"]
            assert [(v["passed"], v["reason"], v["road_test"]) for v in verdicts] == [
                (False, "制动时仍有异响", True)
            ]
            assert (await job(stack, job_id))["status"] == "rework"
        await shoot(page, "floor-12-qc-failed-zh")
    finally:
        await context.close()

    phone = await browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True)
    try:
        page = await phone.new_page()
        await sign_in(page, staff.url, "tech-li", "/tech")
        reason = page.locator(f'[data-job="{job_id}"] [data-testid=qc-reason]')
        await expect(reason).to_contain_text("制动时仍有异响")
        await shoot(page, "floor-13-sent-back-phone-zh")
        response = await page.goto(f"{staff.url}/qc")
        assert response is not None and response.status == 403
    finally:
        await phone.close()


async def ready_to_settle(stack: Stack, plate: str) -> str:
    """An order whose job passed QC, ready to settle."""
    order_id, job_id = await finished_and_in_qc(stack, plate, "tech-zhou")
    async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
        r = await api.post(f"/jobs/{job_id}/qc", headers=auth("qc"), json={"passed": True})
        assert r.status_code == 201, r.text
        current = await api.get(f"/repair-orders/{order_id}", headers=MANAGER)
        r = await api.post(
            f"/repair-orders/{order_id}/transitions",
            headers={**FOREMAN, "If-Match": current.headers["ETag"]},
            json={"to": "ready"},
        )
        assert r.status_code == 200, r.text
    return order_id


async def test_cashier_settles_with_a_discount_a_manager_approves_and_prints(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    order_id = await ready_to_settle(stack, "沪E50005")
    wo = stack.url("workorders")
    async with httpx.AsyncClient(base_url=wo, timeout=10) as api:
        preview = (
            await api.get(f"/repair-orders/{order_id}/invoice-preview", headers=auth("cashier"))
        ).json()
    due = preview["customer_due"]
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "cashier-zheng", "/cashier")
        await page.locator(f'tr[data-order="{order_id}"]').get_by_role("link").click()
        await expect(page.get_by_test_id("due")).to_contain_text(due)
        customer = page.get_by_test_id("totals").locator('[data-payer="customer"]')
        await expect(customer).to_contain_text(preview["totals"][0]["gross"])
        await shoot(page, "floor-14-cashier-preview-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        # Payments that do not add up: said next to the amount, in Chinese.
        form = page.get_by_test_id("settle")
        await form.get_by_label("金额 1").fill("1.00")
        key = await form.locator("[name=idempotency_key]").input_value()
        await form.get_by_role("button", name="确认结算").click()
        await expect(page.locator("#payments-err")).to_contain_text("收款合计须等于客户应付金额")
        assert await page.locator("[name=idempotency_key]").input_value() == key

        # A 20% discount is above the cashier's limit: a manager approves on the spot.
        form = page.get_by_test_id("settle")
        await form.get_by_label("折扣（百分比或金额）").fill("20")
        await form.get_by_label("折扣原因").fill("老客户")
        await form.get_by_label("金额 1").fill(due)
        await form.get_by_role("button", name="确认结算").click()
        await expect(page.get_by_test_id("settle-error")).to_contain_text("需经理当场批准")
        await shoot(page, "floor-15-cashier-needs-manager-zh")
        async with httpx.AsyncClient(base_url=wo, timeout=10) as api:
            order = (await api.get(f"/repair-orders/{order_id}", headers=MANAGER)).json()
            assert order["status"] == "ready"

        await page.get_by_test_id("manager").click()
        await page.click('button[data-sub="manager-wang"]')
        await page.wait_for_url(f"**/cashier/orders/{order_id}")
        form = page.get_by_test_id("settle")
        await form.get_by_label("折扣（百分比或金额）").fill("20")
        await form.get_by_label("折扣原因").fill("老客户")
        await form.get_by_label("付款方式 1").select_option(label="微信")
        discounted = await page.evaluate(f"(Math.round({due} * 0.8 * 100) / 100).toFixed(2)")
        await form.get_by_label("金额 1").fill(discounted)
        await form.get_by_role("button", name="确认结算").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("已结算")
        async with httpx.AsyncClient(base_url=wo, timeout=10) as api:
            order = (await api.get(f"/repair-orders/{order_id}", headers=MANAGER)).json()
            assert order["status"] == "settled"
            assert order["invoice"]["payments"] == [{"method": "wechat", "amount": discounted}]
        await shoot(page, "floor-16-cashier-settled-zh")

        # Printing: the print is recorded and the invoice PDF comes back.
        pdfs: list[Any] = []
        page.on("response", lambda r: pdfs.append(r) if "invoice.pdf" in r.url else None)
        await page.get_by_test_id("print").get_by_role("button").click(no_wait_after=True)

        async def printed() -> bool:
            return bool(pdfs)

        await eventually(printed, what="the invoice PDF")
        assert pdfs[0].status == 200 and pdfs[0].headers["content-type"] == "application/pdf"
        async with httpx.AsyncClient(base_url=wo, timeout=10) as api:
            prints = (
                await api.get(f"/repair-orders/{order_id}/invoice/prints", headers=MANAGER)
            ).json()["items"]
            assert len(prints) == 1 and prints[0]["printed_by"] == "manager-wang"
    finally:
        await context.close()


async def test_technician_asks_for_a_part_and_reports_extra_work_with_a_photo(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    order = await order_with_jobs(stack, "沪F60006", ("BRK-030", "1.0"))
    job_id = order["jobs"][0]["id"]
    await assign_as_foreman(stack, job_id, "tech-li", "B2")
    tech = {"Authorization": f"Bearer {token('technician', sub='tech-li')}"}
    async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
        assert (await api.post(f"/jobs/{job_id}/clock-on", headers=tech)).status_code == 201
    context = await browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True)
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "tech-li", "/tech")
        await page.locator(f'[data-job="{job_id}"]').get_by_test_id("details").click()
        await page.wait_for_url(f"**/tech/jobs/{job_id}")
        photo = await page.screenshot()  # a picture the phone's camera would have taken

        # The library: one document for the operation, one for cars of this VIN's maker,
        # one for neither (set up as the records clerk would).
        clerk = auth("records_clerk")
        async with httpx.AsyncClient(base_url=stack.url("records"), timeout=10) as api:
            stored = await api.post(
                "/files", headers=clerk, files={"file": ("d.png", photo, "image/png")}
            )
            file_id = stored.json()["id"]
            docs = {}
            for title, fields in (
                ("制动钳维修手册", {"category": "manual", "op_codes": ["BRK-030"]}),
                (
                    "本车型电路图",
                    {
                        "category": "wiring_diagram",
                        "applies_to": [{"vin_prefix": order["vin"][:8]}],
                    },
                ),
                (
                    "发动机数据表",
                    {
                        "category": "data_sheet",
                        "op_codes": ["ENG-999"],
                        "applies_to": [{"make": "Toyota"}],
                    },
                ),
            ):
                r = await api.post(
                    "/library/documents",
                    headers=clerk,
                    json={"title": title, "file_id": file_id, **fields},
                )
                assert r.status_code == 201, r.text
                docs[title] = r.json()["id"]
        await page.reload()
        listed = page.get_by_test_id("documents")
        await expect(listed.locator(f'[data-document="{docs["制动钳维修手册"]}"]')).to_be_visible()
        await expect(listed.locator(f'[data-document="{docs["本车型电路图"]}"]')).to_be_visible()
        await expect(listed.locator(f'[data-document="{docs["发动机数据表"]}"]')).to_have_count(0)
        content = await page.request.get(f"{staff.url}/tech/library/{docs['制动钳维修手册']}")
        assert content.status == 200 and await content.body() == photo

        part = page.get_by_test_id("part")
        await part.get_by_label("配件号").fill("BP-4411")
        await part.get_by_label("数量").fill("0")
        await part.get_by_role("button", name="申请配件").click()
        part = page.get_by_test_id("part")
        await expect(part.locator(".field.invalid .error")).to_be_visible()
        await part.get_by_label("数量").fill("2")
        await part.get_by_role("button", name="申请配件").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("配件申请已提交")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        extra = page.get_by_test_id("extra")
        await extra.get_by_label("发现的问题").fill("前刹车片磨损至2mm")
        await extra.get_by_label("照片").set_input_files(
            {"name": "pads.png", "mimeType": "image/png", "buffer": photo}
        )
        await extra.get_by_label("工时代码").fill("BRK-010")
        await extra.get_by_label("标准工时").fill("0.8")
        await extra.get_by_label("项目").fill("更换前刹车片")
        await extra.get_by_role("button", name="报告增项").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("增项已报告")
        await shoot(page, "floor-17-extra-work-phone-zh")
        await page.goto(f"{staff.url}/tech/jobs/{job_id}")
        await shoot(page, "floor-18-job-documents-phone-zh")

        async with httpx.AsyncClient(timeout=10) as api:
            detail = (
                await api.get(
                    f"{stack.url('workorders')}/repair-orders/{order['id']}", headers=FOREMAN
                )
            ).json()
            parts = [(p["part_number"], p["quantity"], p["status"]) for p in detail["part_lines"]]
            assert ("BP-4411", "2.000", "requested") in parts or (
                "BP-4411",
                "2",
                "requested",
            ) in parts
            [found] = detail["extra_work"]
            assert found["findings"] == "前刹车片磨损至2mm" and found["job_id"] == job_id
            assert found["proposed_lines"][0]["op_code"] == "BRK-010"
            [file_id] = found["photo_file_ids"]
            stored = await api.get(f"{stack.url('records')}/files/{file_id}", headers=tech)
            assert stored.status_code == 200, stored.text
            assert stored.json()["size"] == len(photo)
    finally:
        await context.close()


async def test_cashier_is_told_when_the_order_changed_since_the_preview(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    order_id = await ready_to_settle(stack, "沪G70007")
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "cashier-zheng", f"/cashier/orders/{order_id}")
        await expect(page.get_by_test_id("due")).to_be_visible()
        # Meanwhile the workshop takes the car back in for extra work.
        async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
            current = await api.get(f"/repair-orders/{order_id}", headers=MANAGER)
            r = await api.post(
                f"/repair-orders/{order_id}/transitions",
                headers={**FOREMAN, "If-Match": current.headers["ETag"]},
                json={"to": "in_progress", "reason": "extra work"},
            )
            assert r.status_code == 200, r.text
        await page.get_by_test_id("settle").get_by_role("button", name="确认结算").click()
        await expect(page.get_by_test_id("changed")).to_contain_text("状态：现在是「维修中」")
        await shoot(page, "floor-19-cashier-stale-zh")
        async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
            order = (await api.get(f"/repair-orders/{order_id}", headers=MANAGER)).json()
            assert order["status"] == "in_progress" and order["invoice"] is None
    finally:
        await context.close()
