"""One whole visit through the staff app's pages only, in Debian's chromium, against the
four services and the staff app as real processes: booked, moved, checked in with a
photo and a signature, estimated, partly approved, dispatched, clocked, extra work found
and approved by the customer on the approval link, a failed QC reworked, passed, settled
and handed over with the checklist. Advisor, foreman, QC and cashier on tablets, the
technician and the customer on phones; every outcome read through the services' APIs."""

import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

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
from tools.demo import with_check_digit

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE = {"width": 390, "height": 844}
ADVISOR, MANAGER = auth("advisor"), auth("manager")
SIGN_IN_PAGE = re.compile(r"/signin/dev\?next=")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, ServiceProcess]]:
    require_chromium()
    root = tmp_path_factory.mktemp("visit")
    stack = Stack(root, extra_env=round_the_clock()).start()
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


async def _signed_in(browser: Any, base: str, sub: str, path: str, phone: bool = False) -> Any:
    """A device of its own for each member of staff, signed in on the page they start at."""
    context = await browser.new_context(
        viewport=PHONE if phone else TABLET_LANDSCAPE, locale="zh-CN", has_touch=phone
    )
    page = await context.new_page()
    await page.goto(f"{base}{path}")
    await page.wait_for_url(SIGN_IN_PAGE)
    await page.click(f'button[data-sub="{sub}"]')
    await page.wait_for_url(lambda url: url == f"{base}{path}")
    return page


def _photo(path: Path) -> Path:
    """A small real JPEG, as a tablet's camera would hand the page."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (320, 240), (200, 200, 205))
    ImageDraw.Draw(image).line([(20, 200), (300, 40)], fill=(120, 0, 0), width=6)
    image.save(path, "JPEG")
    return path


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


async def _looks_right(page: Any, name: str) -> None:
    await shoot(page, name)
    await no_serious_violations(page)
    assert await small_targets(page) == []


class Read:
    """The services' answers, read with tokens of the roles that may read them."""

    def __init__(self, stack: Stack):
        self.stack = stack

    async def get(self, service: str, path: str, headers: dict[str, str] = MANAGER) -> Any:
        async with httpx.AsyncClient(base_url=self.stack.url(service), timeout=10) as api:
            r = await api.get(path, headers=headers)
            assert r.status_code == 200, r.text
            return r.json()

    async def order(self, order_id: str) -> dict[str, Any]:
        return dict(await self.get("workorders", f"/repair-orders/{order_id}"))

    async def job(self, order_id: str, op_code: str) -> dict[str, Any]:
        order = await self.order(order_id)
        return next(j for j in order["jobs"] if j["op_code"] == op_code)


async def test_one_whole_visit_through_the_pages(
    running: tuple[Stack, ServiceProcess], browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    read = Read(stack)
    async with httpx.AsyncClient(base_url=stack.url("reception"), headers=ADVISOR) as api:
        canned = await api.post(
            "/canned-jobs",
            json={"op_code": "MNT-20K", "description": "两万公里保养", "job_kind": "maintenance",
                  "flat_rate_hours": "1.00", "labour_rate": "380.00",
                  "parts": [{"part_number": "06L115562B", "description": "机油滤清器",
                             "quantity": "1", "unit_price": "68.00"}]},
        )  # fmt: skip
        assert canned.status_code == 201, canned.text
    vin = with_check_digit("LSVAU2180N2177777")
    now = datetime.now(SHANGHAI).replace(second=0, microsecond=0)

    # --- the advisor: register, book, move the booking, check the car in -----------------
    advisor = await _signed_in(browser, staff.url, "advisor-zhao", "/advisor/register")
    await advisor.get_by_label("姓名").fill("钱小红")
    await advisor.get_by_label("手机").fill("13600004321")
    await advisor.get_by_label("VIN").fill(vin)
    await expect(advisor.get_by_test_id("vin-check").locator("[data-state=ok]")).to_be_visible()
    await advisor.get_by_label("车牌").fill("沪F24680")
    await advisor.get_by_role("button", name="登记").click()
    await advisor.wait_for_url(re.compile(r"/advisor/vehicles/"))

    # Booked for tomorrow; the customer calls: a second booking the day after is cancelled,
    # the first moved to 30 minutes from now.
    booking = advisor.get_by_test_id("book")
    tomorrow = (now + timedelta(days=1)).replace(hour=10, minute=0)
    await booking.get_by_label("到店时间").fill(tomorrow.strftime("%Y-%m-%dT%H:%M"))
    await booking.get_by_label("预计工时").fill("1")
    await booking.get_by_label("客户描述").fill("两万公里保养")
    await booking.get_by_role("button", name="预约").click()
    await advisor.wait_for_url(re.compile(rf"/advisor\?day={tomorrow.date()}"))
    row = advisor.locator("tr[data-appointment]", has_text="沪F24680")
    appointment_id = await row.get_attribute("data-appointment")
    await _looks_right(advisor, "visit-01-booked-tomorrow")
    await row.get_by_role("button", name="改期").click()
    moved = now + timedelta(minutes=30)
    form = advisor.get_by_test_id(f"reschedule-{appointment_id}")
    # A time already past is refused next to the field, in Chinese; nothing moves.
    await form.get_by_label("新的到店时间").fill(
        (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    )
    await form.get_by_role("button", name="改期").click()
    form = advisor.get_by_test_id(f"reschedule-{appointment_id}")
    await expect(form.locator(".field.invalid .error")).to_contain_text("请填写将来的时间")
    await shoot(advisor, "visit-02-reschedule-refused")
    await form.get_by_label("新的到店时间").fill(moved.strftime("%Y-%m-%dT%H:%M"))
    await form.get_by_role("button", name="改期").click()
    await advisor.wait_for_url(re.compile(rf"/advisor\?day={moved.date()}"))
    await expect(advisor.get_by_test_id("saved")).to_contain_text(moved.strftime("%H:%M"))
    appointment = await read.get("reception", f"/appointments/{appointment_id}")
    assert datetime.fromisoformat(appointment["starts_at"]) == moved
    assert appointment["status"] == "booked"

    # Two more bookings: one the customer no longer needs is cancelled, one they did not
    # come to is marked no-show, each from its day's page.
    for days, move, said, status in (
        (2, "cancel", "预约已取消", "cancelled"),
        (3, "no-show", "已记为未到店", "no_show"),
    ):
        await advisor.goto(f"{staff.url}/advisor/vehicles/{appointment['vehicle_id']}")
        later = (now + timedelta(days=days)).replace(hour=15, minute=0)
        booking = advisor.get_by_test_id("book")
        await booking.get_by_label("到店时间").fill(later.strftime("%Y-%m-%dT%H:%M"))
        await booking.get_by_label("预计工时").fill("1")
        await booking.get_by_label("客户描述").fill("空调异味")
        await booking.get_by_role("button", name="预约").click()
        await advisor.wait_for_url(re.compile(rf"/advisor\?day={later.date()}"))
        other = advisor.locator("tr[data-appointment]", has_text="沪F24680")
        other_id = await other.get_attribute("data-appointment")
        await advisor.get_by_test_id(f"{move}-{other_id}").click()
        await expect(advisor.get_by_test_id("saved")).to_contain_text(said)
        await expect(advisor.locator(f'tr[data-appointment="{other_id}"]')).to_have_attribute(
            "data-status", status
        )
        await shoot(advisor, f"visit-03-booking-{status}")
        closed = await read.get("reception", f"/appointments/{other_id}")
        assert closed["status"] == status

    await advisor.goto(f"{staff.url}/advisor?day={moved.date()}")
    row = advisor.locator(f'tr[data-appointment="{appointment_id}"]')
    await row.get_by_role("button", name="到店接车").click()
    await advisor.locator(f"#arrive-{appointment_id}").get_by_label("里程 (km)").fill("20150")
    await advisor.locator(f"#arrive-{appointment_id}").get_by_role("button").click()
    await advisor.wait_for_url(re.compile(r"/advisor/intakes/"))
    intake_id = advisor.url.rsplit("/", 1)[1]

    # --- the walk-around with a photo and the signature -----------------------------------
    await advisor.locator('[data-zone="front_bumper"]').click()
    mark = advisor.locator('[data-mark="front_bumper"]')
    await mark.get_by_label("照片").set_input_files(str(_photo(tmp_path / "scratch.jpg")))
    walk = advisor.get_by_test_id("walkaround")
    await walk.get_by_text("50%").first.click()
    await walk.get_by_label("已提醒客户带走车内贵重物品").check()
    await _draw(advisor, "signature-pad")
    await advisor.get_by_test_id("save").click()
    await expect(advisor.get_by_test_id("photo")).to_be_visible()
    await advisor.get_by_test_id("complete").click()
    await expect(advisor.get_by_test_id("completed")).to_be_visible()
    await shoot(advisor, "visit-04-walkaround")

    # --- the estimate, and a partial consent: the service yes, the fee no ------------------
    await advisor.get_by_test_id("to-estimate").click()
    promised = now + timedelta(hours=8)
    await advisor.get_by_label("承诺交车时间").fill(promised.strftime("%Y-%m-%dT%H:%M"))
    await advisor.get_by_role("button", name="开始估价").click()
    estimate = advisor.get_by_test_id("estimate")
    await advisor.get_by_test_id("canned").get_by_label("标准项目").select_option("MNT-20K")
    await advisor.get_by_test_id("canned").get_by_role("button", name="添加").click()
    await expect(estimate).to_have_attribute("data-revision", "2")
    line = advisor.get_by_test_id("add-line")
    await line.get_by_label("类型").select_option("fee")
    await line.get_by_label("说明").fill("环保处理费")
    await line.get_by_label("单价", exact=True).fill("15")
    await line.get_by_role("button", name="添加").click()
    await expect(estimate).to_have_attribute("data-revision", "3")
    consent = advisor.get_by_test_id("consent")
    await consent.locator("tr", has_text="MNT-20K").get_by_text("同意").click()
    await consent.locator("tr", has_text="06L115562B").get_by_text("同意").click()
    await consent.locator("tr", has_text="环保处理费").get_by_text("不做").click()
    await _draw(advisor, "consent-signature")
    await consent.get_by_role("button", name="记录客户确认").click()
    await expect(estimate).to_have_attribute("data-status", "answered")
    await shoot(advisor, "visit-05-partial-consent")
    answered = await read.get("reception", f"/intakes/{intake_id}/estimate")
    assert {ln["description"]: ln["answer"]["decision"] for ln in answered["lines"]} == {
        "两万公里保养": "approved",
        "机油滤清器": "approved",
        "环保处理费": "declined",
    }

    async def opened() -> dict[str, Any] | None:
        found = await read.get("workorders", f"/repair-orders?intake_id={intake_id}")
        items = found["items"]
        return items[0] if items and items[0]["status"] == "open" else None

    order_id = (await eventually(opened, what="the repair order from the consent"))["id"]
    service_job = (await read.job(order_id, "MNT-20K"))["id"]

    # --- the foreman dispatches ------------------------------------------------------------
    day = now.date().isoformat()
    foreman = await _signed_in(browser, staff.url, "foreman-sun", f"/foreman?day={day}")

    async def dispatch(job_id: str, bay: str) -> None:
        await foreman.goto(f"{staff.url}/foreman?day={day}")
        form = foreman.get_by_test_id(f"assign-{job_id}")
        await form.get_by_label("技师").select_option(label="李军")
        await form.get_by_label("工位").fill(bay)
        await form.get_by_role("button", name="派工").click()
        await expect(foreman.get_by_test_id("saved")).to_contain_text(f"已派给 李军，工位 {bay}")

    await dispatch(service_job, "B3")
    await _looks_right(foreman, "visit-06-dispatched")
    assigned = await read.job(order_id, "MNT-20K")
    assert (assigned["technician_id"], assigned["bay"], assigned["status"]) == (
        "tech-li",
        "B3",
        "assigned",
    )

    # --- the technician on the phone: clock on, extra work with a photo, clock off ----------
    tech = await _signed_in(browser, staff.url, "tech-li", "/tech", phone=True)

    async def clock(job_id: str, button: str, status: str) -> None:
        await tech.goto(f"{staff.url}/tech")
        await tech.locator(f'[data-job="{job_id}"]').get_by_role("button", name=button).click()
        await expect(tech.locator(f'[data-job="{job_id}"] [data-testid=status]')).to_have_text(
            status
        )

    await clock(service_job, "开工", "施工中")
    assert (await read.job(order_id, "MNT-20K"))["status"] == "in_progress"
    await tech.locator(f'[data-job="{service_job}"]').get_by_test_id("details").click()
    await tech.wait_for_url(f"**/tech/jobs/{service_job}")
    pads_photo = _photo(tmp_path / "pads.jpg")
    extra = tech.get_by_test_id("extra")
    await extra.get_by_label("发现的问题").fill("前刹车片磨损至2mm")
    await extra.get_by_label("照片").set_input_files(str(pads_photo))
    await extra.get_by_label("工时代码").fill("BRK-010")
    await extra.get_by_label("标准工时").fill("0.8")
    await extra.get_by_label("项目").fill("更换前刹车片")
    await extra.get_by_role("button", name="报告增项").click()
    await expect(tech.get_by_test_id("saved")).to_contain_text("增项已报告")
    await _looks_right(tech, "visit-07-extra-work-phone")
    [found] = (await read.order(order_id))["extra_work"]
    assert found["findings"] == "前刹车片磨损至2mm" and found["job_id"] == service_job
    [photo_id] = found["photo_file_ids"]
    stored = await read.get("records", f"/files/{photo_id}")
    assert stored["size"] == pads_photo.stat().st_size
    await clock(service_job, "完工", "已完工")
    assert (await read.job(order_id, "MNT-20K"))["status"] == "done"

    # --- the advisor prices the extra work; the customer approves it on the link -----------
    async def listed() -> bool:
        await advisor.goto(f"{staff.url}/advisor/extra-work")
        return await advisor.locator("tr[data-estimate]", has_text="沪F24680").count() == 1

    await eventually(listed, what="the extra work on the advisor's list")
    await advisor.get_by_role("link", name="定价并确认").click()
    await advisor.get_by_test_id("price-line").first.get_by_role("textbox").fill("400")
    await advisor.get_by_test_id("price-line").first.get_by_role("button").click()
    await expect(advisor.get_by_test_id("saved")).to_be_visible()
    await expect(advisor.get_by_test_id("price-line")).to_have_count(0)
    await advisor.get_by_test_id("make-link").click()
    await expect(advisor.get_by_test_id("approval-qr").locator("img")).to_be_visible()
    await shoot(advisor, "visit-08-approval-link")
    link = await advisor.get_by_test_id("approval-url").get_attribute("href")
    assert link and link.startswith(f"{stack.url('reception')}/approve/")

    customer = await browser.new_context(viewport=PHONE, locale="zh-CN", has_touch=True)
    phone = await customer.new_page()
    await phone.goto(link)
    line_box = phone.locator(".line", has_text="更换前刹车片")
    await line_box.get_by_label("同意 Approve").check()
    await phone.get_by_label("您的姓名 Your name").fill("钱小红")
    await shoot(phone, "visit-09-customer-approves")
    await phone.get_by_role("button", name="提交 Submit").click()
    await expect(phone.locator("#msg")).to_contain_text("已提交")
    await expect(phone.locator(".line", has_text="更换前刹车片")).to_contain_text("已同意")
    await shoot(phone, "visit-10-customer-approved")
    await customer.close()
    final = await read.get("reception", f"/intakes/{intake_id}/estimate")
    [extra_line] = [ln for ln in final["lines"] if ln["extra_work_id"]]
    assert extra_line["answer"]["decision"] == "approved"
    assert extra_line["answer"]["channel"] == "link" and Decimal(extra_line["net"]) == Decimal(
        "320.00"
    )

    async def extra_job() -> dict[str, Any] | None:
        order = await read.order(order_id)
        return next((j for j in order["jobs"] if j["op_code"] == "BRK-010"), None)

    brake_job = (await eventually(extra_job, what="the approved extra work as a job"))["id"]
    assert (await read.order(order_id))["extra_work"][0]["status"] == "approved"

    # The foreman dispatches it; the technician does it.
    await dispatch(brake_job, "B3")
    await clock(brake_job, "开工", "施工中")
    await clock(brake_job, "完工", "已完工")

    # --- the foreman sends the finished order to QC -----------------------------------------
    async def send_on(label: str, status: str) -> None:
        await foreman.goto(f"{staff.url}/foreman/orders")
        await foreman.get_by_test_id(f"move-{order_id}").click()
        await expect(foreman.get_by_test_id("saved")).to_be_visible()
        assert (await read.order(order_id))["status"] == status

    await foreman.goto(f"{staff.url}/foreman/orders")
    await expect(foreman.get_by_test_id(f"move-{order_id}")).to_have_text("送质检")
    await _looks_right(foreman, "visit-11-to-qc")
    await send_on("送质检", "qc")

    # --- QC: the brakes pass, the service fails with its reason ----------------------------
    qc = await _signed_in(browser, staff.url, "qc-wu", "/qc")
    form = qc.get_by_test_id(f"qc-{brake_job}")
    await form.get_by_label("已路试").check()
    await form.get_by_role("button", name="质检通过").click()
    await expect(qc.get_by_test_id("saved")).to_contain_text("质检通过")
    form = qc.get_by_test_id(f"qc-{service_job}")
    await form.get_by_label("已路试").check()
    await form.get_by_label("不通过的原因（不通过时必填）").fill("机油液位偏低")
    await _looks_right(qc, "visit-12-qc-fail")
    await form.get_by_role("button", name="不通过，返工").click()
    await expect(qc.get_by_test_id("saved")).to_contain_text("作业已退回技师返工")
    verdicts = (await read.get("workorders", f"/jobs/{service_job}/qc"))["items"]
    assert [(v["passed"], v["reason"]) for v in verdicts] == [(False, "机油液位偏低")]
    reworked = await read.order(order_id)
    assert reworked["status"] == "in_progress"
    assert {j["op_code"]: j["status"] for j in reworked["jobs"]} == {
        "MNT-20K": "rework",
        "BRK-010": "qc_passed",
    }

    # --- the technician sees the reason and reworks ----------------------------------------
    await tech.goto(f"{staff.url}/tech")
    reason = tech.locator(f'[data-job="{service_job}"] [data-testid=qc-reason]')
    await expect(reason).to_contain_text("机油液位偏低")
    await _looks_right(tech, "visit-13-rework-reason-phone")
    await clock(service_job, "开工", "施工中")
    await clock(service_job, "完工", "已完工")
    await send_on("送质检", "qc")
    await qc.goto(f"{staff.url}/qc")
    form = qc.get_by_test_id(f"qc-{service_job}")
    await form.get_by_label("已路试").check()
    await form.get_by_role("button", name="质检通过").click()
    await expect(qc.get_by_test_id("saved")).to_contain_text("质检通过")
    passed = await read.job(order_id, "MNT-20K")
    assert (passed["status"], passed["rework_count"]) == ("qc_passed", 1)
    await foreman.goto(f"{staff.url}/foreman/orders")
    await expect(foreman.get_by_test_id(f"move-{order_id}")).to_have_text("质检完成，待结算")
    await send_on("质检完成，待结算", "ready")

    # --- the cashier settles ---------------------------------------------------------------
    cashier = await _signed_in(browser, staff.url, "cashier-zheng", "/cashier")
    await cashier.locator(f'tr[data-order="{order_id}"]').get_by_role("link").click()
    due = (await cashier.get_by_test_id("due").locator("strong").inner_text()).split()[-1]
    preview = await read.get("workorders", f"/repair-orders/{order_id}/invoice-preview")
    assert due == preview["customer_due"]
    form = cashier.get_by_test_id("settle")
    await form.get_by_label("付款方式 1").select_option(label="微信")
    await form.get_by_label("金额 1").fill(due)
    await shoot(cashier, "visit-14-cashier")
    await form.get_by_role("button", name="确认结算").click()
    await expect(cashier.get_by_test_id("saved")).to_contain_text("已结算")
    settled = await read.order(order_id)
    assert settled["status"] == "settled"
    assert settled["invoice"]["payments"] == [{"method": "wechat", "amount": due}]

    # --- the advisor prints and hands the car over with the checklist ----------------------
    await advisor.goto(f"{staff.url}/advisor/delivery")
    await expect(advisor.locator(f'tr[data-order="{order_id}"]')).to_contain_text("沪F24680")
    await _looks_right(advisor, "visit-15-to-deliver")
    await advisor.locator(f'tr[data-order="{order_id}"]').get_by_role("link").click()
    await advisor.wait_for_url(f"**/advisor/orders/{order_id}")
    for test_id in ("print-repair-order", "print-invoice"):
        href = await advisor.get_by_test_id(test_id).get_attribute("href")
        pdf = await advisor.request.get(f"{staff.url}{href}")
        assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
        assert (await pdf.body()).startswith(b"%PDF")
    await expect(advisor.get_by_test_id("declined")).to_contain_text("环保处理费")
    checklist = advisor.get_by_test_id("handover-form")
    for item in ("已向客户说明所做的维修", "已解释费用和发票", "已交还（或出示）旧件", "车辆已清洁",
                 "车内贵重物品已交还", "钥匙已交还客户"):  # fmt: skip
        await checklist.get_by_label(item).check()
    # The declined fee not told again: refused next to its box, the ticks kept.
    key = await checklist.locator("[name=idempotency_key]").input_value()
    await checklist.get_by_role("button", name="确认交车").click()
    checklist = advisor.get_by_test_id("handover-form")
    await expect(checklist.get_by_test_id("box-error")).to_contain_text("请告知客户未做的项目")
    described = checklist.get_by_label("已再次告知客户未做的项目")
    assert await described.get_attribute("aria-invalid") == "true"
    await expect(checklist.get_by_label("车辆已清洁")).to_be_checked()
    assert await checklist.locator("[name=idempotency_key]").input_value() == key
    assert (await read.order(order_id))["status"] == "settled"
    await _looks_right(advisor, "visit-16-handover-refused")
    await checklist.get_by_label("已再次告知客户未做的项目").check()
    next_on = await checklist.get_by_label("下次保养日期").input_value()
    await checklist.get_by_label("下次保养里程 (km)").fill("30150")
    await checklist.get_by_role("button", name="确认交车").click()
    await expect(advisor.get_by_test_id("saved")).to_contain_text("已交车")
    await expect(advisor.get_by_test_id("handover")).to_contain_text("30150")
    await _looks_right(advisor, "visit-17-delivered")
    delivered = await read.order(order_id)
    assert delivered["status"] == "delivered" and delivered["delivered_at"]
    handover = delivered["handover"]
    assert all(handover[k] for k in ("work_explained", "charges_explained", "old_parts_offered",
                                     "car_cleaned", "valuables_returned", "keys_returned",
                                     "declined_work_told"))  # fmt: skip
    assert (handover["next_service_on"], handover["next_service_km"]) == (next_on, 30150)
    assert handover["by"] == "advisor-zhao"
    assert next_on > now.date().isoformat()

    # English on the hand-over page.
    await advisor.get_by_test_id("language").click()
    await expect(advisor.get_by_test_id("handover")).to_contain_text("Car cleaned")
    await shoot(advisor, "visit-18-delivered-en")
    for page in (advisor, foreman, tech, qc, cashier):
        await page.context.close()
