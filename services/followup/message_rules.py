"""Rules for customer messages that need no database: when a message may go out (quiet
hours), how long a failed send waits, what an SMS reply means, and how a recipient is
written in logs."""

import re
import unicodedata
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Quiet hours in the branch's zone: nothing but what the customer is waiting for (car
# ready, approval link) goes out between these times.
QUIET_FROM = time(21, 0)
QUIET_UNTIL = time(8, 0)


def send_not_before(
    at: datetime,
    zone: ZoneInfo,
    *,
    awaited: bool,
    quiet_from: time = QUIET_FROM,
    quiet_until: time = QUIET_UNTIL,
) -> datetime:
    """The earliest moment (UTC) a message created at `at` may be sent: at once when the
    customer is waiting for it or outside quiet hours, otherwise when quiet hours end."""
    if at.tzinfo is None:
        raise ValueError("at must carry its offset")
    if awaited:
        return at.astimezone(UTC)
    local = at.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    spans_midnight = quiet_from > quiet_until
    if spans_midnight:
        quiet = clock >= quiet_from or clock < quiet_until
    else:
        quiet = quiet_from <= clock < quiet_until
    if not quiet:
        return at.astimezone(UTC)
    day = local.date()
    if spans_midnight and clock >= quiet_from:
        day += timedelta(days=1)
    return datetime.combine(day, quiet_until, zone).astimezone(UTC)


def retry_delay(attempt: int, *, base: float = 30.0, cap: float = 3600.0) -> timedelta:
    """Wait after the `attempt`-th failed send (1 for the first): base doubled per attempt,
    at most `cap` seconds, so a provider that is down is not hammered."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    return timedelta(seconds=min(cap, base * 2 ** min(attempt - 1, 32)))


_OPT_OUT_WORDS = frozenset({"T", "TD", "退订"})


def is_sms_opt_out(reply: str) -> bool:
    """Whether an inbound SMS reply is the customer's "回T退订": T or TD in any case or width,
    or 退订, with surrounding spaces and punctuation ignored."""
    text = unicodedata.normalize("NFKC", reply).strip().upper()
    text = re.sub(r"^[\s\W_]+|[\s\W_]+$", "", text)
    return text in _OPT_OUT_WORDS


def mask_phone(number: str) -> str:
    """A phone number for a log line: its last four digits only, e.g. ``*******8000``."""
    digits = re.sub(r"\D", "", number)
    if len(digits) <= 4:
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_email(address: str) -> str:
    """An e-mail address for a log line: the first letter of the mailbox and the domain,
    e.g. ``w***@example.cn``."""
    local, sep, domain = address.rpartition("@")
    if not sep or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def normalize_mobile(number: str) -> str:
    """A mainland mobile number as messages are keyed and opt-outs matched: digits only,
    without the country code (`+86 138-0013-8000` → `13800138000`)."""
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", number))
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits
