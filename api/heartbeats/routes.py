"""POST /metric: heartbeat pings and disk usage, wire-compatible with metrics-sender."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, post
from litestar.exceptions import ClientException, HTTPException
from litestar.openapi.spec import OpenAPIType, Schema

from api.auth.senders import require_sender
from api.core import openapi as oa
from api.heartbeats.formats.metrics_sender import ReportError, parse_report
from api.heartbeats.store import MetricWriter, RejectedReport, Report, WriterUnavailable

REPORT = oa.obj(
    {
        "host": oa.string(min_length=1, max_length=255, examples=["web-1"]),
        "name": oa.string(min_length=1, max_length=255, examples=["backup"]),
        "type": oa.string(
            min_length=1,
            max_length=255,
            examples=["ping", "disk"],
            description="`ping` or `disk` (the types in `vigil.rules`)",
        ),
        "timestamp": oa.nullable(
            OpenAPIType.STRING,
            description="RFC 3339 with an offset, up to nanoseconds (truncated to microseconds); "
            'missing, `""`, `null` or year 1 (`0001-01-01T00:00:00Z`) mean now; at most 10 '
            "minutes in the future",
            examples=["2026-11-22T10:00:00.123456789+01:00"],
        ),
        "value": oa.nullable(
            OpenAPIType.STRING,
            max_length=1024,
            description="ping: deadline in minutes (an integer, else the default of 5); disk: "
            "percent used (alert above 90, or when not a number)",
            examples=["1440"],
        ),
        "state": Schema(description="sent by metrics-sender; ignored"),
        "Id": Schema(description="sent by metrics-sender; ignored"),
    },
    required=["host", "name", "type"],
    extra=True,
    title="MetricReport",
    description="One heartbeat report; the metric is the pair (host, name). Other members are "
    "ignored. Text must not contain NUL (`\\u0000`).",
)


@post(
    "/metric",
    media_type=MediaType.TEXT,
    status_code=200,
    operation_id="postMetric",
    summary="A heartbeat ping or disk usage (metrics-sender)",
    description="The content type is not checked. A rejected request stores nothing.",
    tags=["heartbeats"],
    security=oa.SENDER,
    operation_class=oa.documented(
        request_body=oa.body(
            {"application/json": REPORT},
            description="metrics-sender's report (`ping`, `dockerPing`, `disk`)",
            examples={
                "application/json": {
                    "host": "web-1",
                    "name": "backup",
                    "type": "ping",
                    "timestamp": "2026-11-22T10:00:00.123456789+01:00",
                    "value": "1440",
                    "state": "ok",
                    "Id": 0,
                }
            },
        ),
        responses={
            200: oa.reply(
                "The report is committed.",
                oa.string(const="ok"),
                media_type=oa.TEXT,
                examples={"ok": "ok"},
            ),
            400: oa.text_error(
                400,
                "Malformed JSON, a member of the wrong type or missing, a limit, an unknown type, "
                "an unreadable timestamp or one more than 10 minutes in the future.",
                "400 malformed JSON: Input data was truncated\n",
                "400 invalid metric: Expected `str | null`, got `int` - at `$.value`\n",
                "400 host must be 1 to 255 characters\n",
                '400 unknown metric type "pong" (type must be one of: disk, ping)\n',
                "400 timestamp 'yesterday' is not RFC 3339 (e.g. "
                "2026-11-22T10:00:00.123456789+01:00)\n",
                "400 timestamp is more than 10 minutes in the future; check the sender's clock\n",
            ),
            **oa.vigil_errors(401, 413, 503),
        },
    ),
)
async def post_metric(request: Request[Any, Any, Any]) -> str:
    # The sender check is called directly rather than as a route guard: Litestar copies
    # the route handler for every guard call, a measurable cost on this hot path.
    await require_sender(request)
    try:
        report, at = parse_report(await request.body())
    except ReportError as exc:
        raise ClientException(detail=str(exc)) from None
    writer: MetricWriter = request.app.state.metric_writer
    try:
        await writer.write(Report(report.host, report.name, report.type, report.value, at))
    except RejectedReport as exc:
        raise ClientException(detail=str(exc)) from None
    except WriterUnavailable:
        raise HTTPException(status_code=503, detail="database unavailable, retry later") from None
    return "ok"


ROUTES = [post_metric]
