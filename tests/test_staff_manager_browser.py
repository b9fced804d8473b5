"""The service manager's pages of the staff app in Debian's chromium, against workorders,
followup, records and the staff app as real processes: a day of deliveries published as
workorders publishes them (one late, one a comeback of another), surveys and complaints
recorded through followup's API; the dashboard's figures equal records' report, a figure
drills down to the orders behind it, complaints by severity and age, technicians, scheduled
reports, discount approval on the cashier's page; role refusals; both languages,
accessibility and touch target sizes at a tablet's 1024×768."""

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from services.staff.pages.manager.figures import shown_value
from tests.flow import publish_event
from tests.harness import ServiceProcess, Stack, auth, eventually
from tests.staff_pages import (
    TABLET_LANDSCAPE,
    launch,
    no_serious_violations,
    require_chromium,
    shoot,
    small_targets,
    staff_process,
)
from tests.test_records_reports import Month
from tests.test_staff_floor_browser import ready_to_settle

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
SHANGHAI = ZoneInfo("Asia/Shanghai")
MANAGER = auth("manager")
AGENT = auth("followup_agent")
SIGN_IN_PAGE = re.compile(r"/signin/dev\?next=")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, ServiceProcess]]:
    require_chromium()
    root = tmp_path_factory.mktemp("manager")
    stack = Stack(
        root,
        services=("workorders", "followup", "records"),
        extra_env={
            "RECORDS_FILES_DIR": str(root / "files"),
            "RECORDS_REPORT_CHECK_INTERVAL_SECONDS": "1",
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


def today_at(hour: int, minute: int = 0) -> datetime:
    """A time of the branch's current local day, as UTC (the day's report holds it)."""
    day = datetime.now(SHANGHAI).date()
    return datetime.combine(day, time(hour, minute), SHANGHAI).astimezone(UTC)


async def publish(stack: Stack, events: list[Any]) -> None:
    for event in events:
        subject = str(getattr(event, "repair_order_id", None) or event.clock_id)
        await publish_event(stack.nats.url, event, subject, "WORKORDERS")


async def visit_of(stack: Stack, order_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.url("followup"), timeout=10) as api:

        async def found() -> dict[str, Any] | None:
            r = await api.get("/visits", params={"repair_order_id": order_id}, headers=AGENT)
            assert r.status_code == 200, r.text
            items = r.json()["items"]
            return items[0] if items else None

        return await eventually(found, what=f"followup's visit of {order_id}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def day(running: tuple[Stack, ServiceProcess]) -> dict[str, Any]:
    """Today: A on time (brakes, tech-li), B late (engine, tech-zhou), C on time but the
    brakes of A's car again (followup flags the comeback); A surveyed well, B badly (a major
    complaint opened by followup), a minor complaint about C by phone."""
    stack, _ = running
    m = Month()
    a, b, c = m.order("A"), m.order("B"), m.order("C")
    m.opened(a, today_at(8))
    ja = m.job(a, "BRAKES", "repair", "tech-li", "2.0")
    m.clocked(a, ja, today_at(8, 30), "1.5")
    m.delivered(a, today_at(10), promised=today_at(10, 30))
    m.settled(a, today_at(10), ("labour", "customer", "2.0", "600"))
    m.opened(b, today_at(8, 10))
    jb = m.job(b, "ENGINE", "repair", "tech-zhou", "1.0")
    m.clocked(b, jb, today_at(8, 30), "1.2")
    m.delivered(b, today_at(11), promised=today_at(10))
    m.settled(b, today_at(11), ("labour", "warranty", "1.0", "300"))
    await publish(stack, m.events)
    await visit_of(stack, str(a.id))  # A is known to followup before its comeback arrives
    m.events = []
    m.opened(c, today_at(11))
    jc = m.job(c, "BRAKES", "repair", "tech-li", "1.0")
    m.clocked(c, jc, today_at(11), "1.0")
    m.delivered(c, today_at(12, 30), promised=today_at(13))
    await publish(stack, m.events)

    async with httpx.AsyncClient(base_url=stack.url("followup"), timeout=10) as api:
        for order, overall, nps in ((a, 9, 10), (b, 3, 2)):
            visit = await visit_of(stack, str(order.id))
            r = await api.post(
                f"/visits/{visit['id']}/survey",
                json={"overall": overall, "nps": nps},
                headers=AGENT,
            )
            assert r.status_code == 201, r.text
        await visit_of(stack, str(c.id))
        r = await api.post(
            "/complaints",
            json={
                "source": "call",
                "severity": "minor",
                "category": "waiting_time",
                "description": "取车时等了四十分钟",
                "repair_order_id": str(c.id),
            },
            headers=AGENT,
        )
        assert r.status_code == 201, r.text

        async def comeback() -> bool:
            r = await api.get("/comebacks", headers=AGENT)
            return any(x["repair_order_id"] == str(c.id) for x in r.json()["items"])

        await eventually(comeback, what="the comeback of A's brakes")

    on = datetime.now(SHANGHAI).date().isoformat()
    period = {"period": "day", "on": on, "lang": "zh-CN"}
    async with httpx.AsyncClient(base_url=stack.url("records"), timeout=30) as rec:

        async def reported() -> dict[str, Any] | None:
            r = await rec.get("/reports/kpis", params=period, headers=MANAGER)
            assert r.status_code == 200, r.text
            k = {x["id"]: x for x in r.json()["kpis"]}
            ready = (
                k["repair_orders_delivered"]["value"] == 3
                and k["first_time_fix_rate"]["numerator"] == 2
                and k["csi"]["denominator"] == 2
                and k["complaint_rate"]["numerator"] == 2
                and k["follow_up_rate"]["numerator"] == 2
            )
            return r.json() if ready else None

        await eventually(reported, timeout=30, what="the day in records' report")
    return {"orders": {"A": a, "B": b, "C": c}, "on": on}


async def backdate_schedule(stack: Stack, schedule_id: str, days: int) -> None:
    """Set the schedule's creation back, as if it had been made `days` ago (records owes a
    schedule only the runs due since it exists)."""
    import uuid

    from sqlalchemy import update
    from sqlalchemy.ext.asyncio import create_async_engine

    from services.records.report_models import ReportSchedule

    engine = create_async_engine(stack.database_urls["records"])
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(ReportSchedule)
                .where(ReportSchedule.id == uuid.UUID(schedule_id))  # type: ignore[arg-type]
                .values(created_at=datetime.now(UTC) - timedelta(days=days))
            )
    finally:
        await engine.dispose()


async def report_now(stack: Stack, on: str, lang: str = "zh-CN") -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.url("records"), timeout=30) as rec:
        r = await rec.get(
            "/reports/kpis", params={"period": "day", "on": on, "lang": lang}, headers=MANAGER
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


async def test_the_dashboard_shows_records_figures_and_drills_down_to_the_orders(
    running: tuple[Stack, ServiceProcess], browser: Any, day: dict[str, Any]
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    orders, on = day["orders"], day["on"]
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        path = f"/manager?period=day&on={on}"
        await sign_in(page, staff.url, "manager-wang", path)
        await expect(page.get_by_role("heading", name="门店经营看板")).to_be_visible()
        report = await report_now(stack, on)
        kpis = {k["id"]: k for k in report["kpis"]}
        # Every figure as records computes it, in the page's units.
        for kpi_id in (
            "major_complaint_rate",
            "csi",
            "nps",
            "first_time_fix_rate",
            "on_time_delivery_rate",
            "technician_efficiency",
            "technician_utilisation",
            "follow_up_rate",
        ):
            shown = await page.get_by_test_id(f"value-{kpi_id}").inner_text()
            assert shown == shown_value(kpis[kpi_id]), kpi_id
        # Worked out by hand from the day: one late of three, one comeback, one major
        # complaint of three deliveries against the 1 % target.
        assert await page.get_by_test_id("value-on_time_delivery_rate").inner_text() == "66.7%"
        assert await page.get_by_test_id("value-comebacks").inner_text() == "1"
        assert await page.get_by_test_id("value-csi").inner_text() == "6.00"
        major = page.locator('[data-kpi="major_complaint_rate"]')
        await expect(major).to_contain_text("33.3%")
        await expect(major).to_contain_text("低于 1%")
        await expect(major).to_contain_text("未达标")
        matrix = page.get_by_test_id("complaints-panel")
        await expect(matrix.get_by_test_id("complaints-major")).to_have_text("1")
        await expect(matrix.get_by_test_id("complaints-minor")).to_have_text("1")
        await expect(page.locator("svg.hbar").first).to_be_visible()
        async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
            r = await api.get("/repair-orders/at-risk", params={"limit": 200}, headers=MANAGER)
            at_risk = len(r.json()["items"])
        await expect(page.get_by_test_id("at-risk-count")).to_contain_text(f"{at_risk} 张工单")
        await expect(page.get_by_test_id("at-risk-panel").get_by_role("link")).to_have_attribute(
            "href", "/advisor/at-risk"
        )
        await shoot(page, "manager-01-dashboard-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        # The comebacks drill down to the order that came back, and only to it.
        await page.get_by_test_id("drill-comebacks").click()
        await page.wait_for_url(re.compile(r"/manager/kpis/first_time_fix_rate\?.*counted=false"))
        rows = page.get_by_test_id("drill").locator("tbody tr")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute("data-order", str(orders["C"].id))
        await expect(rows.first).to_contain_text(orders["C"].number)
        await expect(rows.first).to_contain_text("返修")
        await expect(page.get_by_test_id("drill-summary")).to_contain_text("共 3 条，计入分子 2 条")
        await shoot(page, "manager-02-drill-comebacks-zh")

        # On-time delivery: the three deliveries, B late with its promise.
        await page.goto(f"{staff.url}{path}")
        await page.get_by_test_id("drill-on_time_delivery_rate").click()
        drill = page.get_by_test_id("drill")
        await expect(drill.locator("tbody tr")).to_have_count(3)
        late = drill.locator(f'tr[data-order="{orders["B"].id}"]')
        await expect(late).to_contain_text("延误")
        await expect(late).to_contain_text("承诺")
        for name in ("A", "C"):
            await expect(drill.locator(f'tr[data-order="{orders[name].id}"]')).to_contain_text(
                "准时"
            )
        await no_serious_violations(page)
        assert await small_targets(page) == []
        await shoot(page, "manager-03-drill-on-time-zh")

        # Any KPI of the report drills down the same way, named as records defines it.
        await page.goto(f"{staff.url}/manager/kpis/revenue_total?period=day&on={on}")
        await expect(page.get_by_role("heading", name="营业额（不含税）：明细")).to_be_visible()
        await expect(page.get_by_test_id("drill").locator("tbody tr")).to_have_count(2)
        response = await page.goto(f"{staff.url}/manager/kpis/happiness?period=day&on={on}")
        assert response is not None and response.status == 404

        # The month around the day: the daily chart, the same figures as records' month.
        await page.goto(f"{staff.url}{path}")
        await page.get_by_test_id("period").get_by_label("统计期").select_option("month")
        await page.get_by_test_id("period").get_by_role("button").click()
        await page.wait_for_url(re.compile(r"period=month"))
        await expect(page.locator("svg.daily")).to_be_visible()
        async with httpx.AsyncClient(base_url=stack.url("records"), timeout=30) as rec:
            r = await rec.get(
                "/reports/kpis", params={"period": "month", "on": on}, headers=MANAGER
            )
        month = {k["id"]: k for k in r.json()["kpis"]}
        shown = await page.get_by_test_id("value-on_time_delivery_rate").inner_text()
        assert shown == shown_value(month["on_time_delivery_rate"])
        await no_serious_violations(page)
        assert await small_targets(page) == []
        await shoot(page, "manager-03b-dashboard-month-zh")

        # English: the same figures in the other words.
        await page.goto(f"{staff.url}{path}")
        await page.get_by_test_id("language").click()
        await expect(page.get_by_role("heading", name="Branch dashboard")).to_be_visible()
        await expect(major).to_contain_text("below 1%")
        await expect(major).to_contain_text("Not met")
        await shoot(page, "manager-04-dashboard-en")
        await page.get_by_test_id("language").click()
    finally:
        await context.close()


async def test_complaints_technicians_and_scheduled_reports(
    running: tuple[Stack, ServiceProcess], browser: Any, day: dict[str, Any]
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    orders, on = day["orders"], day["on"]
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "manager-wang", "/manager/complaints")
        table = page.get_by_test_id("complaints")
        await expect(table.locator("tr[data-complaint]")).to_have_count(2)
        # Major first: the one followup opened from B's low survey.
        first = table.locator("tr[data-complaint]").first
        await expect(first).to_contain_text("重大")
        await expect(first).to_contain_text(orders["B"].number)
        await expect(table).to_contain_text("取车时等了四十分钟")
        await no_serious_violations(page)
        assert await small_targets(page) == []
        await shoot(page, "manager-05-complaints-zh")
        await page.goto(f"{staff.url}/manager/complaints?severity=minor&age=0")
        await expect(page.get_by_test_id("complaints").locator("tr[data-complaint]")).to_have_count(
            1
        )
        await page.goto(f"{staff.url}/manager/complaints?severity=major&age=3")
        await expect(page.get_by_test_id("complaints")).to_have_count(0)

        # Technicians: records' rows, each drilling down to the jobs behind it.
        await page.goto(f"{staff.url}/manager/technicians?period=day&on={on}")
        report = await report_now(stack, on)
        li = next(r for r in report["technicians"] if r["technician_id"] == "tech-li")
        row = page.locator('tr[data-technician="tech-li"]')
        await expect(row).to_contain_text("李军")
        await expect(row).to_contain_text(f"{li['efficiency'] * 100:.1f}%")
        await no_serious_violations(page)
        assert await small_targets(page) == []
        await shoot(page, "manager-06-technicians-zh")
        await page.get_by_test_id("efficiency-tech-li").click()
        jobs = page.get_by_test_id("drill").locator("tbody tr")
        await expect(jobs).to_have_count(2)
        assert {await jobs.nth(i).get_attribute("data-order") for i in range(2)} == {
            str(orders["A"].id),
            str(orders["C"].id),
        }

        # Scheduled reports: added here (read back from records), listed, not run yet.
        await page.goto(f"{staff.url}/manager/reports")
        form = page.get_by_test_id("add-schedule")
        await form.get_by_label("生成时间").fill("25")
        await form.get_by_role("button", name="新增定期报表").click()
        await expect(page.locator(".field.invalid")).to_be_visible()
        async with httpx.AsyncClient(base_url=stack.url("records"), timeout=10) as rec:
            listed = (await rec.get("/reports/schedules", headers=MANAGER)).json()["items"]
            assert listed == []
        form = page.get_by_test_id("add-schedule")
        await form.get_by_label("频率").select_option("weekly")
        await form.get_by_label("生成时间").fill("7")
        await form.get_by_role("button", name="新增定期报表").click()
        await expect(page.get_by_test_id("saved")).to_be_visible()
        async with httpx.AsyncClient(base_url=stack.url("records"), timeout=10) as rec:
            listed = (await rec.get("/reports/schedules", headers=MANAGER)).json()["items"]
        assert [(s["frequency"], s["hour"]) for s in listed] == [("weekly", 7)]
        schedule = page.locator(f'tr[data-schedule="{listed[0]["id"]}"]')
        await expect(schedule).to_contain_text("每周")
        await expect(schedule).to_contain_text("07:00")

        # A daily schedule as if made three days ago: records makes up its runs, and the
        # page shows the newest with its files, fetched with the manager's token.
        async with httpx.AsyncClient(base_url=stack.url("records"), timeout=10) as rec:
            r = await rec.post(
                "/reports/schedules", json={"frequency": "daily", "hour": 0}, headers=MANAGER
            )
            assert r.status_code == 201, r.text
            daily = r.json()["id"]
        await backdate_schedule(stack, daily, days=3)
        async with httpx.AsyncClient(base_url=stack.url("records"), timeout=30) as rec:
            # Made up to the last whole day on the branch's clock, every run ready.
            yesterday = (datetime.now(SHANGHAI).date() - timedelta(days=1)).isoformat()

            async def made() -> list[dict[str, Any]] | None:
                r = await rec.get("/reports/runs", params={"schedule_id": daily}, headers=MANAGER)
                runs = r.json()["items"]
                done = all(run["status"] == "ready" for run in runs)
                return runs if len(runs) >= 2 and done and runs[0]["from_on"] == yesterday else None

            runs = await eventually(made, timeout=60, what="the made-up daily runs")
        await page.reload()
        row = page.locator(f'tr[data-schedule="{daily}"]')
        await expect(row).to_contain_text("每日")
        await expect(row).to_contain_text(runs[0]["from_on"])
        await expect(row).to_contain_text("已生成")
        for fmt, magic in (("XLSX", b"PK"), ("PDF", b"%PDF")):  # an XLSX is a zip
            href = await row.get_by_role("link", name=fmt).get_attribute("href")
            assert href == f"/manager/reports/runs/{runs[0]['id']}/files/{fmt.lower()}"
            got = await page.request.get(f"{staff.url}{href}")
            assert got.status == 200 and (await got.body()).startswith(magic), fmt
        await no_serious_violations(page)
        assert await small_targets(page) == []
        await shoot(page, "manager-07-reports-zh")

        # Stopping the weekly one: records marks it inactive, the page says so.
        weekly = page.locator(f'tr[data-schedule="{listed[0]["id"]}"]')
        await weekly.get_by_role("button", name="停止").click()
        await expect(weekly).to_contain_text("已停止")
        await expect(weekly.get_by_role("button")).to_have_count(0)
        async with httpx.AsyncClient(base_url=stack.url("records"), timeout=10) as rec:
            r = await rec.get("/reports/schedules", headers=MANAGER)
        active = {s["id"]: s["active"] for s in r.json()["items"]}
        assert active == {listed[0]["id"]: False, daily: True}
    finally:
        await context.close()


async def test_a_discount_above_the_limit_is_approved_on_the_cashiers_page(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    order_id = await ready_to_settle(stack, "沪M80008")
    async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
        preview = (
            await api.get(f"/repair-orders/{order_id}/invoice-preview", headers=MANAGER)
        ).json()
    due = preview["customer_due"]
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "manager-wang", "/manager")
        await expect(page.get_by_test_id("ready-count")).to_contain_text("1 张工单待结算")
        await page.get_by_test_id("approvals-panel").get_by_role("link").click()
        await page.wait_for_url("**/manager/approvals")
        await no_serious_violations(page)
        assert await small_targets(page) == []
        await shoot(page, "manager-08-approvals-zh")
        await page.locator(f'tr[data-order="{order_id}"]').get_by_role("link").click()
        await page.wait_for_url(f"**/cashier/orders/{order_id}")
        # The cashier's page, a link back to the dashboard in the bar.
        await expect(page.get_by_test_id("nav-manager")).to_be_visible()
        form = page.get_by_test_id("settle")
        await form.get_by_label("折扣（百分比或金额）").fill("20")
        await form.get_by_label("折扣原因").fill("老客户")
        discounted = await page.evaluate(f"(Math.round({due} * 0.8 * 100) / 100).toFixed(2)")
        await form.get_by_label("金额 1").fill(discounted)
        await form.get_by_role("button", name="确认结算").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("已结算")
        async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
            order = (await api.get(f"/repair-orders/{order_id}", headers=MANAGER)).json()
        assert order["status"] == "settled"
        assert order["invoice"]["payments"][0]["amount"] == discounted
        await page.get_by_test_id("nav-manager").click()
        await expect(page.get_by_test_id("ready-count")).to_contain_text("0 张工单待结算")
    finally:
        await context.close()


async def test_the_managers_pages_are_refused_to_other_roles(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    _, staff = running
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "cashier-zheng", "/cashier")
        # A cashier's bar has no link to the manager's pages, and each of them is a 403.
        await expect(page.get_by_test_id("nav-manager")).to_have_count(0)
        for path in (
            "/manager",
            "/manager/kpis/csi",
            "/manager/complaints",
            "/manager/technicians",
            "/manager/reports",
            "/manager/approvals",
        ):
            response = await page.goto(f"{staff.url}{path}")
            assert response is not None and response.status == 403, path
            await expect(page.locator("main")).to_contain_text("您的角色无权打开此页面")
        await shoot(page, "manager-09-refused-zh")
        await page.context.clear_cookies()
        await sign_in(page, staff.url, "advisor-zhao", "/advisor/at-risk")
        response = await page.goto(f"{staff.url}/manager")
        assert response is not None and response.status == 403
    finally:
        await context.close()
