"""VIN checks and decoding: ISO 3779 form, the check digit where the region mandates it."""

from dataclasses import dataclass
from datetime import date

from vininfo import Vin
from vininfo.exceptions import ValidationError

WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}


class InvalidVin(ValueError):
    pass


def check_digit(vin: str) -> str:
    total = sum(VALUES[c] * w for c, w in zip(vin, WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def uses_check_digit(vin: str) -> bool:
    """North America (1-5) and China (L, GB 16735) make position 9 a check digit."""
    return vin[0] in "12345L"


@dataclass(frozen=True)
class DecodedVin:
    vin: str
    wmi: str
    manufacturer: str | None
    country: str | None
    region: str | None
    model_year: int | None


def decode(raw: str, *, today: date | None = None) -> DecodedVin:
    """Validate and decode; raises InvalidVin with a reason a person can act on."""
    try:
        vin = Vin.validate(raw)
    except ValidationError as exc:
        raise InvalidVin(str(exc)) from exc
    if uses_check_digit(vin) and check_digit(vin) != vin[8]:
        raise InvalidVin(f"check digit at position 9 is {vin[8]!r}, expected {check_digit(vin)!r}")
    info = Vin(vin)
    latest = (today or date.today()).year + 1
    years = [y for y in (info.years or []) if y <= latest]
    manufacturer = info.manufacturer
    return DecodedVin(
        vin=vin,
        wmi=info.wmi,
        manufacturer=None if manufacturer in (None, "", "Unknown") else manufacturer,
        country=info.country or None,
        region=info.region or None,
        model_year=max(years) if years else None,
    )
