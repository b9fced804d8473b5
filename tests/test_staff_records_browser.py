"""The records clerk's pages of the staff app in Debian's chromium, against reception,
records and the staff app as real processes: the technical library (a PDF uploaded with
its applicability, op codes and who may see it, found by a Chinese and an English
search, a new version), the lending desk (a loan from the request to the return, an
overdue loan with its borrower), a vehicle's archive with its printed history, a
customer's erasure after its confirmation step; role rules; both languages,
accessibility and touch target sizes."""

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared import pdf
from tests.flow import valid_vin
from tests.harness import ServiceProcess, Stack, auth, backend, eventually, token
from tests.staff_pages import (
    SCREENSHOTS,
    TABLET_LANDSCAPE,
    launch,
    no_serious_violations,
    require_chromium,
    shoot,
    small_targets,
    staff_process,
)
from tests.test_records_library_search import printed

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]
SHANGHAI = ZoneInfo("Asia/Shanghai")
CLERK = auth("records_clerk")
SIGN_IN_PAGE = re.compile(r"/signin/dev\?next=")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, ServiceProcess]]:
    require_chromium()
    root = tmp_path_factory.mktemp("records-pages")
    stack = Stack(root, services=("reception", "records")).start()
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


async def checked(page: Any, name: str) -> None:
    """A screenshot to look at, axe, and every control big enough for a finger."""
    await shoot(page, name)
    await no_serious_violations(page)
    assert await small_targets(page) == []


def picture(document: bytes, name: str) -> None:
    """The PDF's first page as a PNG beside the screenshots, to look at."""
    import pypdfium2

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = pypdfium2.PdfDocument(document)[0]
    page.render(scale=1.5).to_pil().save(SCREENSHOTS / f"{name}.png")


async def records_get(
    stack: Stack, path: str, headers: dict[str, str] = CLERK, **params: Any
) -> Any:
    async with httpx.AsyncClient(base_url=stack.url("records"), timeout=10) as api:
        r = await api.get(path, headers=headers, params=params)
        assert r.status_code == 200, r.text
        return r.json()


async def test_the_clerk_uploads_a_document_and_finds_it_in_chinese_and_english(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    manual = printed(
        "前制动卡钳更换 Front brake caliper replacement",
        "拆下前制动卡钳，检查制动盘厚度。",
        "Torque the caliper bolts to 35 Nm.",
    )
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "clerk-lin", "/records/library")
        await expect(page.get_by_role("heading", name="技术资料库")).to_be_visible()
        form = page.get_by_test_id("upload")
        await form.get_by_label("文件（PDF 或图片）").set_input_files(
            {"name": "caliper.pdf", "mimeType": "application/pdf", "buffer": manual}
        )
        await form.get_by_label("标题").fill("前制动卡钳更换手册")
        await form.get_by_label("类别").select_option("manual")
        await form.get_by_label("标签（用逗号分隔）").fill("制动，卡钳")
        await form.get_by_label("工时代码（用逗号或空格分隔）").fill("BRK-010, BRK-011")
        rule = form.get_by_test_id("rule-0")
        await rule.get_by_label("品牌").fill("Toyota")
        await rule.get_by_label("车型").fill("Camry")
        await rule.get_by_label("起始年款").fill("2018")
        await rule.get_by_label("截止年款").fill("2024")
        # A VIN prefix with the letter O, which VINs never have: told next to the field.
        await form.get_by_test_id("rule-1").get_by_label("VIN 前缀").fill("LVOHF")
        await form.get_by_label("保密文档（仅限下列角色）").check()
        await form.get_by_label("技师").check()
        await form.get_by_label("调度").check()
        await form.get_by_role("button", name="上传").click()
        bad = page.get_by_test_id("upload").get_by_test_id("rule-1").locator(".field.invalid")
        await expect(bad).to_contain_text("格式不正确")
        await expect(page.get_by_test_id("file-kept")).to_contain_text("caliper.pdf")
        await shoot(page, "records-01-upload-refused-zh")
        key = await page.locator('[data-testid=upload] input[name="idempotency_key"]').input_value()
        assert key

        # Corrected without choosing the file again: the document is saved.
        form = page.get_by_test_id("upload")
        await form.get_by_test_id("rule-1").get_by_label("VIN 前缀").fill("LVGHF")
        await form.get_by_role("button", name="上传").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("前制动卡钳更换手册")

        found = await records_get(stack, "/library/search", q="卡钳")
        doc = next(
            h["document"] for h in found["items"] if h["document"]["title"] == "前制动卡钳更换手册"
        )
        assert doc["op_codes"] == ["BRK-010", "BRK-011"]
        assert doc["tags"] == ["制动", "卡钳"]
        assert doc["applies_to"][0] == {
            "make": "Toyota",
            "model": "Camry",
            "year_from": 2018,
            "year_to": 2024,
            "vin_prefix": None,
        }
        assert doc["applies_to"][1]["vin_prefix"] == "LVGHF"
        assert doc["confidential"] is True
        assert sorted(doc["allowed_roles"]) == ["foreman", "technician"]
        assert doc["text_extraction"] == "extracted"

        # Found by a Chinese word from the PDF's text and by an English one.
        for words in ("制动盘", "caliper bolts"):
            await page.get_by_label("关键词（中文或英文）").fill(words)
            await page.get_by_test_id("search").get_by_role("button", name="搜索").click()
            row = page.get_by_test_id("hits").locator(f'[data-document="{doc["id"]}"]')
            await expect(row).to_contain_text("前制动卡钳更换手册")
            await expect(row).to_contain_text("Toyota Camry 2018–2024")
            await expect(row).to_contain_text("BRK-010")
        await checked(page, "records-02-library-search-zh")
        await page.get_by_label("关键词（中文或英文）").fill("变速箱")
        await page.get_by_test_id("search").get_by_role("button", name="搜索").click()
        await expect(page.get_by_test_id("no-hits")).to_be_visible()

        # Opened through the staff app with the clerk's token: the same bytes, logged.
        opened = await page.request.get(f"{staff.url}/records/library/{doc['id']}/content")
        assert opened.status == 200
        assert opened.headers["content-type"] == "application/pdf"
        assert await opened.body() == manual

        # A new version from the document's page.
        await page.goto(f"{staff.url}/records/library/{doc['id']}")
        bulletin = printed("冷却系统通报", "Replace the coolant pump seal.")
        version = page.get_by_test_id("new-version")
        await version.get_by_label("文件（PDF 或图片）").set_input_files(
            {"name": "v2.pdf", "mimeType": "application/pdf", "buffer": bulletin}
        )
        await version.get_by_label("版本说明").fill("2027 款更新")
        await version.get_by_role("button", name="上传").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("已上传第 2 版")
        await expect(page.get_by_test_id("versions")).to_contain_text("2027 款更新")
        await expect(page.get_by_test_id("downloads")).to_contain_text("林晓")
        await checked(page, "records-03-document-zh")
        now = await records_get(stack, f"/library/documents/{doc['id']}")
        assert now["current_version"] == 2
        assert [
            h["document"]["id"]
            for h in (await records_get(stack, "/library/search", q="coolant"))["items"]
        ] == [doc["id"]]

        # A stale edit (the document moved on since the page was shown) is refused.
        stale = await context.new_page()
        await stale.goto(f"{staff.url}/records/library/{doc['id']}")
        await page.get_by_test_id("edit").get_by_label("标题").fill("前制动卡钳更换手册（2027）")
        await page.get_by_test_id("edit").get_by_role("button", name="保存修改").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("修改已保存")
        await stale.get_by_test_id("edit").get_by_label("标题").fill("别的标题")
        await stale.get_by_test_id("edit").get_by_role("button", name="保存修改").click()
        await expect(stale.get_by_test_id("problem")).to_contain_text("已被他人修改")
        assert (await records_get(stack, f"/library/documents/{doc['id']}"))["title"] == (
            "前制动卡钳更换手册（2027）"
        )

        # English.
        await page.get_by_test_id("language").click()
        await expect(page.get_by_role("heading", name="Versions")).to_be_visible()
        await shoot(page, "records-04-document-en")
        await page.get_by_test_id("language").click()
    finally:
        await context.close()


async def test_a_loan_from_request_to_return_and_an_overdue_one(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "clerk-lin", "/records/lending")
        add = page.get_by_test_id("add-item")
        title = f"凯美瑞维修手册 副本 {uuid.uuid4().hex[:4]}"
        await add.get_by_label("物品名称").fill(title)
        await add.get_by_label("架位号").fill("A-3-12")
        await add.get_by_role("button", name="登记物品").click()
        await expect(page.get_by_test_id("saved")).to_contain_text(title)
        shelf = (await records_get(stack, "/lending/items"))["items"]
        item = next(i for i in shelf if i["title"] == title)
        assert item["shelf_mark"] == "A-3-12"

        # A technician asks for it (from the workshop, through records' API).
        tech = {"Authorization": f"Bearer {token('technician', sub='tech-li')}"}
        async with httpx.AsyncClient(base_url=stack.url("records"), timeout=10) as api:
            r = await api.post(
                "/lending/loans",
                headers={**tech, "Idempotency-Key": uuid.uuid4().hex},
                json={"item_id": item["id"], "purpose": "更换刹车片参考"},
            )
            assert r.status_code == 201, r.text
            loan = r.json()
        await page.reload()
        row = page.get_by_test_id("waiting").locator(f'[data-loan="{loan["id"]}"]')
        await expect(row).to_contain_text(title)
        await expect(row).to_contain_text("更换刹车片参考")
        await checked(page, "records-05-lending-request-zh")

        # Approved with a day already past: told next to the due date, nothing written.
        yesterday = (datetime.now(SHANGHAI).date() - timedelta(days=1)).isoformat()
        approve = page.get_by_test_id(f"approve-{loan['id']}")
        await approve.get_by_label("归还日期").fill(yesterday)
        key = await approve.locator('input[name="idempotency_key"]').input_value()
        await approve.get_by_role("button", name="批准").click()
        approve = page.get_by_test_id(f"approve-{loan['id']}")
        await expect(approve.locator(".field.invalid")).to_contain_text("不能早于今天")
        assert await approve.locator('input[name="idempotency_key"]').input_value() == key
        assert (await records_get(stack, f"/lending/loans/{loan['id']}"))["status"] == "requested"
        await shoot(page, "records-06-lending-bad-due-zh")
        due = (datetime.now(SHANGHAI).date() + timedelta(days=7)).isoformat()
        await approve.get_by_label("归还日期").fill(due)
        await approve.get_by_role("button", name="批准").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("已批准")
        approved = await records_get(stack, f"/lending/loans/{loan['id']}")
        assert approved["status"] == "approved" and approved["due_on"] >= due

        await page.get_by_test_id(f"hand-out-{loan['id']}").get_by_role("button").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("已出借")
        assert (await records_get(stack, f"/lending/loans/{loan['id']}"))["status"] == "out"

        # Returned: the condition is required, told next to it.
        back = page.get_by_test_id(f"return-{loan['id']}")
        await back.get_by_role("button", name=re.compile("归还")).click()
        back = page.get_by_test_id(f"return-{loan['id']}")
        await expect(back.locator(".field.invalid")).to_contain_text("归还时须选择物品状况")
        await back.get_by_label("归还状况").select_option("worn")
        await back.get_by_label("备注").fill("第 12 页有油渍")
        await back.get_by_role("button", name=re.compile("归还")).click()
        await expect(page.get_by_test_id("saved")).to_contain_text("已归还")
        returned = await records_get(stack, f"/lending/loans/{loan['id']}")
        assert (returned["status"], returned["return_condition"]) == ("returned", "worn")
        assert returned["note"] == "第 12 页有油渍"

        # A second loan, out and past its due date: on the overdue list with its borrower.
        zhou = {"Authorization": f"Bearer {token('technician', sub='tech-zhou')}"}
        async with httpx.AsyncClient(base_url=stack.url("records"), timeout=10) as api:
            r = await api.post("/lending/loans", headers=zhou, json={"item_id": item["id"]})
            late = r.json()
            for action, body in (("approve", {"due_on": due}), ("hand-out", {})):
                r = await api.post(
                    f"/lending/loans/{late['id']}/{action}",
                    headers={**CLERK, "If-Match": late["etag"]},
                    json=body,
                )
                assert r.status_code == 200, r.text
                late = r.json()
        # As if it had been due three days ago (records refuses a due date in the past).
        due_then = datetime.now(SHANGHAI).date() - timedelta(days=3)
        late_key: Any = late["id"] if backend() == "postgres" else uuid.UUID(late["id"]).hex
        engine = create_async_engine(stack.database_urls["records"])
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text("UPDATE loan SET due_on = :d WHERE id = :id"),
                    {
                        "d": due_then if backend() == "postgres" else due_then.isoformat(),
                        "id": late_key,
                    },
                )
        finally:
            await engine.dispose()
        await page.reload()
        overdue = page.get_by_test_id("overdue").locator(f'[data-loan="{late["id"]}"]')
        await expect(overdue).to_contain_text("tech-zhou")
        await expect(overdue).to_contain_text("逾期 3 天")
        await expect(
            page.get_by_test_id("out").locator(f'[data-loan="{late["id"]}"]')
        ).to_contain_text("已逾期")
        await checked(page, "records-07-lending-overdue-zh")
        # Never coming back: recorded as lost, and so is the item.
        await page.get_by_test_id(f"report-lost-{late['id']}").get_by_role("button").click()
        await expect(page.get_by_test_id("saved")).to_contain_text("已登记遗失")
        await expect(
            page.get_by_test_id("shelf").locator(f'[data-item="{item["id"]}"]')
        ).to_contain_text("已遗失")
        assert (await records_get(stack, f"/lending/loans/{late['id']}"))["status"] == "lost"
        assert (await records_get(stack, f"/lending/items/{item['id']}"))["lost_at"]
        await page.get_by_test_id("language").click()
        await expect(
            page.get_by_role("heading", name="Overdue (chase the borrower)")
        ).to_be_visible()
        await shoot(page, "records-08-lending-en")
        await page.get_by_test_id("language").click()
    finally:
        await context.close()


async def registered(stack: Stack, name: str, plate: str) -> tuple[dict[str, Any], dict[str, Any]]:
    advisor = auth("advisor")
    async with httpx.AsyncClient(base_url=stack.url("reception"), timeout=10) as api:
        r = await api.post(
            "/customers", headers=advisor, json={"name": name, "mobile": "13611112222"}
        )
        assert r.status_code == 201, r.text
        customer = r.json()
        r = await api.post(
            "/vehicles",
            headers=advisor,
            json={"customer_id": customer["id"], "vin": valid_vin("LFV2A2150P"), "plate": plate},
        )
        assert r.status_code == 201, r.text
        return customer, r.json()


async def test_an_archive_with_its_history_pdf_and_an_erasure_after_its_confirmation(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    customer, vehicle = await registered(stack, "韩梅梅", "沪C54321")

    async def archived() -> bool:
        async with httpx.AsyncClient(base_url=stack.url("records"), timeout=10) as api:
            r = await api.get(f"/customers/{customer['id']}/timeline", headers=CLERK)
            kinds = {e["kind"] for e in r.json()["entries"]} if r.status_code == 200 else set()
            return {"customer.registered", "vehicle.registered"} <= kinds

    await eventually(archived, what="the customer and the car in records' archive")
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "clerk-lin", "/records/archive")
        await page.get_by_label("车架号（17 位）").fill(vehicle["vin"].lower())
        await page.get_by_role("button", name="查找").click()
        found = page.get_by_test_id("vehicles").locator(f'[data-vehicle="{vehicle["id"]}"]')
        await expect(found).to_contain_text("沪C54321")
        await checked(page, "records-09-archive-find-zh")
        await found.get_by_role("link", name="车辆档案").click()
        await expect(page.get_by_test_id("card")).to_contain_text(vehicle["vin"])
        await expect(page.get_by_test_id("timeline")).to_contain_text("车辆登记")
        await checked(page, "records-10-vehicle-zh")

        # The printed history, fetched with the clerk's token, in both languages.
        for lang, words in (("zh-CN", "维修"), ("en", "history")):
            link = page.get_by_test_id("pdf-zh" if lang == "zh-CN" else "pdf-en")
            href = await link.get_attribute("href")
            printed_pdf = await page.request.get(f"{staff.url}{href}")
            assert printed_pdf.status == 200
            assert printed_pdf.headers["content-type"] == "application/pdf"
            body = await printed_pdf.body()
            assert body.startswith(b"%PDF")
            said = pdf.pdf_text(body)
            assert vehicle["vin"] in said and words in said.lower()
            assert "韩梅梅" not in said  # the history goes with the car, not its owner
            picture(body, f"records-history-{lang}")

        # The owner's file: the erasure, with its confirmation step.
        await page.get_by_test_id("owner").click()
        await expect(page.get_by_test_id("customer-name")).to_have_text("韩梅梅")
        exported = await page.request.get(
            f"{staff.url}/records/archive/customers/{customer['id']}/export.json"
        )
        assert exported.status == 200
        assert "attachment" in exported.headers["content-disposition"]
        assert (await exported.json())["customer"]["name"] == "韩梅梅"
        form = page.get_by_test_id("erasure")
        await form.get_by_label("申请人").fill("   ")
        await form.get_by_role("button", name="下一步：确认").click()
        await expect(page.get_by_test_id("erasure").locator(".field.invalid")).to_contain_text(
            "必填"
        )
        await checked(page, "records-11-customer-zh")
        form = page.get_by_test_id("erasure")
        await form.get_by_label("申请人").fill("韩梅梅本人")
        await form.get_by_label("申请方式").select_option("letter")
        await form.get_by_label("原因").fill("不再在本店保养")
        await form.get_by_role("button", name="下一步：确认").click()
        confirm = page.get_by_test_id("erasure-confirm")
        await expect(confirm).to_contain_text("不可撤销")
        await expect(confirm).to_contain_text("1 辆车")
        await checked(page, "records-12-erasure-confirm-zh")
        # Nothing erased until it is confirmed.
        card = await records_get(stack, f"/customers/{customer['id']}/timeline")
        assert card["name"] == "韩梅梅" and not card["erased"]
        await page.get_by_role("button", name="确认删除").click()
        await expect(page.get_by_test_id("erasure-result")).to_contain_text("1 辆车")
        await expect(page.get_by_test_id("erasure-result")).to_contain_text("韩梅梅本人")
        await checked(page, "records-13-erasure-done-zh")
        card = await records_get(stack, f"/customers/{customer['id']}/timeline")
        assert card["erased"] and card["name"] != "韩梅梅"
        export = await records_get(stack, f"/customers/{customer['id']}/export")
        (erasure,) = export["erasures"]
        assert (erasure["requested_by"], erasure["request_channel"]) == ("韩梅梅本人", "letter")
        assert erasure["erased_by"] == "clerk-lin"
        # Sent again from the confirmation page (back, and a second tap): the same key, so
        # records answers with the first erasure and erases nothing more.
        await page.go_back()
        await page.get_by_role("button", name="确认删除").click()
        await expect(page.get_by_test_id("erasure-result")).to_contain_text("韩梅梅本人")
        assert (
            len((await records_get(stack, f"/customers/{customer['id']}/export"))["erasures"]) == 1
        )
        await page.get_by_test_id("language").click()
        await expect(page.get_by_test_id("erased")).to_have_text("Personal data erased")
        await shoot(page, "records-14-customer-erased-en")
        await page.get_by_test_id("language").click()
    finally:
        await context.close()


async def test_pages_are_refused_to_roles_records_does_not_let_in(
    running: tuple[Stack, ServiceProcess], browser: Any
) -> None:
    from playwright.async_api import expect

    stack, staff = running
    context = await browser.new_context(viewport=TABLET_LANDSCAPE, locale="zh-CN")
    try:
        page = await context.new_page()
        await sign_in(page, staff.url, "tech-li", "/welcome")
        for path in ("/records/library", "/records/lending", "/records/archive"):
            response = await page.goto(f"{staff.url}{path}")
            assert response is not None and response.status == 403, path
            await expect(page.get_by_text("您的角色无权打开此页面。")).to_be_visible()
        await shoot(page, "records-15-refused-technician-zh")
        await page.goto(f"{staff.url}/welcome")
        await page.get_by_role("button", name="退出").click()

        # The manager reads the library and the archive, but keeps neither the library
        # nor the lending desk.
        await sign_in(page, staff.url, "manager-wang", "/records/library")
        await expect(page.get_by_test_id("upload")).to_have_count(0)
        await expect(page.get_by_role("link", name="借阅台")).to_have_count(0)
        await checked(page, "records-16-library-manager-zh")
        assert (await page.goto(f"{staff.url}/records/archive")).status == 200
        response = await page.goto(f"{staff.url}/records/lending")
        assert response is not None and response.status == 403
        await page.goto(f"{staff.url}/records/library")
        csrf = await page.locator('input[name="csrf"]').first.input_value()
        before = len((await records_get(stack, "/library/search"))["items"])
        refused = await page.request.post(
            f"{staff.url}/records/library",
            multipart={
                "csrf": csrf,
                "title": "经理上传",
                "category": "manual",
                "file": {
                    "name": "m.pdf",
                    "mimeType": "application/pdf",
                    "buffer": printed("x", "y"),
                },
            },
        )
        assert refused.status == 403
        assert len((await records_get(stack, "/library/search"))["items"]) == before
        # The clerk lands on the library.
        await page.goto(f"{staff.url}/welcome")
        await page.get_by_role("button", name="退出").click()
        await page.goto(f"{staff.url}/signin/dev")
        await page.click('button[data-sub="clerk-lin"]')
        await page.wait_for_url(f"{staff.url}/records/library")
    finally:
        await context.close()
