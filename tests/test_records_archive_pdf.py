"""The vehicle's history as a PDF in Chinese and English, from the archive built by the
handlers, on a real database (SQLite, and PostgreSQL in its leg)."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from shared import pdf
from tests.harness import NatsServer, auth
from tests.test_bad_input import assert_problem
from tests.test_records_archive import VIN, seeded
from tests.test_records_files import RecordsClient

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

CLERK = auth("records_clerk")


@pytest_asyncio.fixture
async def records(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with RecordsClient(database_url, nats_server, tmp_path / "files") as client:
        yield client


async def history(client, vehicle_id, lang: str = "zh-CN", headers=CLERK) -> bytes:
    r = await client.get(
        f"/vehicles/{vehicle_id}/history.pdf", params={"lang": lang}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert VIN in r.headers["content-disposition"]
    return r.content


async def test_vehicle_history_prints_every_visit_in_chinese_and_english(records):
    story = await seeded(records)
    await seeded(records)  # another car's history stays out of it

    zh = pdf.pdf_text(await history(records, story.vehicle_id))
    for expected in (
        "车辆档案",
        VIN,
        "沪B99999",  # the card's newest plate
        "RO-2026-000001",
        "RO-2026-000090",
        "刹车异响",  # the customer's concern at check-in
        "制动异响仍在",  # the failed QC
        "tech-li",
        "¥678.00",
        "预约",
        "（改期）",
        "满意度调查",
        "环车检查",  # the walk-around, its newest version
        "损伤 3 处；照片 2 张；客户已签字",
        "第 1 页",
    ):
        assert expected in zh, expected
    assert "王芳" not in zh  # the owner's name is not printed
    visits, full = zh[zh.index("维修记录") : zh.index("全部记录")], zh[zh.index("全部记录") :]
    assert "返修" in visits  # the second visit was a comeback
    order = ("接车", "环车检查", "开工单", "质检", "交车")
    assert [full.index(what) for what in order] == sorted(full.index(what) for what in order)

    en = pdf.pdf_text(await history(records, story.vehicle_id, "en"))
    for expected in (
        "Vehicle history",
        "Service visits",
        "Check-in",
        "Walk-around",
        "3 damage marks; 2 photos; signed by the customer",
        "Quality check",
        "failed",
    ):
        assert expected in en, expected
    assert "Page 1 of" in en and "车辆档案" not in en

    url = f"/vehicles/{story.vehicle_id}/history.pdf"
    assert_problem(await records.get(url, headers=auth("records_clerk", "BR02")), 404)
    assert_problem(await records.get(url, headers=auth("technician")), 403)
    assert_problem(await records.get(url, headers=CLERK, params={"lang": "fr"}), 422, "lang")


async def test_an_erased_customers_plates_stay_off_the_printed_history(records):
    story = await seeded(records)
    r = await records.post(
        f"/customers/{story.customer_id}/erasure", headers=CLERK, json={"requested_by": "王芳"}
    )
    assert r.status_code == 201, r.text
    text = pdf.pdf_text(await history(records, story.vehicle_id))
    for personal in ("沪A12345", "沪B99999", "王芳"):
        assert personal not in text, personal
    assert VIN in text and "RO-2026-000001" in text
