"""The shared document frame: Chinese and English text survive into the PDF, pages are counted."""

from decimal import Decimal

from shared import pdf


def test_chinese_and_english_text_is_embedded_and_pages_are_counted() -> None:
    rows = [[f"OP{i}", "更换机油 oil change", 1, pdf.money(Decimal("123.4"))] for i in range(80)]
    story = [
        pdf.fields([("客户", "张三 <VIP> & Co"), ("VIN", "LSVAU2180N2183294")]),
        pdf.grid(["项目", "描述", "数量", "金额"], rows, [0.15, 0.55, 0.1, 0.2], right=[2, 3]),
        pdf.totals([("总计", pdf.money(Decimal("9872")))]),
        pdf.signature_boxes(["客户签字", "服务顾问"]),
    ]
    data = pdf.render(story, title="估价单", lang="zh-CN", dealer="示例汽车", reference="EST-1")
    assert data.startswith(b"%PDF")
    content = pdf.pdf_text(data)
    assert "估价单" in content and "张三 <VIP> & Co" in content
    assert "¥9,872.00" in content
    assert "第 2 页，共 2 页" in content or "第 2 页，共 3 页" in content


def test_labels_follow_the_document_language() -> None:
    assert pdf.pick("en", "合计", "Total") == "Total"
    assert pdf.pick("zh-CN", "合计", "Total") == "合计"
    assert pdf.money(Decimal("-5")) == "-¥5.00"
    data = pdf.render([pdf.text("hello")], title="Estimate", lang="en")
    assert "Page 1 of 1" in pdf.pdf_text(data)
