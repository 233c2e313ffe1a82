"""Time on the wire: the epochs, microsecond conversion, and RFC 3339 timestamps as
metrics-sender writes them (Go's time.RFC3339Nano)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The Unix epoch."""
PG_EPOCH_US = 946_684_800_000_000
"""PostgreSQL's epoch (2000-01-01T00:00:00Z) in Unix microseconds: binary COPY counts
timestamptz from it."""
ONE_US = timedelta(microseconds=1)


def unix_us(at: datetime) -> int:
    """An aware datetime as microseconds since the Unix epoch (exact integer arithmetic)."""
    delta = at - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"([Zz]|[+-]\d{2}:\d{2})$"
)


class TimestampError(ValueError):
    pass


def parse_rfc3339(text: str | None) -> datetime | None:
    """Aware datetime in UTC, or None for "now" (missing, empty or Go's zero time, year 1).

    Nanoseconds are truncated to microseconds, PostgreSQL's resolution. The result is in
    UTC: RFC 3339 allows offsets up to ±23:59, PostgreSQL's input only up to ±15:59.
    """
    if text is None or text == "":
        return None
    match = _RFC3339.match(text)
    if not match:
        raise TimestampError(
            f"timestamp {text[:64]!r} is not RFC 3339 (e.g. 2026-11-22T10:00:00.123456789+01:00)"
        )
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if year == "0001":
        return None
    micro = (fraction or "").ljust(6, "0")[:6]
    iso = f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micro}"
    iso += "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(iso).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise TimestampError(f"timestamp {text[:64]!r} is not a valid date/time: {exc}") from None
