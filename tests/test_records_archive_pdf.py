"""The vehicle's history as a PDF in Chinese and English, from the archive built by the
handlers, on a real database (SQLite, and PostgreSQL in its leg)."""

import io
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from PIL import Image
from pypdf import PdfReader

from shared import pdf
from tests.harness import NatsServer, auth
from tests.test_bad_input import assert_problem
from tests.test_records_archive import T0, VIN, Story, events_of, feed, seeded, with_envelopes
from tests.test_records_files import JPEG, RecordsClient, runtime_of, upload

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
    assert r.headers["x-content-type-options"] == "nosniff"
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


def photo(colour: str, size: tuple[int, int], kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, kind)
    return out.getvalue()


async def test_the_walk_arounds_photos_are_printed_small(records):
    """The newest walk-around's photos as thumbnails; a photo records no longer holds, or
    a file that is no image, is left out (its count stays)."""
    story = Story()
    broken = JPEG  # a JPEG header and noise: stored, but no picture
    for n, content in enumerate(
        (broken, photo("red", (1600, 1200), "JPEG"), photo("blue", (800, 600), "PNG"))
    ):
        r = await upload(records, content, name=f"photo-{n}.jpg")
        assert r.status_code == 201, r.text
        story.intake_photos[n] = uuid.UUID(r.json()["id"])
    await feed(runtime_of(records).db, with_envelopes(events_of(story), story))

    data = await history(records, story.vehicle_id)
    images = images_in(data)
    assert len(images) == 2  # the newest version's two photos, not the replaced one
    assert all(max(i.image.size) <= 160 for i in images)
    assert len(data) < 200_000
    assert "照片 2 张" in pdf.pdf_text(data)

    # The broken file named instead: no picture, the count still printed.
    newer = story.inspected(
        5,
        T0 + timedelta(minutes=14),
        [("rear_bumper_left", "scratch", story.intake_photos[0]),
         ("door_front_right", "dent", story.intake_photos[2])],
    )  # fmt: skip
    await feed(runtime_of(records).db, with_envelopes([newer], story))
    assert len(images_in(await history(records, story.vehicle_id))) == 1

    # After the customer's erasure the photos are gone from records, and from the paper.
    r = await records.post(
        f"/customers/{story.customer_id}/erasure", headers=CLERK, json={"requested_by": "王芳"}
    )
    assert r.status_code == 201, r.text
    data = await history(records, story.vehicle_id)
    assert images_in(data) == [] and "照片 2 张" in pdf.pdf_text(data)


def images_in(data: bytes) -> list[Any]:
    return [image for page in PdfReader(io.BytesIO(data)).pages for image in page.images]
