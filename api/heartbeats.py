"""POST /metric: heartbeat pings and disk usage, wire-compatible with metrics-sender."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
from litestar import MediaType, Request, post
from litestar.exceptions import ClientException, HTTPException

from api.auth import require_sender
from api.db import http_error
from api.metric_writer import MetricWriter, RejectedReport, Report, WriterUnavailable
from api.timestamps import TimestampError, parse_rfc3339

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
        raise ClientException(detail=f"invalid metric: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # the latter: a string not UTF-8
        raise ClientException(detail=f"malformed JSON: {exc}") from None
    for field, text, limit in (
        ("host", report.host, MAX_NAME),
        ("name", report.name, MAX_NAME),
        ("type", report.type, MAX_NAME),
    ):
        if not text or len(text) > limit:
            raise ClientException(detail=f"{field} must be 1 to {limit} characters")
    if report.value is not None and len(report.value) > MAX_VALUE:
        raise ClientException(detail=f"value must be at most {MAX_VALUE} characters")
    if "\x00" in report.host + report.name + report.type + (report.value or ""):
        # PostgreSQL text cannot hold NUL; refuse here so a grouped batch is never spoilt.
        raise ClientException(detail="host, name, type and value must not contain NUL (\\u0000)")
    try:
        at = parse_rfc3339(report.timestamp)
    except TimestampError as exc:
        raise ClientException(detail=str(exc)) from None
    if at is not None and at > datetime.now(UTC) + MAX_FUTURE:
        raise ClientException(
            detail="timestamp is more than 10 minutes in the future; check the sender's clock"
        )
    return report, at


@post("/metric", media_type=MediaType.TEXT, status_code=200)
async def post_metric(request: Request[Any, Any, Any]) -> str:
    # The sender check is called directly rather than as a route guard: Litestar copies
    # the route handler for every guard call, a measurable cost on this hot path.
    await require_sender(request)
    report, at = parse_report(await request.body())
    writer: MetricWriter = request.app.state.metric_writer
    try:
        await writer.write(Report(report.host, report.name, report.type, report.value, at))
    except RejectedReport as exc:
        raise ClientException(detail=str(exc)) from None
    except psycopg.Error as exc:
        raise http_error(exc) from None
    except WriterUnavailable:
        raise HTTPException(status_code=503, detail="database unavailable, retry later") from None
    return "ok"


ROUTES = [post_metric]
