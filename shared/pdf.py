"""Printable documents in Chinese and English: one font, one page frame, a few building blocks.

Every PDF the services print (intake sheet, estimate, repair order, invoice, vehicle history,
reports) is built with reportlab's platypus from the blocks here, so they share a font, a
header with the dealer's name and a "page X of Y" footer. The font is WenQuanYi Micro Hei,
kept beside this module in ``fonts/`` with its licence (a TrueType collection, which
reportlab embeds as a subset: a page with Chinese prints the same on any printer). Loading
the font costs about a second, so it happens once per process, on first use.

Money on paper is formatted by `money`; amounts are always Decimal and already rounded by the
caller — a document never computes a total.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

Lang = Literal["zh-CN", "en"]
FONT = "WorkshopSans"
_font_lock = threading.Lock()


def font_path() -> Path:
    return Path(__file__).parent / "fonts" / "wqy-microhei.ttc"


def ensure_font() -> str:
    """Register the CJK font once per process; returns its reportlab name."""
    with _font_lock:
        if FONT not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(FONT, str(font_path()), subfontIndex=0))
            pdfmetrics.registerFontFamily(
                FONT, normal=FONT, bold=FONT, italic=FONT, boldItalic=FONT
            )
    return FONT


@dataclass(frozen=True)
class Styles:
    title: ParagraphStyle
    heading: ParagraphStyle
    body: ParagraphStyle
    small: ParagraphStyle
    cell: ParagraphStyle
    cell_right: ParagraphStyle


@cache
def styles() -> Styles:
    font = ensure_font()
    body = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=13, wordWrap="CJK")
    return Styles(
        title=ParagraphStyle("title", parent=body, fontSize=16, leading=21, spaceAfter=4),
        heading=ParagraphStyle("heading", parent=body, fontSize=11.5, leading=15, spaceBefore=8),
        body=body,
        small=ParagraphStyle(
            "small", parent=body, fontSize=7.5, leading=10, textColor=colors.HexColor("#555555")
        ),
        cell=ParagraphStyle("cell", parent=body, fontSize=8.5, leading=11),
        cell_right=ParagraphStyle(
            "cell_right", parent=body, fontSize=8.5, leading=11, alignment=TA_RIGHT
        ),
    )


def pick(lang: str, zh: str, en: str) -> str:
    """The label in the document's language (Chinese for zh-CN, English otherwise)."""
    return zh if lang.startswith("zh") else en


def money(amount: Decimal | int | str | None, currency: str = "¥") -> str:
    if amount is None:
        return ""
    value = Decimal(str(amount)).quantize(Decimal("0.01"))
    return f"{currency}{value:,.2f}" if value >= 0 else f"-{currency}{-value:,.2f}"


def text(value: Any, style: ParagraphStyle | None = None) -> Paragraph:
    """A paragraph with the value escaped (customer text may contain '<' or '&')."""
    raw = "" if value is None else str(value)
    escaped = raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Paragraph(escaped.replace("\n", "<br/>"), style or styles().body)


def fields(pairs: Sequence[tuple[str, Any]], columns: int = 2) -> Table:
    """Label/value pairs laid out in `columns` column pairs (the header block of a form)."""
    st = styles()
    rows: list[list[Any]] = []
    row: list[Any] = []
    for label, value in pairs:
        row += [text(label, st.small), text(value, st.cell)]
        if len(row) == columns * 2:
            rows.append(row)
            row = []
    if row:
        rows.append(row + [""] * (columns * 2 - len(row)))
    width = (A4[0] - 30 * mm) / columns
    table = Table(rows, colWidths=[width * 0.32, width * 0.68] * columns)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#cccccc")),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def grid(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    widths: Sequence[float],
    right: Iterable[int] = (),
) -> Table:
    """A ruled table; `widths` are fractions of the printable width, `right` the
    indexes of right-aligned (numeric) columns. The header repeats on every page. A cell
    is text, or a flowable (or list of them) placed as it is."""
    st = styles()
    right_cols = set(right)
    total = A4[0] - 30 * mm
    body: list[list[Any]] = [[text(h, st.cell) for h in header]]
    for row in rows:
        body.append(
            [
                v
                if isinstance(v, Flowable | list)
                else text(v, st.cell_right if i in right_cols else st.cell)
                for i, v in enumerate(row)
            ]
        )
    table = Table(body, colWidths=[w * total for w in widths], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#999999")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def totals(pairs: Sequence[tuple[str, str]]) -> Table:
    """Right-aligned label/amount rows under a line table; the last row is the grand total."""
    st = styles()
    total = A4[0] - 30 * mm
    rows = [[text(label, st.cell_right), text(amount, st.cell_right)] for label, amount in pairs]
    table = Table(rows, colWidths=[total * 0.8, total * 0.2])
    table.setStyle(
        TableStyle(
            [
                ("LINEABOVE", (0, -1), (-1, -1), 0.75, colors.black),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return table


def signature_boxes(labels: Sequence[str]) -> Flowable:
    """Empty boxes to sign on paper, one per label, side by side."""
    st = styles()
    total = A4[0] - 30 * mm
    cells = [[text(label, st.small) for label in labels], ["" for _ in labels]]
    table = Table(cells, colWidths=[total / len(labels)] * len(labels), rowHeights=[None, 22 * mm])
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 1), (-1, 1), 0.5, colors.black),
                ("INNERGRID", (0, 1), (-1, 1), 0.5, colors.black),
            ]
        )
    )
    return KeepTogether([Spacer(1, 6 * mm), table])


def render(
    story: list[Flowable],
    *,
    title: str,
    lang: str,
    dealer: str = "",
    reference: str = "",
) -> bytes:
    """Lay out `story` on A4 with the dealer/title header and a "page X of Y" footer."""
    st = styles()
    font = ensure_font()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=22 * mm,
        bottomMargin=18 * mm,
        title=title,
        author=dealer or "Workshop",
        lang=lang,
    )

    def frame(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(font, 8)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(15 * mm, A4[1] - 12 * mm, dealer)
        canvas.drawRightString(A4[0] - 15 * mm, A4[1] - 12 * mm, reference)
        canvas.restoreState()

    doc.build(
        [Paragraph(title, st.title), *story],
        onFirstPage=frame,
        onLaterPages=frame,
        canvasmaker=_numbered_canvas(lang),
    )
    return buffer.getvalue()


def _numbered_canvas(lang: str) -> Any:
    """A canvas class that holds pages back until the end to print "page X of Y"."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._held: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._held.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._held)
            for state in self._held:
                self.__dict__.update(state)
                self.setFont(FONT, 8)
                self.setFillColor(colors.HexColor("#555555"))
                page = self.getPageNumber()
                label = pick(lang, f"第 {page} 页，共 {total} 页", f"Page {page} of {total}")
                self.drawRightString(A4[0] - 15 * mm, 10 * mm, label)
                super().showPage()
            super().save()

    return NumberedCanvas


def pdf_text(data: bytes) -> str:
    """The text of a PDF (what a reader would copy out), for tests and the library's index."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


@cache
def font_ttf() -> bytes:
    """The same face as a plain TrueType file, for web pages (status board, report page):
    a screen or browser without Chinese fonts still shows 车牌 and 维修中."""
    from fontTools.ttLib import TTCollection

    buffer = io.BytesIO()
    TTCollection(str(font_path())).fonts[0].save(buffer)
    return buffer.getvalue()
