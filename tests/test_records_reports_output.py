"""The month's report as CSV, XLSX, the HTML page with its charts and the PDF with its charts,
in Chinese and English: the files carry the same numbers as the JSON."""

import csv
import io
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from shared import pdf
from tests import test_records_reports as reports
from tests.test_records_reports import MANAGER, NOVEMBER, Month

pytestmark = [pytest.mark.asyncio, pytest.mark.store]

records = reports.records  # the in-process records app
month = reports.month  # November fed through the report consumers


async def download(client: httpx.AsyncClient, fmt: str, **params: Any) -> httpx.Response:
    r = await client.get(f"/reports/kpis.{fmt}", params={**NOVEMBER, **params}, headers=MANAGER)
    assert r.status_code == 200, r.text
    return r


async def test_csv_has_every_kpi_and_the_breakdowns(
    records: httpx.AsyncClient, month: Month
) -> None:
    json_report = await reports.kpis(records, MANAGER)
    r = await download(records, "csv")
    assert r.headers["content-type"].startswith("text/csv")
    assert 'filename="report-BR01-2026-11-01-2026-11-30-en.csv"' in r.headers["content-disposition"]
    text = r.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    kpi = {row["key"]: row for row in rows if row["section"] == "kpi"}
    assert set(kpi) == {k["id"] for k in json_report["kpis"]}
    assert float(kpi["revenue_total"]["value"]) == 1900
    assert (
        kpi["on_time_delivery_rate"]["numerator"],
        kpi["on_time_delivery_rate"]["denominator"],
    ) == ("2", "3")
    assert kpi["major_complaint_rate"]["target_met"] == "false"
    revenue = {row["key"]: row["value"] for row in rows if row["section"] == "revenue"}
    assert revenue["warranty/part"] == "200.00"
    assert sum(1 for row in rows if row["section"] == "daily") == 30

    zh = (await download(records, "csv", lang="zh-CN")).content.decode("utf-8-sig")
    assert "准时交车率" in zh and "保修 · 配件" in zh


async def test_xlsx_sheets_carry_the_numbers(records: httpx.AsyncClient, month: Month) -> None:
    r = await download(records, "xlsx", lang="zh-CN")
    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["KPIs", "营业额", "技师", "SERVQUAL", "每日", "指标口径"]
    sheet = book["KPIs"]
    assert "售后经营月报" in str(sheet["A1"].value)
    values = {row[1]: row[2] for row in sheet.iter_rows(min_row=4, values_only=True)}
    assert values["revenue_total"] == 1900
    assert values["first_time_fix_rate"] == round(1 - 1 / 3, 4)
    techs = {row[0]: row for row in book["技师"].iter_rows(min_row=2, values_only=True)}
    assert techs["tech-B"][4] == round(1.0 / 2.2, 4)
    defs = [row[0] for row in book["指标口径"].iter_rows(min_row=2, values_only=True)]
    assert "appointment_show_rate" in defs


async def test_the_report_page_draws_its_charts(records: httpx.AsyncClient, month: Month) -> None:
    r = await download(records, "html")
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert page.count("<svg") == 2
    # The trend: one point per day for each series.
    lines = re.findall(r'<polyline class="series"[^>]*points="([^"]+)"', page)
    assert len(lines) == 2 and all(len(points.split()) == 30 for points in lines)
    # The bars: one per pay type and kind, valued as in the JSON.
    bars = re.findall(r'data-kind="(\w+)" data-value="([\d.]+)"', page)
    assert ("part", "200.00") in bars and ("labour", "850.00") in bars
    assert "/reports/kpis/on_time_delivery_rate/items?" in page
    zh = (await download(records, "html", lang="zh-CN")).text
    assert "一次修复率" in zh and 'lang="zh-CN"' in zh
    # The page brings its own Chinese face (a manager's browser may have none).
    font_url = re.search(r'src:url\("([^"]+)"\) format\("truetype"\)', zh)
    assert font_url is not None
    font = await records.get(font_url.group(1))  # a web font is fetched without a token
    assert font.status_code == 200 and font.headers["content-type"] == "font/ttf"
    assert font.content[:4] == b"\x00\x01\x00\x00"  # a TrueType file, not a collection


async def test_the_pdf_prints_kpis_charts_and_definitions_in_both_languages(
    records: httpx.AsyncClient, month: Month, tmp_path: Path
) -> None:
    r = await download(records, "pdf", lang="zh-CN")
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    text = pdf.pdf_text(r.content)
    expected = ["售后经营月报", "准时交车率", "66.67%", "¥1,900.00", "每日开单与交车",
                "按付费类型的营业额", "tech-A", "指标口径", "第 1 页", "未达标",
                "维修类工单数"]  # fmt: skip
    for words in expected:
        assert words in text, words
    english = pdf.pdf_text((await download(records, "pdf", lang="en")).content)
    for words in ("After-sales monthly report", "On-time delivery rate", "Repair orders per day",
                  "Revenue by pay type", "Major complaint rate", "Page 1 of"):  # fmt: skip
        assert words in english, words

    import pypdfium2

    document = pypdfium2.PdfDocument(r.content)
    image = document[0].render(scale=1.5).to_pil()
    image.save(tmp_path / "report-page-1.png")
    assert image.width > 800
    # The charts put colour on the page (a text-only page would be black on white).
    counted = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    colours = {px for _, px in counted if max(px) - min(px) > 80}
    assert len(colours) > 10
