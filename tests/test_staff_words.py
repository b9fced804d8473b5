"""The staff app's words: every label in both languages, and the services' problems told
in the user's language (the field's own message where it is known, a lead by status)."""

from services.staff.api import Answer
from services.staff.i18n import LABELS, field_errors, problem_text
from services.staff.pages.advisor import labels as _advisor  # noqa: F401  (joins the catalog)
from services.staff.pages.floor import labels as _floor  # noqa: F401


def test_every_label_is_in_both_languages() -> None:
    assert set(LABELS["zh-CN"]) == set(LABELS["en"])
    assert all(text.strip() for words in LABELS.values() for text in words.values())


def test_field_errors_are_said_in_chinese_by_the_field_they_name() -> None:
    answer = Answer(
        422,
        problem={
            "errors": [
                {"field": "vin", "message": "check digit at position 9 is '7', expected '3'"},
                {"field": "lines.2.unit_price", "message": "Input should be a valid decimal"},
                {"field": "odometer_km", "message": "something new the service says"},
            ]
        },
    )
    said = field_errors(answer, "zh-CN")
    assert said["vin"] == "第 9 位校验位是 7，应为 3"
    assert said["lines.2.unit_price"] == said["unit_price"] == "应为数字"
    assert said["odometer_km"] == "格式不正确（something new the service says）"
    assert field_errors(answer, "en")["vin"].startswith("check digit")


def test_a_problem_without_fields_leads_with_what_its_status_means() -> None:
    stale = Answer(412, problem={"detail": "another change was saved first"})
    assert problem_text(stale, "zh-CN") == (
        "无法完成：此记录已被他人修改，请重新载入（another change was saved first）"
    )
    assert problem_text(stale, "en") == "Could not be done: another change was saved first"
    conflict = Answer(409, problem={"detail": "appointment x is arrived, not booked"})
    assert problem_text(conflict, "zh-CN").startswith("无法完成：与当前状态冲突（")
