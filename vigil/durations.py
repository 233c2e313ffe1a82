"""Durations as people type and read them: seconds validated in one place, and durations
printed as the alert options and forms take them back (`5m`, `1h30m`)."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import Decimal

DAY_SECONDS = 86_400.0

DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
UNIT_SECONDS: dict[str, Decimal] = {
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
    "w": Decimal(604800),
}
DURATION_EXAMPLES = "e.g. 30s, 5m, 2h, 1d or 1h30m"


def positive_seconds(text: str, maximum: float = DAY_SECONDS) -> float:
    """A number of seconds, finite and 0 < s <= maximum; ValueError with a message that
    names the accepted range otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= maximum:
        raise ValueError(f"{text!r} is not a number of seconds between 0 and {maximum:g}")
    return value


def parse_duration(text: str) -> timedelta:
    """`30s`, `5m`, `2h`, `1d`, `1w`, `500ms` and sums such as `1h30m`; `0` is zero. A number
    without a unit is refused (minutes or seconds? say which); ValueError otherwise."""
    value = text.strip()
    if value == "0":
        return timedelta(0)
    if not DURATION.fullmatch(value):
        raise ValueError(f"{text!r} is not a duration ({DURATION_EXAMPLES})")
    seconds = sum(
        (Decimal(n) * UNIT_SECONDS[unit] for n, unit in DURATION_PART.findall(value)),
        Decimal(0),
    )
    try:
        return timedelta(seconds=float(seconds))
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def format_duration(value: timedelta | None) -> str | None:
    """A duration as `vigil rules` options and the rule form take it: `5m`, `1h30m`, `2d`,
    `0s`, `500ms`, `1.5s` (days, hours and minutes, then the seconds)."""
    if value is None:
        return None
    micros = value // timedelta(microseconds=1)
    if micros == 0:
        return "0s"
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    parts = []
    for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000)):
        count, micros = divmod(micros, size)
        if count:
            parts.append(f"{count}{unit}")
    if micros:
        if micros % 1_000_000 == 0:
            parts.append(f"{micros // 1_000_000}s")
        elif micros < 1_000_000 and micros % 1000 == 0:
            parts.append(f"{micros // 1000}ms")
        else:
            parts.append(f"{Decimal(micros) / 1_000_000}s")
    return sign + "".join(parts)
