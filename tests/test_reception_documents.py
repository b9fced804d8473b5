"""The printed intake sheet and estimate: Chinese or English (the customer's language or
`lang`), with what the walk-around found and the estimate's lines, tax and totals."""

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from shared import pdf
from tests.flow import valid_vin
from tests.harness import NatsServer, auth
from tests.test_bad_input import assert_problem
from tests.test_reception_files import ReceptionWithRecords, png, upload

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

ADVISOR = auth("advisor")


@pytest_asyncio.fixture
async def apps(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with ReceptionWithRecords(database_url, nats_server, tmp_path / "records") as pair:
        yield pair


async def _walked_intake(
    reception: httpx.AsyncClient, records: httpx.AsyncClient, language: str
) -> dict[str, Any]:
    r = await reception.post(
        "/customers",
        headers=ADVISOR,
        json={
            "name": "李雷 Li Lei",
            "mobile": "13800138001",
            "other_mobiles": ["13900139002"],
            "language": language,
        },
    )
    assert r.status_code == 201, r.text
    r = await reception.post(
        "/vehicles",
        headers=ADVISOR,
        json={"customer_id": r.json()["id"], "vin": valid_vin(), "plate": "沪A9P123"},
    )
    assert r.status_code == 201, r.text
    r = await reception.post(
        "/intakes",
        headers=ADVISOR,
        json={
            "vehicle_id": r.json()["id"],
            "odometer_km": 45210,
            "concerns": ["刹车时有异响 <吱吱>", "Air conditioning smells musty"],
        },
    )
    assert r.status_code == 201, r.text
    intake = r.json()
    url = f"/intakes/{intake['id']}"
    etag = (await reception.get(url, headers=ADVISOR)).headers["ETag"]
    r = await reception.patch(
        url,
        headers={**ADVISOR, "If-Match": etag},
        json={
            "fuel_level_pct": 35,
            "checklist": [
                {"item": "tyre_front_left", "state": "attention", "tread_depth_mm": "2.5"},
                {"item": "wipers", "state": "urgent", "note": "雨刮老化"},
                {"item": "roof_rack", "state": "ok"},
            ],
            "damage_marks": [
                {
                    "position": "rear_bumper_left",
                    "kind": "scratch",
                    "photo_file_id": await upload(records, png(intake["id"])),
                    "note": "约10cm",
                }
            ],
            "valuables_acknowledged": True,
            "signature_file_id": await upload(records, png(f"signature {intake['id']}")),
        },
    )
    assert r.status_code == 200, r.text
    return intake


def images_on_page_one(data: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(data)).pages[0].images)


async def test_the_intake_sheet_prints_the_walk_around_in_the_customers_language(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient],
):
    reception, records = apps
    intake = await _walked_intake(reception, records, "zh-CN")
    url = f"/intakes/{intake['id']}/sheet.pdf"
    zh = await reception.get(url, headers=auth("records_clerk"))
    assert zh.status_code == 200, zh.text
    assert zh.headers["content-type"] == "application/pdf" and zh.content.startswith(b"%PDF")
    text = pdf.pdf_text(zh.content)
    for expected in (
        "接车单",
        "沪A9P123",
        "45,210",
        "燃油 35%",
        "左前轮胎",
        "需注意",
        "2.5 mm",
        "雨刮老化",
        "紧急",
        "□需注意",  # an item not checked yet prints its choices, to tick on paper
        "roof_rack",  # an item beyond the standard list is printed as recorded
        "rear_bumper_left",
        "划痕",
        "有照片",
        "刹车时有异响 <吱吱>",
        "Air conditioning smells musty",
        "贵重物品",
        "客户已确认",
        "客户签字",
        "13900139002",
    ):
        assert expected in text, expected
    en = await reception.get(url, headers=ADVISOR, params={"lang": "en"})
    text = pdf.pdf_text(en.content)
    for expected in (
        "Vehicle intake sheet",
        "Tyre front left",
        "Attention",
        "Scratch",
        "Valuables",
    ):
        assert expected in text, expected
    assert "环车检查" not in text
    assert "刹车时有异响" in text  # the customer's words stay as said
    # the damage photo and the signature, read from records, are on the sheet
    assert images_on_page_one(zh.content) == 2
    assert "#1 rear_bumper_left" in pdf.pdf_text(zh.content)

    # records unreachable: the sheet still prints, saying the pictures are on file
    reception_app = reception._transport.app  # type: ignore[attr-defined]
    records_transport = reception_app.state.records_transport
    reception_app.state.records_transport = None
    reception_app.state.settings.records_url = "http://127.0.0.1:9"
    try:
        offline = await reception.get(url, headers=ADVISOR)
    finally:
        reception_app.state.records_transport = records_transport
    assert offline.status_code == 200, offline.text
    assert images_on_page_one(offline.content) == 0
    assert "有照片" in pdf.pdf_text(offline.content)

    assert_problem(await reception.get(url, headers=ADVISOR, params={"lang": "fr"}), 422, "lang")
    assert_problem(await reception.get(url, headers=auth("advisor", "BR02")), 404)
    assert_problem(await reception.get(url, headers=auth("technician")), 403)


async def test_the_estimate_prints_lines_pay_types_tax_totals_and_the_promised_time(
    apps: tuple[httpx.AsyncClient, httpx.AsyncClient],
):
    reception, records = apps
    intake = await _walked_intake(reception, records, "en")
    promised = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    r = await reception.post(
        "/estimates",
        headers=ADVISOR,
        json={
            "intake_id": intake["id"],
            "promised_at": promised.isoformat(),
            "lines": [
                {
                    "kind": "labour",
                    "op_code": "BRK-PAD-F",
                    "description": "更换前刹车片 Replace front brake pads",
                    "flat_rate_hours": "1.2",
                    "labour_rate": "380",
                },
                {
                    "kind": "part",
                    "part_number": "5QD698151",
                    "description": "Brake pads",
                    "quantity": "2",
                    "unit_price": "234.5",
                    "discount": "20",
                },
                {
                    "kind": "labour",
                    "op_code": "WTY-AC",
                    "description": "AC valve (warranty)",
                    "flat_rate_hours": "0.7",
                    "labour_rate": "380",
                    "pay_type": "warranty",
                },
            ],
        },
    )
    assert r.status_code == 201, r.text
    estimate = r.json()
    url = f"/estimates/{estimate['id']}/estimate.pdf"
    en = await reception.get(url, headers=auth("cashier"))
    assert en.status_code == 200, en.text
    text = pdf.pdf_text(en.content)
    local = promised.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    totals = estimate["totals"]
    for expected in (
        "Repair estimate",
        "BRK-PAD-F",
        "5QD698151",
        "1.20 h",
        "¥380.00",
        "¥20.00",
        "Warranty",
        "Customer",
        local,
        "Tax (13%)",
        pdf.money(totals["net"]),
        pdf.money(totals["tax"]),
        pdf.money(totals["total"]),
        *(pdf.money(line["net"]) for line in estimate["lines"]),
    ):
        assert expected in text, expected
    for by_type in totals["by_pay_type"]:
        assert pdf.money(by_type["tax"]) in text
    zh = await reception.get(url, headers=ADVISOR, params={"lang": "zh-CN"})
    text = pdf.pdf_text(zh.content)
    assert "维修估价单" in text and "保修" in text and "税额 (13%)" in text
    assert pdf.money(totals["total"]) in text

    # an earlier revision prints as it was
    etag = r.headers["ETag"]
    lines = [
        {k: v for k, v in line.items() if k not in ("net", "offer", "answer", "extra_work_id")}
        for line in estimate["lines"][:1]
    ]
    revised = await reception.put(
        f"/estimates/{estimate['id']}",
        headers={**ADVISOR, "If-Match": etag},
        json={"promised_at": promised.isoformat(), "lines": lines},
    )
    assert revised.status_code == 200, revised.text
    first = await reception.get(url, headers=ADVISOR, params={"revision": 1})
    assert "5QD698151" in pdf.pdf_text(first.content)
    assert "5QD698151" not in pdf.pdf_text((await reception.get(url, headers=ADVISOR)).content)
    assert_problem(await reception.get(url, headers=ADVISOR, params={"revision": 9}), 404)
    assert_problem(await reception.get(url, headers=ADVISOR, params={"revision": 0}), 422)
