"""The staff app's live pages and booking on a closed day, in Debian's chromium against
reception, workorders and the staff app as real processes: the advisor's day follows a car
arriving (made through reception's API) without a reload and keeps the form being typed;
a booking and a move onto the branch's closing day refused at the field with the open days
offered as choices (Chinese and English); the technician's finished jobs of today listed
below the open ones."""

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from tests.flow import open_intake, order_opened, publish_consent, register
from tests.harness import ServiceProcess, Stack, auth, round_the_clock, token
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
from tools.demo import with_check_digit

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
SHANGHAI = ZoneInfo("Asia/Shanghai")
ADVISOR = auth("advisor")
MANAGER = auth("manager")
FOREMAN = auth("foreman")
SIGN_IN_PAGE = re.compile(r"/signin/dev\?next=")
PHONE = {"width": 390, "height": 844}
# The branch's own closing day, three days ahead on its clock.
CLOSED = datetime.now(SHANGHAI).date() + timedelta(days=3)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, ServiceProcess]]:
    require_chromium()
    root = tmp_path_factory.mktemp("live")
    env = {
        **round_the_clock(days=6),
        "RECEPTION_CALENDAR_CLOSING_DAYS": json.dumps({"BR01": [CLOSED.isoformat()]}),
    }
    stack = Stack(root, services=("reception", "workorders", "records"), extra_env=env).start()
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


async def car(reception: str, vin: str, plate: str, name: str) -> str:
    """A customer and their car at reception; the vehicle's id."""
    async with httpx.AsyncClient(base_url=reception, headers=ADVISOR, timeout=10) as api:
        customer = await api.post("/customers", json={"name": name, "mobile": "13700137000"})
        assert customer.status_code == 201, customer.text
        vehicle = await api.post(
            "/vehicles",
            json={
                "customer_id": customer.json()["id"],
                "vin": with_check_digit(vin),
                "plate": plate,
            },
        )
        assert vehicle.status_code == 201, vehicle.text
        return str(vehicle.json()["id"])


async def booked(reception: str, vehicle_id: str, starts: datetime) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=reception, headers=ADVISOR, timeout=10) as api:
        r = await api.post(
            "/appointments",
            json={"vehicle_id": vehicle_id, "starts_at": starts.isoformat(), "planned_hours": "1"},
        )
        assert r.status_code == 201, r.text
        return dict(r.json())


async def test_the_day_follows_a_car_arriving_and_keeps_the_form_being_typed(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    reception = stack.url("reception")
    soon = datetime.now(SHANGHAI).replace(second=0, microsecond=0) + timedelta(minutes=40)
    first = await booked(
        reception, await car(reception, "LSVAU2180N2100011", "沪L10001", "陈立"), soon
    )
    second = await booked(
        reception, await car(reception, "LSVAU2180N2100022", "沪L10002", "孙敏"), soon
    )
    path = f"/advisor?day={first['day']}"
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "advisor-qian", path)
        row = page.locator(f'tr[data-appointment="{first["id"]}"]')
        await expect(row).to_have_attribute("data-status", "booked")
        arrived = page.get_by_test_id("arrived_count")
        before = int(await arrived.locator("strong").inner_text())
        # The advisor starts moving the other booking and is typing a new time...
        await (
            page.locator(f'tr[data-appointment="{second["id"]}"]')
            .get_by_role("button", name="改期")
            .click()
        )
        form = page.get_by_test_id(f"reschedule-{second['id']}")
        typed = (soon + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
        await form.get_by_label("新的到店时间").fill(typed)
        await page.evaluate("window.notReloaded = true")

        # ... when the first car is checked in at another desk (reception's API).
        async with httpx.AsyncClient(base_url=reception, headers=ADVISOR, timeout=10) as api:
            r = await api.post(
                "/intakes",
                json={
                    "vehicle_id": first["vehicle_id"],
                    "appointment_id": first["id"],
                    "odometer_km": 12000,
                },
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            assert r.status_code == 201, r.text

        # The day shows it by itself (workorders opens the order: the live feed's change),
        # well before the half-minute refresh; the form and what was typed are kept.
        await expect(row).to_have_attribute("data-status", "arrived", timeout=15_000)
        await expect(arrived.locator("strong")).to_have_text(str(before + 1))
        assert await page.evaluate("window.notReloaded") is True
        form = page.get_by_test_id(f"reschedule-{second['id']}")
        await expect(form.get_by_label("新的到店时间")).to_have_value(typed)
        await shoot(page, "live-01-day-arrived-form-kept")
        await no_serious_violations(page)
        assert await small_targets(page) == []
    finally:
        await context.close()


async def test_a_closed_day_is_refused_at_the_field_with_the_open_days_to_tap(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    reception = stack.url("reception")
    vehicle_id = await car(reception, "LSVAU2180N2100033", "沪L10003", "周红")
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "advisor-qian", f"/advisor/vehicles/{vehicle_id}")
        booking = page.get_by_test_id("book")
        await booking.get_by_label("到店时间").fill(f"{CLOSED.isoformat()}T10:30")
        await booking.get_by_label("预计工时").fill("1")
        await booking.get_by_role("button", name="预约").click()
        booking = page.get_by_test_id("book")
        error = booking.locator(".field.invalid .error")
        await expect(error).to_contain_text(f"门店 {CLOSED.isoformat()} 休息")
        choices = booking.get_by_test_id("free-days").locator("[data-pick-day]")
        offered = [await c.get_attribute("data-pick-day") for c in await choices.all()]
        assert offered and CLOSED.isoformat() not in offered
        assert all(day and day > CLOSED.isoformat() for day in offered)
        async with httpx.AsyncClient(base_url=reception, headers=ADVISOR, timeout=10) as api:
            r = await api.get("/appointments", params={"day": CLOSED.isoformat()})
            assert [a for a in r.json()["items"] if a["vehicle_id"] == vehicle_id] == []
        await shoot(page, "live-02-closed-day-refused-zh")
        await no_serious_violations(page)
        assert await small_targets(page) == []

        # A tap on the first day offered puts it in the field, the time kept; then booked.
        await choices.first.click()
        await expect(booking.get_by_label("到店时间")).to_have_value(f"{offered[0]}T10:30")
        await booking.get_by_role("button", name="预约").click()
        await page.wait_for_url(re.compile(rf"/advisor\?day={offered[0]}"))
        async with httpx.AsyncClient(base_url=reception, headers=ADVISOR, timeout=10) as api:
            r = await api.get("/appointments", params={"day": offered[0]})
            mine = [a for a in r.json()["items"] if a["vehicle_id"] == vehicle_id]
            assert len(mine) == 1
            starts = datetime.fromisoformat(mine[0]["starts_at"]).astimezone(SHANGHAI)
            assert starts.strftime("%H:%M") == "10:30"
        appointment_id = mine[0]["id"]

        # In English: moving it onto the closing day is refused at the field the same way.
        await page.get_by_test_id("language").click()
        row = page.locator(f'tr[data-appointment="{appointment_id}"]')
        await row.get_by_role("button", name="Reschedule").click()
        form = page.get_by_test_id(f"reschedule-{appointment_id}")
        await form.get_by_label("New arrival time").fill(f"{CLOSED.isoformat()}T09:00")
        await form.get_by_role("button", name="Reschedule").click()
        form = page.get_by_test_id(f"reschedule-{appointment_id}")
        await expect(form.locator(".field.invalid .error")).to_contain_text(
            f"The branch is closed on {CLOSED.isoformat()}"
        )
        moves = form.get_by_test_id("free-days").locator("[data-pick-day]")
        await expect(moves.first).to_be_visible()
        await shoot(page, "live-03-closed-day-move-refused-en")
        await no_serious_violations(page)
        assert await small_targets(page) == []
        async with httpx.AsyncClient(base_url=reception, headers=ADVISOR, timeout=10) as api:
            same = (await api.get(f"/appointments/{appointment_id}")).json()
            assert datetime.fromisoformat(same["starts_at"]) == datetime.fromisoformat(
                mine[0]["starts_at"]
            )
        last = moves.last
        day = await last.get_attribute("data-pick-day")
        await last.click()
        await expect(form.get_by_label("New arrival time")).to_have_value(f"{day}T09:00")
        await form.get_by_role("button", name="Reschedule").click()
        await page.wait_for_url(re.compile(rf"/advisor\?day={day}"))
        async with httpx.AsyncClient(base_url=reception, headers=ADVISOR, timeout=10) as api:
            moved = (await api.get(f"/appointments/{appointment_id}")).json()
            assert (
                datetime.fromisoformat(moved["starts_at"])
                .astimezone(SHANGHAI)
                .strftime("%Y-%m-%dT%H:%M")
                == f"{day}T09:00"
            )
    finally:
        await context.close()


async def test_the_technician_sees_todays_finished_jobs_below_the_open_ones(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    event = approved_now(
        lines=[labour("BRK-010", "1", "300"), labour("ENG-200", "2", "600")],
        plate="沪L10004",
        vehicle_id=uuid.uuid4(),
    )
    await publish_consent(stack, event)
    async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
        order = await order_opened(api, event.intake_id)
        jobs = (await api.get(f"/repair-orders/{order['id']}", headers=MANAGER)).json()["jobs"]
        brakes, engine = (j["id"] for j in jobs)
        for job_id in (brakes, engine):
            job = await api.get(f"/jobs/{job_id}", headers=MANAGER)
            r = await api.put(
                f"/jobs/{job_id}/assignment",
                headers={**FOREMAN, "If-Match": job.headers["etag"]},
                json={"technician_id": "tech-li", "bay": "B1"},
            )
            assert r.status_code == 200, r.text
        # The brakes done already (the technician's own token, through workorders' API).
        tech = {"Authorization": f"Bearer {token('technician', sub='tech-li')}"}
        assert (await api.post(f"/jobs/{brakes}/clock-on", headers=tech)).status_code == 201
        r = await api.post(f"/jobs/{brakes}/clock-off", headers=tech, json={"reason": "finished"})
        assert r.status_code == 200, r.text

    context = await browser.new_context(viewport=PHONE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "tech-li", "/tech")
        open_card = page.locator(f'article[data-job="{engine}"]')
        await expect(open_card).to_contain_text("ENG-200")
        finished = page.get_by_test_id("finished-today")
        await expect(finished.locator(f'[data-job="{brakes}"]')).to_contain_text("BRK-010")
        await expect(finished.locator(f'[data-job="{brakes}"]')).to_contain_text("已完工")
        assert await finished.locator(f'[data-job="{engine}"]').count() == 0
        # Below the open ones.
        open_box = await open_card.bounding_box()
        done_box = await finished.bounding_box()
        assert open_box and done_box and done_box["y"] > open_box["y"] + open_box["height"]
        await shoot(page, "live-04-tech-finished-today-phone")
        await no_serious_violations(page)
        assert await small_targets(page) == []
    finally:
        await context.close()


async def test_the_live_feed_is_one_address_and_says_no_more_to_a_role_the_board_refuses(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    _, staff = running
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    agent = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        # The old addresses are gone.
        await sign_in(page, staff.url, "advisor-qian", "/advisor")
        for old in ("/advisor/live", "/floor/events"):
            assert (await page.request.get(f"{staff.url}{old}")).status == 404
        # A follow-up agent may not read the board (workorders says 403): 204, which tells
        # the browser not to reconnect.
        other = await agent.new_page()
        await sign_in(other, staff.url, "followup-chen", "/followup")
        assert (await other.request.get(f"{staff.url}/live")).status == 204
    finally:
        await agent.close()
        await context.close()


async def test_extra_work_reported_appears_on_the_open_list_by_itself(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    reception = stack.url("reception")
    async with httpx.AsyncClient(timeout=10) as http:
        _, vehicle = await register(http, reception, name="吴刚")
        intake = await open_intake(http, reception, vehicle["id"])
        promised = (datetime.now(SHANGHAI) + timedelta(hours=6)).replace(microsecond=0)
        estimate = await http.post(
            f"{reception}/estimates",
            headers=ADVISOR,
            json={
                "intake_id": intake["id"],
                "promised_at": promised.isoformat(),
                "lines": [
                    {"kind": "labour", "op_code": "BRK-PAD-F", "description": "更换前刹车片",
                     "flat_rate_hours": "1", "labour_rate": "100"},
                ],
            },
        )  # fmt: skip
        assert estimate.status_code == 201, estimate.text
        line = estimate.json()["lines"][0]["line_id"]
        consent = await http.post(
            f"{reception}/estimates/{estimate.json()['id']}/consents",
            headers={**ADVISOR, "If-Match": estimate.headers["ETag"]},
            json={
                "decisions": [{"line_id": line, "decision": "approved"}],
                "by": "吴刚",
                "channel": "phone",
                "call_note": "客户电话同意",
            },
        )
        assert consent.status_code in (200, 201), consent.text
    async with httpx.AsyncClient(base_url=stack.url("workorders"), timeout=10) as api:
        order = await order_opened(api, uuid.UUID(intake["id"]))

    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "advisor-qian", "/advisor/extra-work")
        row = page.locator(f'tr[data-estimate="{estimate.json()["id"]}"]')
        await expect(row).to_have_count(0)
        await page.evaluate("window.notReloaded = true")

        tech = {"Authorization": f"Bearer {token('technician', sub='tech-li')}"}
        async with httpx.AsyncClient(base_url=stack.url("workorders"), headers=tech) as api:
            found = await api.post(
                f"/repair-orders/{order['id']}/extra-work",
                json={
                    "findings": "后刹车盘磨损",
                    "proposed_lines": [
                        {"kind": "labour", "op_code": "BRK-DISC-R", "flat_rate_hours": "1.5",
                         "description": "更换后刹车盘"},
                    ],
                },
            )  # fmt: skip
            assert found.status_code == 201, found.text

        # Reception revises the estimate (workorders' event); the list shows it by itself.
        await expect(row).to_contain_text("BRK-DISC-R", timeout=30_000)
        assert await page.evaluate("window.notReloaded") is True
        await shoot(page, "live-05-extra-work-arrived")
        await no_serious_violations(page)
        assert await small_targets(page) == []
    finally:
        await context.close()
