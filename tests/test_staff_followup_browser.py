"""The follow-up agent's pages of the staff app in Debian's chromium, against followup and
the staff app as real processes: a follow-up call (no answer, a refused call-back time,
reached) ending in a low survey that opens a complaint, worked through the pages to its
close (take, act, root cause after a stale edit, resolve, close), a case opened at the desk
and escalated to the manager; role refusals; both languages, accessibility and touch
target sizes."""

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jwt
import pytest
import pytest_asyncio

from shared.contracts import CustomerSnapshot
from shared.contracts.reception import CustomerRegistered
from shared.contracts.workorders import DeliveredJob, RepairOrderDelivered
from shared.events import utcnow
from tests.flow import publish_event
from tests.harness import ServiceProcess, Stack, auth, eventually, round_the_clock
from tests.staff_pages import (
    TABLET_LANDSCAPE,
    launch,
    no_serious_violations,
    require_chromium,
    shoot,
    small_targets,
    staff_process,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
SHANGHAI = ZoneInfo("Asia/Shanghai")
AGENT = auth("followup_agent")
MANAGER = auth("manager")
SIGN_IN_PAGE = re.compile(r"/signin/dev\?next=")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, ServiceProcess]]:
    require_chromium()
    root = tmp_path_factory.mktemp("followup-pages")
    # A major case is overdue about two seconds after it is opened and handed to the demo
    # manager at the timer's next look (five times a second); a minor one has 72 hours.
    stack = Stack(
        root,
        services=("followup",),
        extra_env={
            "FOLLOWUP_COMPLAINT_DUE_HOURS_MAJOR": "0.0006",
            "FOLLOWUP_TIMER_INTERVAL": "0.2",
            "FOLLOWUP_DEFAULT_MANAGER": "manager-wang",
            # Deadlines count working hours: open around the clock, so the hour the test
            # runs at does not matter.
            **round_the_clock(),
        },
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


async def sign_in(page: Any, base: str, sub: str, next_path: str) -> None:
    await page.goto(f"{base}{next_path}")
    await page.wait_for_url(SIGN_IN_PAGE)
    await page.click(f'button[data-sub="{sub}"]')
    await page.wait_for_url(lambda url: url == f"{base}{next_path}")


async def delivered_car(stack: Stack, *, name: str, plate: str, number: str) -> dict[str, Any]:
    """Setup: the customer registered at reception and their car delivered 14 days ago, as
    reception and workorders announce them; returns followup's visit, due and still open."""
    customer = CustomerSnapshot(id=uuid.uuid4(), name=name, mobile="13912345678")
    registered = CustomerRegistered(branch="BR01", customer=customer, registered_at=utcnow())
    await publish_event(stack.nats.url, registered, str(customer.id), "RECEPTION")
    api = stack.url("followup")
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:

        async def known() -> bool:
            r = await client.get(f"/contacts/{customer.id}", headers=AGENT)
            return r.status_code == 200

        await eventually(known, what="the contact registered")
        delivery = RepairOrderDelivered(
            repair_order_id=uuid.uuid4(),
            number=number,
            branch="BR01",
            customer_id=customer.id,
            vehicle_id=uuid.uuid4(),
            vin="LSVAU218XN2183294",
            plate=plate,
            advisor="advisor-zhao",
            odometer_km=42000,
            delivered_at=utcnow() - timedelta(days=14),
            jobs=[
                DeliveredJob(
                    job_id=uuid.uuid4(),
                    op_code="BRK-010",
                    op_group="BRAKES",
                    technician_id="tech-li",
                )
            ],
        )
        await publish_event(stack.nats.url, delivery, str(delivery.repair_order_id), "WORKORDERS")

        async def visit() -> dict[str, Any] | None:
            r = await client.get(
                "/visits", params={"repair_order_id": str(delivery.repair_order_id)}, headers=AGENT
            )
            items = r.json()["items"]
            return dict(items[0]) if items else None

        return await eventually(visit, what="the follow-up visit owed for the delivery")


async def followup_get(stack: Stack, path: str, **params: Any) -> Any:
    async with httpx.AsyncClient(base_url=stack.url("followup"), timeout=10) as client:
        r = await client.get(path, params=params, headers=MANAGER)
        assert r.status_code == 200, r.text
        return r.json()


async def test_a_call_ends_in_a_low_survey_whose_complaint_is_worked_to_its_close(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    visit = await delivered_car(stack, name="刘洋", plate="沪A52013", number="RO-2026-005201")
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        # The work list: the visit is overdue, so it is on today's list.
        await sign_in(page, staff.url, "followup-chen", "/followup")
        row = page.locator(f'[data-visit="{visit["id"]}"]')
        await expect(row).to_contain_text("沪A52013")
        await expect(row).to_contain_text("刘洋")
        await expect(row).to_contain_text("已逾期")
        await shoot(page, "followup-01-work-list-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []
        await page.get_by_test_id("view-overdue").click()
        await expect(row).to_be_visible()

        # The call: the script names the customer, the agent and the order.
        await row.get_by_role("link", name="去回访").click()
        await expect(page.get_by_test_id("script")).to_contain_text("刘洋")
        await expect(page.get_by_test_id("script")).to_contain_text("陈芳")
        await expect(page.get_by_test_id("script")).to_contain_text("RO-2026-005201")
        await expect(page.get_by_test_id("order-jobs")).to_contain_text("BRK-010")
        await shoot(page, "followup-02-visit-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        # No answer: counted, and the next attempt moves later.
        before = await page.get_by_test_id("next-attempt").inner_text()
        calls = page.get_by_test_id("call-form")
        await calls.get_by_label("无人接听").check()
        await calls.get_by_role("button", name="记录这次拨打").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("已记录拨打：无人接听")
        await expect(page.get_by_test_id("attempts")).to_have_text("1")
        assert await page.get_by_test_id("next-attempt").inner_text() > before

        # A call-back time in the past: refused next to the field, in Chinese, same key.
        calls = page.get_by_test_id("call-form")
        key = await calls.locator("[name=idempotency_key]").input_value()
        past = (datetime.now(SHANGHAI) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        await calls.get_by_label("约定回拨").check()
        await calls.get_by_label("回拨时间").fill(past)
        await calls.get_by_role("button", name="记录这次拨打").click()
        calls = page.get_by_test_id("call-form")
        await expect(calls.locator(".field.invalid .error")).to_contain_text("须晚于现在")
        assert await calls.locator("[name=idempotency_key]").input_value() == key
        await expect(calls.get_by_label("约定回拨")).to_be_checked()
        await shoot(page, "followup-03-call-back-refused-zh")
        attempts = await followup_get(stack, f"/visits/{visit['id']}/calls")
        assert [c["result"] for c in attempts["items"]] == ["no_answer"]

        # Reached: the survey filled in as the customer answers.
        await calls.get_by_label("已接通").check()
        await calls.get_by_role("button", name="记录这次拨打").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("已接通")
        survey = page.get_by_test_id("survey-form")
        await survey.get_by_role("group", name="总体满意度（1–10）").get_by_label("5").check()
        await survey.get_by_role("group", name="推荐意愿 NPS（0–10）").get_by_label("3").check()
        answers = {
            "reliability": (7, 3),
            "responsiveness": (6, 5),
            "assurance": (6, 4),
            "empathy": (5, 5),
            "tangibles": (5, 6),
        }
        dims = {
            "reliability": "可靠性：一次修好",
            "responsiveness": "响应性：及时处理",
            "assurance": "保证性：专业可信",
            "empathy": "关怀性：理解需求",
            "tangibles": "有形性：环境设施",
        }
        for dim, (expected, got) in answers.items():
            await survey.get_by_label(f"{dims[dim]} · 期望").select_option(str(expected))
            await survey.get_by_label(f"{dims[dim]} · 感受").select_option(str(got))
        await survey.get_by_label("不满意的方面").select_option("repair_quality")
        await survey.get_by_label("客户原话").fill("刹车还是有异响")
        await shoot(page, "followup-04-survey-filled-zh")
        await survey.get_by_role("button", name="保存问卷").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("问卷已保存")
        await expect(page.get_by_test_id("visit-status")).to_contain_text("已完成问卷")
        await expect(page.get_by_test_id("survey-case")).to_be_visible()
        await shoot(page, "followup-05-surveyed-zh")
        recorded = await followup_get(stack, f"/visits/{visit['id']}/survey")
        assert (recorded["overall"], recorded["nps"], recorded["comments"]) == (
            5,
            3,
            "刹车还是有异响",
        )
        assert {
            d: (s["expectation"], s["perception"]) for d, s in recorded["servqual"].items()
        } == answers
        case_id = recorded["complaint_id"]
        assert case_id

        # The case the low survey opened, with the visit and the order behind it.
        await page.get_by_test_id("survey-case").get_by_role("link").click()
        await page.wait_for_url(f"**/followup/complaints/{case_id}")
        await expect(page.get_by_test_id("case-status")).to_have_text("待受理")
        await expect(page.get_by_test_id("case-visit")).to_contain_text("沪A52013")
        await expect(page.get_by_test_id("case-survey")).to_contain_text("刹车还是有异响")
        await expect(page.get_by_test_id("order-jobs")).to_contain_text("李军")
        await expect(page.get_by_test_id("history").locator("li")).to_have_count(1)
        await shoot(page, "followup-06-case-opened-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        # Take it: the agent's own, in progress.
        await page.get_by_test_id("take-form").get_by_role("button", name="受理并开始处理").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("已受理")
        await expect(page.get_by_test_id("case-status")).to_have_text("处理中")
        await expect(page.get_by_test_id("owner")).to_have_text("陈芳")
        case = await followup_get(stack, f"/complaints/{case_id}")
        assert (case["status"], case["owner"], case["severity"]) == (
            "in_progress",
            "followup-chen",
            "minor",
        )

        # Act.
        acting = page.get_by_test_id("action-form")
        await acting.get_by_label("采取的措施").fill("致电客户致歉，约定周六到店复查刹车")
        await acting.get_by_role("button", name="记录措施").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("措施已记录")
        await expect(page.get_by_test_id("history")).to_contain_text("约定周六到店复查刹车")

        # Resolving without a root cause: told next to the root cause's field.
        moving = page.get_by_test_id("move-form")
        await moving.get_by_role("button", name="标记为已解决").click()
        cause = page.get_by_test_id("cause-form")
        await expect(cause.locator(".field.invalid .error")).to_contain_text("解决前须写明根本原因")
        await shoot(page, "followup-07-root-cause-required-zh")
        assert (await followup_get(stack, f"/complaints/{case_id}"))["status"] == "in_progress"

        # Another desk changes the case meanwhile: the root cause saved from the page read
        # before is refused (412) and told what changed; nothing written.
        async with httpx.AsyncClient(base_url=stack.url("followup"), timeout=10) as client:
            now = await client.get(f"/complaints/{case_id}", headers=MANAGER)
            r = await client.patch(
                f"/complaints/{case_id}",
                headers={**MANAGER, "If-Match": now.headers["ETag"]},
                json={"technician_id": "tech-zhou"},
            )
            assert r.status_code == 200, r.text
        cause = page.get_by_test_id("cause-form")
        await cause.get_by_label("根本原因").fill("刹车片安装时未清洁卡钳导向销")
        await cause.get_by_label("补偿金额 (CNY)").fill("200")
        await cause.get_by_label("补偿说明").fill("赠送一次保养")
        await cause.get_by_role("button", name="保存原因与补偿").click()
        cause = page.get_by_test_id("cause-form")
        await expect(cause.get_by_test_id("changed")).to_contain_text("技师：现在是「周涛」")
        await expect(cause.get_by_label("根本原因")).to_have_value("刹车片安装时未清洁卡钳导向销")
        await shoot(page, "followup-08-stale-zh")
        assert (await followup_get(stack, f"/complaints/{case_id}"))["root_cause"] is None

        # Saved again over what is there now; then resolved and closed.
        await cause.get_by_role("button", name="保存原因与补偿").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("已保存")
        await expect(page.get_by_test_id("root-cause")).to_have_text("刹车片安装时未清洁卡钳导向销")
        await page.get_by_test_id("move-form").get_by_role("button", name="标记为已解决").click()
        await expect(page.get_by_test_id("case-status")).to_have_text("已解决待确认")
        await page.get_by_test_id("move-form").get_by_label("说明").fill("客户复查后满意")
        await page.get_by_test_id("move-form").get_by_role("button", name="客户认可，结案").click()
        await expect(page.get_by_test_id("case-status")).to_have_text("已结案")
        await expect(page.get_by_test_id("history")).to_contain_text("客户复查后满意")
        await shoot(page, "followup-09-closed-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        case = await followup_get(stack, f"/complaints/{case_id}")
        assert (case["status"], case["root_cause"], case["compensation_amount"]) == (
            "closed",
            "刹车片安装时未清洁卡钳导向销",
            "200.00",
        )
        history = await followup_get(stack, f"/complaints/{case_id}/history")
        steps = [(e["kind"], (e["changes"] or {}).get("status"), e["by"]) for e in history["items"]]
        assert [s[:2] for s in steps] == [
            ("opened", None),  # by the survey, the agent's own
            ("status", ["open", "in_progress"]),  # taken
            ("action", None),
            ("changed", None),  # the other desk: the technician
            ("changed", None),  # root cause and compensation
            ("status", ["in_progress", "resolved"]),
            ("status", ["resolved", "closed"]),
        ]
        manager = jwt.decode(MANAGER["Authorization"][7:], options={"verify_signature": False})
        assert steps[3][2] == manager["sub"]
        assert {s[2] for i, s in enumerate(steps) if i != 3} == {"followup-chen"}

        # English.
        await page.get_by_test_id("language").click()
        await expect(page.get_by_role("heading", name="Complaint · Repair quality")).to_be_visible()
        await expect(page.get_by_test_id("case-status")).to_have_text("Closed")
        await shoot(page, "followup-10-closed-en")
        await page.goto(f"{staff.url}/followup/visits/{visit['id']}")
        await expect(page.get_by_test_id("visit-status")).to_contain_text("Surveyed")
        await shoot(page, "followup-11-visit-surveyed-en")
        await page.get_by_test_id("language").click()
    finally:
        await context.close()


async def test_a_case_opened_at_the_desk_is_escalated_to_the_manager(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "followup-chen", "/followup/complaints")
        form = page.get_by_test_id("complaint-form")
        key = await form.locator("[name=idempotency_key]").input_value()
        await form.get_by_label("来源").select_option("walk_in")
        await form.get_by_label("严重程度").select_option("major")
        await form.get_by_label("类别").select_option("staff_attitude")
        await form.get_by_role("button", name="立案").click()
        form = page.get_by_test_id("complaint-form")
        await expect(form.locator(".field.invalid .error")).to_be_visible()
        await expect(form.get_by_label("投诉内容")).to_have_attribute("aria-invalid", "true")
        assert await form.locator("[name=idempotency_key]").input_value() == key
        await shoot(page, "followup-12-open-case-refused-zh")
        assert (await followup_get(stack, "/complaints", severity="major"))["items"] == []

        await form.get_by_label("投诉内容").fill("前台接待态度冷淡，等了半小时没人理")
        await form.get_by_role("button", name="立案").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("已立案")
        case_id = page.url.split("/followup/complaints/")[1].split("?")[0]

        async def escalated() -> dict[str, Any] | None:
            case = await followup_get(stack, f"/complaints/{case_id}")
            return dict(case) if case["escalated_at"] else None

        case = await eventually(escalated, what="the major case escalated")
        assert case["escalated_to"] == "manager-wang"
        await page.get_by_role("link", name="已升级").click()
        await expect(page.locator(f'[data-case="{case_id}"]')).to_contain_text("王刚")
        await expect(page.locator(f'[data-case="{case_id}"]')).to_contain_text("重大")
        await shoot(page, "followup-13-escalations-agent-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []
    finally:
        await context.close()

    # The manager reads the cases handed to them, and the case with its history.
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "manager-wang", "/followup/escalations")
        row = page.locator(f'[data-case="{case_id}"]')
        await expect(row).to_contain_text("服务态度")
        await row.get_by_role("link").click()
        await expect(page.get_by_test_id("history")).to_contain_text("升级至经理")
        await expect(page.get_by_test_id("owner")).to_have_text("王刚")
        await shoot(page, "followup-14-escalated-case-manager-zh")
    finally:
        await context.close()


async def test_the_followup_pages_are_refused_to_other_roles(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    visit = await delivered_car(stack, name="赵雷", plate="沪C77001", number="RO-2026-007701")
    async with httpx.AsyncClient(base_url=stack.url("followup"), timeout=10) as client:
        r = await client.post(
            "/complaints",
            headers=AGENT,
            json={
                "source": "call",
                "severity": "minor",
                "category": "price",
                "description": "账单比报价高",
                "repair_order_id": visit["repair_order_id"],
            },
        )
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]

    # The dev sign-in lists a follow-up agent, who lands on the work list.
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await page.goto(f"{staff.url}/signin/dev")
        agent = page.locator('button[data-sub="followup-chen"]')
        await expect(agent).to_contain_text("陈芳")
        await expect(agent).to_contain_text("回访专员")
        await agent.click()
        await page.wait_for_url(f"{staff.url}/followup")
    finally:
        await context.close()

    pages = (
        "/followup",
        f"/followup/visits/{visit['id']}",
        "/followup/complaints",
        f"/followup/complaints/{case_id}",
        "/followup/escalations",
    )
    for sub in ("tech-li", "advisor-zhao", "foreman-sun", "cashier-zheng"):
        context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
        try:
            page = await context.new_page()
            await page.goto(f"{staff.url}/followup")
            await page.wait_for_url(SIGN_IN_PAGE)
            await page.click(f'button[data-sub="{sub}"]')
            await page.wait_for_load_state()
            for path in pages:
                response = await page.goto(f"{staff.url}{path}")
                assert response is not None and response.status == 403, (sub, path)
                assert "无权" in await page.locator("h1").inner_text()
            # A form posted anyway (with the user's own CSRF token): refused, nothing done.
            csrf = await page.locator('meta[name="csrf-token"]').get_attribute("content")
            for path, form in (
                (f"/followup/complaints/{case_id}/actions", {"action": "x", "etag": '"1"'}),
                (f"/followup/complaints/{case_id}/take", {"etag": '"1"'}),
                (f"/followup/visits/{visit['id']}/calls", {"result": "reached"}),
                (f"/followup/visits/{visit['id']}/survey", {"overall": "9", "nps": "9"}),
            ):
                answer = await page.request.post(
                    f"{staff.url}{path}", form={"csrf": csrf or "", **form}, max_redirects=0
                )
                assert answer.status == 403, (sub, path)
            if sub == "tech-li":
                await shoot(page, "followup-15-refused-technician-zh")
        finally:
            await context.close()
    history = await followup_get(stack, f"/complaints/{case_id}/history")
    assert [e["kind"] for e in history["items"]] == ["opened"]
    calls = await followup_get(stack, f"/visits/{visit['id']}/calls")
    assert calls["items"] == []
    assert (await followup_get(stack, f"/visits/{visit['id']}"))["status"] == "open"
