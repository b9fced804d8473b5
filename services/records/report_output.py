"""A computed report as CSV, XLSX, an HTML page with SVG charts, and a PDF with charts, in
Chinese or English. Nothing here computes a KPI: it lays out what `report_kpis` returned."""

import csv
import html
import io
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Spacer

from services.records.report_definitions import (
    BY_ID,
    DEFINITIONS,
    PERIOD_RULE,
    PERIOD_RULE_ZH,
)
from services.records.report_kpis import KpiValue, Report
from shared import pdf

PALETTE = ["#1f6fb2", "#e07b39", "#3a9a5b", "#b94a48", "#7d5ba6", "#8c8c8c"]
KIND_LABEL = {"labour": ("工时", "Labour"), "part": ("配件", "Parts"), "fee": ("费用", "Fees")}
PAY_LABEL = {
    "customer": ("客户付费", "Customer pay"),
    "warranty": ("保修", "Warranty"),
    "internal": ("内部", "Internal"),
}
DIMENSION_LABEL = {
    "reliability": ("可靠性", "Reliability"),
    "responsiveness": ("响应性", "Responsiveness"),
    "assurance": ("保证性", "Assurance"),
    "empathy": ("移情性", "Empathy"),
    "tangibles": ("有形性", "Tangibles"),
}


def t(lang: str, zh: str, en: str) -> str:
    return pdf.pick(lang, zh, en)


def label(table: dict[str, tuple[str, str]], key: str, lang: str) -> str:
    zh, en = table.get(key, (key, key))
    return t(lang, zh, en)


def scope_label(report: Report) -> str:
    return report.branch or t(report.lang, "集团", "Group")


def title(report: Report) -> str:
    period = {
        "day": t(report.lang, "日报", "daily report"),
        "week": t(report.lang, "周报", "weekly report"),
        "month": t(report.lang, "月报", "monthly report"),
        "custom": t(report.lang, "报表", "report"),
    }[report.period]
    if report.lang.startswith("zh"):
        return f"售后经营{period} · {scope_label(report)} · {report.from_on}至{report.to_on}"
    return f"After-sales {period} · {scope_label(report)} · {report.from_on} to {report.to_on}"


def show(kpi: KpiValue | None, value: float | None, unit: str) -> str:
    """A KPI value as people read it."""
    if value is None:
        return "—"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "CNY":
        return pdf.money(Decimal(str(value)))
    if unit == "CNY/hour":
        return pdf.money(Decimal(str(value))) + "/h"
    if unit == "hours":
        return f"{value:,.2f} h"
    if unit == "ratio":
        return f"{value * 100:.2f}%"
    if unit == "points":
        return f"{value:+.1f}" if kpi is None or kpi.id == "nps" else f"{value:+.2f}"
    return f"{value:.2f}"


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- CSV -------------------------------------------------------------------------------


def rows(report: Report) -> Iterator[list[Any]]:
    """One rectangular table: section, key, name, value, numerator, denominator, unit,
    target, target met, definition version."""
    lang = report.lang
    yield [
        "section",
        "key",
        "name",
        "value",
        "numerator",
        "denominator",
        "unit",
        "target",
        "target_met",
        "version",
    ]
    for k in report.kpis:
        met = "" if k.target_met is None else str(k.target_met).lower()
        yield [
            "kpi",
            k.id,
            k.name,
            _num(k.value),
            _num(k.numerator),
            _num(k.denominator),
            k.unit,
            _num(k.target),
            met,
            k.version,
        ]
    for r in report.revenue:
        name = f"{label(PAY_LABEL, r.pay_type, lang)} · {label(KIND_LABEL, r.kind, lang)}"
        yield [
            "revenue",
            f"{r.pay_type}/{r.kind}",
            name,
            str(r.net),
            str(r.hours),
            "",
            "CNY",
            "",
            "",
            "",
        ]
    for tech in report.technicians:
        yield [
            "technician_efficiency",
            tech.technician_id,
            tech.technician_id,
            _num(tech.efficiency),
            str(tech.sold_hours),
            str(tech.worked_hours),
            "ratio",
            "",
            "",
            "",
        ]
        yield [
            "technician_utilisation",
            tech.technician_id,
            tech.technician_id,
            _num(tech.utilisation),
            str(tech.clocked_hours),
            str(tech.available_hours),
            "ratio",
            "",
            "",
            "",
        ]
    for q in report.servqual:
        yield [
            "servqual",
            q.dimension,
            label(DIMENSION_LABEL, q.dimension, lang),
            _num(q.gap),
            _num(q.perception),
            _num(q.expectation),
            "points",
            "",
            "",
            "",
        ]
    for d in report.daily:
        yield [
            "daily",
            d.day.isoformat(),
            d.day.isoformat(),
            str(d.revenue),
            str(d.opened),
            str(d.delivered),
            "CNY",
            "",
            "",
            "",
        ]


def to_csv(report: Report) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows(report))
    # The byte-order mark makes Excel read the Chinese names as UTF-8.
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


# --- XLSX ------------------------------------------------------------------------------


def to_xlsx(report: Report) -> bytes:
    lang = report.lang
    book = Workbook()
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="E8E8E8")

    def sheet(name: str, header: Sequence[str], body: Sequence[Sequence[Any]], first: bool = False):
        ws = book.active if first else book.create_sheet()
        assert ws is not None
        ws.title = name
        ws.append(list(header))
        for cell in ws[1]:
            cell.font, cell.fill = bold, fill
        for row in body:
            ws.append(list(row))
        for column in ws.columns:
            width = max(len(str(c.value or "")) for c in column)
            ws.column_dimensions[column[0].column_letter].width = min(60, max(10, width + 2))
        return ws

    ws = sheet(
        "KPIs",
        [
            t(lang, "指标", "KPI"),
            "id",
            t(lang, "数值", "Value"),
            t(lang, "分子", "Numerator"),
            t(lang, "分母", "Denominator"),
            t(lang, "单位", "Unit"),
            t(lang, "目标", "Target"),
            t(lang, "达标", "Met"),
            t(lang, "口径版本", "Version"),
        ],
        [
            [
                k.name,
                k.id,
                k.value,
                k.numerator,
                k.denominator,
                k.unit,
                k.target,
                k.target_met,
                k.version,
            ]
            for k in report.kpis
        ],
        first=True,
    )
    formats = {"ratio": "0.00%", "CNY": "#,##0.00", "CNY/hour": "#,##0.00", "hours": "0.00"}
    for row_index, k in enumerate(report.kpis, start=2):
        if k.unit in formats:
            ws.cell(row=row_index, column=3).number_format = formats[k.unit]
    ws.insert_rows(1, 2)
    ws.cell(row=1, column=1, value=title(report)).font = Font(bold=True, size=13)
    sheet(
        t(lang, "营业额", "Revenue"),
        [
            t(lang, "付费类型", "Pay type"),
            t(lang, "类别", "Kind"),
            t(lang, "净额", "Net"),
            t(lang, "工时", "Hours"),
        ],
        [
            [label(PAY_LABEL, r.pay_type, lang), label(KIND_LABEL, r.kind, lang), r.net, r.hours]
            for r in report.revenue
        ],
    )
    sheet(
        t(lang, "技师", "Technicians"),
        [
            t(lang, "技师", "Technician"),
            t(lang, "工单项目", "Jobs"),
            t(lang, "售出工时", "Sold h"),
            t(lang, "实际工时", "Worked h"),
            t(lang, "效率", "Efficiency"),
            t(lang, "打卡工时", "Clocked h"),
            t(lang, "出勤天数", "Days"),
            t(lang, "可用工时", "Available h"),
            t(lang, "利用率", "Utilisation"),
        ],
        [
            [
                x.technician_id,
                x.jobs,
                x.sold_hours,
                x.worked_hours,
                x.efficiency,
                x.clocked_hours,
                x.days_clocked,
                x.available_hours,
                x.utilisation,
            ]
            for x in report.technicians
        ],
    )
    sheet(
        "SERVQUAL",
        [
            t(lang, "维度", "Dimension"),
            t(lang, "回答数", "Answers"),
            t(lang, "期望", "Expectation"),
            t(lang, "感知", "Perception"),
            t(lang, "差距", "Gap"),
        ],
        [
            [
                label(DIMENSION_LABEL, q.dimension, lang),
                q.answers,
                q.expectation,
                q.perception,
                q.gap,
            ]
            for q in report.servqual
        ],
    )
    sheet(
        t(lang, "每日", "Daily"),
        [
            t(lang, "日期", "Day"),
            t(lang, "开单", "Opened"),
            t(lang, "交车", "Delivered"),
            t(lang, "营业额", "Revenue"),
        ],
        [[d.day, d.opened, d.delivered, d.revenue] for d in report.daily],
    )
    sheet(
        t(lang, "指标口径", "Definitions"),
        [
            "id",
            t(lang, "版本", "Version"),
            t(lang, "指标", "KPI"),
            t(lang, "公式", "Formula"),
            t(lang, "计入", "Counts"),
            t(lang, "不计入", "Excludes"),
        ],
        [
            [d.id, d.version, d.name(lang), d.formula_in(lang), d.counts, d.excludes_in(lang)]
            for d in DEFINITIONS
        ],
    )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- SVG charts for the page -------------------------------------------------------------


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def svg_trend(report: Report, width: int = 720, height: int = 240) -> str:
    """Opened and delivered repair orders per day, as two lines."""
    lang = report.lang
    days = report.daily
    left, right, top, bottom = 40, 10, 24, 30
    w, h = width - left - right, height - top - bottom
    peak = max([1] + [max(d.opened, d.delivered) for d in days])
    step = w / max(1, len(days) - 1)

    def points(values: list[int]) -> str:
        return " ".join(
            f"{left + i * step:.1f},{top + h - v / peak * h:.1f}" for i, v in enumerate(values)
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{_esc(t(lang, '每日开单与交车', 'Repair orders per day'))}</title>",
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" font-size="10">{peak}</text>',
        f'<text x="{left - 4}" y="{top + h}" text-anchor="end" font-size="10">0</text>',
    ]
    series = [
        (t(lang, "开单", "opened"), [d.opened for d in days], PALETTE[0]),
        (t(lang, "交车", "delivered"), [d.delivered for d in days], PALETTE[1]),
    ]
    for i, (name, values, colour) in enumerate(series):
        parts.append(
            f'<polyline class="series" data-series="{_esc(name)}" fill="none" '
            f'stroke="{colour}" stroke-width="2" points="{points(values)}"/>'
        )
        parts.append(
            f'<text x="{left + 10 + i * 90}" y="14" font-size="11" fill="{colour}">'
            f"■ {_esc(name)}</text>"
        )
    for i, d in enumerate(days):
        if len(days) <= 10 or i % max(1, len(days) // 8) == 0:
            parts.append(
                f'<text x="{left + i * step:.1f}" y="{height - 10}" font-size="9" '
                f'text-anchor="middle">{d.day.strftime("%m-%d")}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _revenue_by_pay_type(report: Report) -> tuple[list[str], dict[str, list[float]]]:
    pay_types = sorted({r.pay_type for r in report.revenue})
    kinds = ["labour", "part", "fee"]
    values = {
        kind: [
            float(
                sum(
                    (r.net for r in report.revenue if r.pay_type == p and r.kind == kind),
                    Decimal(0),
                )
            )
            for p in pay_types
        ]
        for kind in kinds
    }
    return pay_types, values


def svg_revenue(report: Report, width: int = 720, height: int = 240) -> str:
    """Revenue per pay type, one bar per line kind."""
    lang = report.lang
    pay_types, values = _revenue_by_pay_type(report)
    left, top, bottom = 70, 24, 30
    w, h = width - left - 10, height - top - bottom
    peak = max([1.0] + [v for vs in values.values() for v in vs])
    group = w / max(1, len(pay_types))
    bar = group / 4
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{_esc(t(lang, '按付费类型的营业额', 'Revenue by pay type'))}</title>",
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" font-size="10">'
        f"{_esc(pdf.money(Decimal(str(round(peak, 2)))))}</text>",
    ]
    for k, (kind, vs) in enumerate(values.items()):
        colour = PALETTE[k]
        parts.append(
            f'<text x="{left + 10 + k * 90}" y="14" font-size="11" fill="{colour}">'
            f"■ {_esc(label(KIND_LABEL, kind, lang))}</text>"
        )
        for i, v in enumerate(vs):
            bh = v / peak * h
            x = left + i * group + bar * (k + 0.5)
            parts.append(
                f'<rect class="bar" data-kind="{kind}" data-value="{v:.2f}" x="{x:.1f}" '
                f'y="{top + h - bh:.1f}" width="{bar * 0.9:.1f}" height="{bh:.1f}" '
                f'fill="{colour}"/>'
            )
    for i, p in enumerate(pay_types):
        parts.append(
            f'<text x="{left + i * group + group / 2:.1f}" y="{height - 10}" font-size="11" '
            f'text-anchor="middle">{_esc(label(PAY_LABEL, p, lang))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _met(lang: str, met: bool | None) -> str:
    if met is None:
        return ""
    return " " + (t(lang, "达标", "met") if met else t(lang, "未达标", "not met"))


def to_html(report: Report, *, query: dict[str, str]) -> bytes:
    """The report page: KPIs with their definitions and drill-down links, and charts."""
    lang = report.lang

    def drill_link(kpi_id: str) -> str:
        return f"/reports/kpis/{kpi_id}/items?{urlencode(query)}"

    kpi_rows = "".join(
        f"<tr><td>{_esc(k.name)}</td>"
        f'<td class="num"><a href="{_esc(drill_link(k.id))}">'
        f"{_esc(show(k, k.value, k.unit))}</a></td>"
        f'<td class="num">{_esc(_num(k.numerator))}</td>'
        f'<td class="num">{_esc(_num(k.denominator))}</td>'
        f"<td>{_esc('' if k.target is None else show(k, k.target, k.unit))}"
        f"{_met(lang, k.target_met)}</td>"
        f'<td class="def">{_esc(BY_ID[k.id].formula_in(lang))} (v{k.version})</td></tr>'
        for k in report.kpis
    )
    tech_rows = "".join(
        f"<tr><td>{_esc(x.technician_id)}</td><td class='num'>{x.sold_hours}</td>"
        f"<td class='num'>{x.worked_hours}</td>"
        f"<td class='num'>{_esc(show(None, x.efficiency, 'ratio'))}</td>"
        f"<td class='num'>{x.clocked_hours}</td><td class='num'>{x.available_hours}</td>"
        f"<td class='num'>{_esc(show(None, x.utilisation, 'ratio'))}</td></tr>"
        for x in report.technicians
    )
    sq_rows = "".join(
        f"<tr><td>{_esc(label(DIMENSION_LABEL, q.dimension, lang))}</td>"
        f"<td class='num'>{q.answers}</td><td class='num'>{_esc(_num(q.expectation))}</td>"
        f"<td class='num'>{_esc(_num(q.perception))}</td>"
        f"<td class='num'>{_esc(_num(q.gap))}</td></tr>"
        for q in report.servqual
    )
    heading = t(lang, "指标", "KPI"), t(lang, "数值", "Value"), t(lang, "分子", "Numerator")
    page = f"""<!doctype html>
<html lang="{"zh-CN" if lang.startswith("zh") else "en"}"><head><meta charset="utf-8">
<title>{_esc(title(report))}</title>
<style>
@font-face{{font-family:"ReportSans";src:url("/reports/font.ttf") format("truetype");
font-display:swap}}
body{{font-family:system-ui,"PingFang SC","Microsoft YaHei","ReportSans",sans-serif;margin:24px;
color:#222}}
table{{border-collapse:collapse;margin:8px 0 20px}} td,th{{border:1px solid #ccc;padding:4px 8px}}
th{{background:#eee}} .num{{text-align:right}} .def{{font-size:12px;color:#555;max-width:420px}}
.charts{{display:flex;flex-wrap:wrap;gap:16px}} small{{color:#666}}
</style></head><body>
<h1>{_esc(title(report))}</h1>
<p><small>{_esc(t(lang, "时区", "Time zone"))}: {_esc(report.time_zone)} ·
{_esc(t(lang, "口径版本", "Definitions"))} {_esc(report.definitions_version)} ·
{_esc(t(lang, "生成于", "Generated"))} {_esc(report.generated_at.isoformat(timespec="seconds"))}
</small></p>
<div class="charts">
<figure><figcaption>{_esc(t(lang, "每日开单与交车", "Repair orders per day"))}</figcaption>
{svg_trend(report)}</figure>
<figure><figcaption>{_esc(t(lang, "按付费类型的营业额", "Revenue by pay type"))}</figcaption>
{svg_revenue(report)}</figure>
</div>
<h2>{_esc(t(lang, "关键指标", "Key figures"))}</h2>
<table id="kpis"><tr><th>{_esc(heading[0])}</th><th>{_esc(heading[1])}</th>
<th>{_esc(heading[2])}</th><th>{_esc(t(lang, "分母", "Denominator"))}</th>
<th>{_esc(t(lang, "目标", "Target"))}</th><th>{_esc(t(lang, "口径", "Definition"))}</th></tr>
{kpi_rows}</table>
<h2>{_esc(t(lang, "技师", "Technicians"))}</h2>
<table id="technicians"><tr><th>{_esc(t(lang, "技师", "Technician"))}</th>
<th>{_esc(t(lang, "售出工时", "Sold h"))}</th><th>{_esc(t(lang, "实际工时", "Worked h"))}</th>
<th>{_esc(t(lang, "效率", "Efficiency"))}</th><th>{_esc(t(lang, "打卡工时", "Clocked h"))}</th>
<th>{_esc(t(lang, "可用工时", "Available h"))}</th>
<th>{_esc(t(lang, "利用率", "Utilisation"))}</th></tr>{tech_rows}</table>
<h2>SERVQUAL</h2>
<table id="servqual"><tr><th>{_esc(t(lang, "维度", "Dimension"))}</th>
<th>{_esc(t(lang, "回答数", "Answers"))}</th><th>{_esc(t(lang, "期望", "Expectation"))}</th>
<th>{_esc(t(lang, "感知", "Perception"))}</th><th>{_esc(t(lang, "差距", "Gap"))}</th></tr>
{sq_rows}</table>
<p><small>{_esc(t(lang, PERIOD_RULE_ZH, PERIOD_RULE))}</small></p>
</body></html>
"""
    return page.encode("utf-8")


# --- PDF -------------------------------------------------------------------------------


def _chart_title(text: str, width: float, height: float) -> String:
    return String(
        0, height - 10, text, fontName=pdf.ensure_font(), fontSize=9, fillColor=colors.black
    )


def pdf_trend(report: Report) -> Drawing:
    """Repair orders delivered and revenue per day: a trend line per day."""
    lang = report.lang
    font = pdf.ensure_font()
    width, height = 180 * mm, 62 * mm
    drawing = Drawing(width, height)
    drawing.add(
        _chart_title(t(lang, "每日开单与交车（台次）", "Repair orders per day"), width, height)
    )
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 30, 22, width - 50, height - 50
    opened = [(i + 1, d.opened) for i, d in enumerate(report.daily)]
    delivered = [(i + 1, d.delivered) for i, d in enumerate(report.daily)]
    plot.data = [opened or [(1, 0)], delivered or [(1, 0)]]
    for i, colour in enumerate(PALETTE[:2]):
        plot.lines[i].strokeColor = colors.HexColor(colour)
        plot.lines[i].strokeWidth = 1.5
    plot.xValueAxis.valueMin = 1
    plot.xValueAxis.valueMax = max(2, len(report.daily))
    plot.xValueAxis.valueStep = max(1, len(report.daily) // 10)
    plot.xValueAxis.labels.fontName = font
    plot.xValueAxis.labels.fontSize = 7
    plot.xValueAxis.labelTextFormat = lambda v: (
        report.daily[int(v) - 1].day.strftime("%m-%d") if 1 <= int(v) <= len(report.daily) else ""
    )
    peak = max([1] + [max(d.opened, d.delivered) for d in report.daily])
    plot.yValueAxis.valueMin = 0
    plot.yValueAxis.valueMax = peak
    plot.yValueAxis.valueStep = max(1, -(-peak // 5))
    plot.yValueAxis.labels.fontName = font
    plot.yValueAxis.labels.fontSize = 7
    drawing.add(plot)
    legend = Legend()
    legend.x, legend.y = width - 150, height - 6
    legend.fontName, legend.fontSize = font, 8
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.colorNamePairs = [
        (colors.HexColor(PALETTE[0]), t(lang, "开单", "opened")),
        (colors.HexColor(PALETTE[1]), t(lang, "交车", "delivered")),
    ]
    drawing.add(legend)
    return drawing


def pdf_revenue(report: Report) -> Drawing:
    """Revenue per pay type, one bar per line kind."""
    lang = report.lang
    font = pdf.ensure_font()
    width, height = 180 * mm, 62 * mm
    drawing = Drawing(width, height)
    drawing.add(
        _chart_title(
            t(lang, "按付费类型的营业额（元）", "Revenue by pay type (CNY)"), width, height
        )
    )
    pay_types, values = _revenue_by_pay_type(report)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 50, 22, width - 70, height - 50
    chart.data = [values[k] or [0.0] for k in ("labour", "part", "fee")]
    chart.categoryAxis.categoryNames = [label(PAY_LABEL, p, lang) for p in pay_types] or ["—"]
    chart.categoryAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = 8
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontName = font
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.labelTextFormat = lambda v: f"{v:,.0f}"
    for i in range(3):
        chart.bars[i].fillColor = colors.HexColor(PALETTE[i])
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = width - 200, height - 6
    legend.fontName, legend.fontSize = font, 8
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.colorNamePairs = [
        (colors.HexColor(PALETTE[i]), label(KIND_LABEL, k, lang))
        for i, k in enumerate(("labour", "part", "fee"))
    ]
    drawing.add(legend)
    return drawing


def to_pdf(report: Report, *, dealer: str = "") -> bytes:
    lang = report.lang
    st = pdf.styles()
    story: list[Flowable] = [
        pdf.text(
            f"{t(lang, '时区', 'Time zone')}: {report.time_zone} · "
            f"{t(lang, '口径版本', 'Definitions')} {report.definitions_version} · "
            f"{t(lang, '生成于', 'Generated')} "
            f"{report.generated_at.isoformat(timespec='minutes')}",
            st.small,
        ),
        Spacer(1, 3 * mm),
        pdf.grid(
            [
                t(lang, "指标", "KPI"),
                t(lang, "数值", "Value"),
                t(lang, "分子", "Numerator"),
                t(lang, "分母", "Denominator"),
                t(lang, "目标", "Target"),
            ],
            [
                [
                    k.name,
                    show(k, k.value, k.unit),
                    _num(k.numerator),
                    _num(k.denominator),
                    ""
                    if k.target is None
                    else show(k, k.target, k.unit) + _met(lang, k.target_met),
                ]
                for k in report.kpis
            ],
            [0.36, 0.2, 0.15, 0.15, 0.14],
            right=[1, 2, 3],
        ),
        Spacer(1, 4 * mm),
        KeepTogether([pdf_trend(report)]),
        Spacer(1, 3 * mm),
        KeepTogether([pdf_revenue(report)]),
        pdf.text(t(lang, "营业额明细", "Revenue breakdown"), st.heading),
        pdf.grid(
            [
                t(lang, "付费类型", "Pay type"),
                t(lang, "类别", "Kind"),
                t(lang, "净额", "Net"),
                t(lang, "工时", "Hours"),
            ],
            [
                [
                    label(PAY_LABEL, r.pay_type, lang),
                    label(KIND_LABEL, r.kind, lang),
                    pdf.money(r.net),
                    f"{r.hours}",
                ]
                for r in report.revenue
            ],
            [0.3, 0.3, 0.25, 0.15],
            right=[2, 3],
        ),
        pdf.text(t(lang, "技师效率与利用率", "Technician efficiency and utilisation"), st.heading),
        pdf.grid(
            [
                t(lang, "技师", "Technician"),
                t(lang, "售出工时", "Sold h"),
                t(lang, "实际工时", "Worked h"),
                t(lang, "效率", "Efficiency"),
                t(lang, "打卡工时", "Clocked h"),
                t(lang, "可用工时", "Available h"),
                t(lang, "利用率", "Utilisation"),
            ],
            [
                [
                    x.technician_id,
                    f"{x.sold_hours}",
                    f"{x.worked_hours}",
                    show(None, x.efficiency, "ratio"),
                    f"{x.clocked_hours}",
                    f"{x.available_hours}",
                    show(None, x.utilisation, "ratio"),
                ]
                for x in report.technicians
            ],
            [0.22, 0.12, 0.13, 0.13, 0.13, 0.14, 0.13],
            right=[1, 2, 3, 4, 5, 6],
        ),
        pdf.text("SERVQUAL", st.heading),
        pdf.grid(
            [
                t(lang, "维度", "Dimension"),
                t(lang, "回答数", "Answers"),
                t(lang, "期望", "Expectation"),
                t(lang, "感知", "Perception"),
                t(lang, "差距", "Gap"),
            ],
            [
                [
                    label(DIMENSION_LABEL, q.dimension, lang),
                    q.answers,
                    _num(q.expectation),
                    _num(q.perception),
                    _num(q.gap),
                ]
                for q in report.servqual
            ],
            [0.3, 0.15, 0.18, 0.18, 0.19],
            right=[1, 2, 3, 4],
        ),
        pdf.text(t(lang, "指标口径", "Definitions"), st.heading),
        pdf.grid(
            [t(lang, "指标", "KPI"), t(lang, "公式", "Formula"), t(lang, "不计入", "Excludes")],
            [
                [f"{d.name(lang)} v{d.version}", d.formula_in(lang), d.excludes_in(lang)]
                for d in DEFINITIONS
            ],
            [0.22, 0.48, 0.3],
        ),
        pdf.text(t(lang, PERIOD_RULE_ZH, PERIOD_RULE), st.small),
    ]
    return pdf.render(
        story, title=title(report), lang=lang, dealer=dealer, reference=report.definitions_version
    )


def render(
    report: Report, fmt: str, *, dealer: str = "", query: dict[str, str] | None = None
) -> bytes:
    if fmt == "json":
        return report.model_dump_json().encode()
    if fmt == "csv":
        return to_csv(report)
    if fmt == "xlsx":
        return to_xlsx(report)
    if fmt == "pdf":
        return to_pdf(report, dealer=dealer)
    if fmt == "html":
        return to_html(report, query=query or {})
    raise ValueError(fmt)
