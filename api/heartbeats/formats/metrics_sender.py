"""metrics-sender's report (POST /metric): one JSON object per heartbeat ping or disk usage.
Pure parsing and validation, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from api.core.decoding import MALFORMED
from api.core.timestamps import TimestampError, parse_rfc3339


class ReportError(ValueError):
    """A report the sender must fix; the message says how."""


MAX_FUTURE = timedelta(minutes=10)
MAX_NAME = 255
MAX_VALUE = 1024


class MetricReport(msgspec.Struct):
    """metrics-sender's body. `state` and `Id` are sent by the client and ignored."""

    host: str
    name: str
    type: str
    timestamp: str | None = None
    value: str | None = None
    state: Any = None
    Id: Any = None


_decoder = msgspec.json.Decoder(MetricReport)


def parse_report(body: bytes) -> tuple[MetricReport, datetime | None]:
    try:
        report = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise ReportError(f"invalid metric: {exc}") from None
    except MALFORMED as exc:
        raise ReportError(f"malformed JSON: {exc or 'nested too deeply'}") from None
    for field, text, limit in (
        ("host", report.host, MAX_NAME),
        ("name", report.name, MAX_NAME),
        ("type", report.type, MAX_NAME),
    ):
        if not text or len(text) > limit:
            raise ReportError(f"{field} must be 1 to {limit} characters")
    if report.value is not None and len(report.value) > MAX_VALUE:
        raise ReportError(f"value must be at most {MAX_VALUE} characters")
    if "\x00" in report.host + report.name + report.type + (report.value or ""):
        # PostgreSQL text cannot hold NUL; refuse here so a grouped batch is never spoilt.
        raise ReportError("host, name, type and value must not contain NUL (\\u0000)")
    try:
        at = parse_rfc3339(report.timestamp)
    except TimestampError as exc:
        raise ReportError(str(exc)) from None
    if at is not None and at > datetime.now(UTC) + MAX_FUTURE:
        raise ReportError(
            "timestamp is more than 10 minutes in the future; check the sender's clock"
        )
    return report, at
