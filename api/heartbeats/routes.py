"""POST /metric: heartbeat pings and disk usage, wire-compatible with metrics-sender."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, post
from litestar.exceptions import ClientException, HTTPException

from api.auth.senders import require_sender
from api.heartbeats.formats.metrics_sender import ReportError, parse_report
from api.heartbeats.store import MetricWriter, RejectedReport, Report, WriterUnavailable


@post("/metric", media_type=MediaType.TEXT, status_code=200)
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
