"""Customer messages' rules: quiet hours at set clocks, retry backoff, SMS opt-out replies,
recipients masked for logs."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.followup.message_rules import (
    is_sms_opt_out,
    mask_email,
    mask_phone,
    retry_delay,
    send_not_before,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (local(7, 20, 59), local(7, 20, 59)),  # before quiet hours: at once
        (local(7, 21, 0), local(8, 8, 0)),  # quiet from 21:00: next morning
        (local(7, 23, 30), local(8, 8, 0)),
        (local(8, 0, 10), local(8, 8, 0)),  # after midnight: the same morning
        (local(8, 7, 59), local(8, 8, 0)),
        (local(8, 8, 0), local(8, 8, 0)),  # quiet hours over
    ],
)
def test_quiet_hours_hold_back_what_the_customer_does_not_wait_for(
    at: datetime, expected: datetime
) -> None:
    assert send_not_before(at, SHANGHAI, awaited=False) == expected.astimezone(UTC)


def test_an_awaited_message_goes_out_in_quiet_hours() -> None:
    at = local(7, 23, 30)
    assert send_not_before(at, SHANGHAI, awaited=True) == at.astimezone(UTC)


def test_quiet_hours_are_read_in_the_branch_zone() -> None:
    # 14:00 UTC is 22:00 in Shanghai (quiet) but 15:00 in Berlin (not).
    at = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    assert send_not_before(at, SHANGHAI, awaited=False) == local(8, 8).astimezone(UTC)
    assert send_not_before(at, ZoneInfo("Europe/Berlin"), awaited=False) == at


def test_quiet_hours_within_one_day() -> None:
    at = local(7, 13, 0)
    held = send_not_before(at, SHANGHAI, awaited=False, quiet_from=time(12), quiet_until=time(14))
    assert held == local(7, 14).astimezone(UTC)


def test_a_time_without_offset_is_refused() -> None:
    with pytest.raises(ValueError):
        send_not_before(datetime(2026, 12, 7, 22), SHANGHAI, awaited=False)


def test_retry_delay_doubles_up_to_its_cap() -> None:
    delays = [retry_delay(n, base=30, cap=600) for n in range(1, 7)]
    assert delays == [timedelta(seconds=s) for s in (30, 60, 120, 240, 480, 600)]
    assert retry_delay(1000, base=30, cap=600) == timedelta(seconds=600)
    with pytest.raises(ValueError):
        retry_delay(0)


@pytest.mark.parametrize("reply", ["T", "t", "TD", " td ", "Ｔ", "ＴＤ", "T。", "退订"])
def test_opt_out_replies(reply: str) -> None:
    assert is_sms_opt_out(reply)


@pytest.mark.parametrize("reply", ["", "好的", "TT", "谢谢 T", "OK", "Tuesday"])
def test_other_replies_are_no_opt_out(reply: str) -> None:
    assert not is_sms_opt_out(reply)


def test_recipients_are_masked() -> None:
    assert mask_phone("13800138000") == "*******8000"
    assert mask_phone("+86 138-0013-8000") == "*********8000"
    assert mask_phone("123") == "***"
    assert mask_email("wangfang@example.cn") == "w***@example.cn"
    assert mask_email("not-an-address") == "***"
    assert "wangfang" not in mask_email("wangfang@example.cn")
