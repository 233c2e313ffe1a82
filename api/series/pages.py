"""The charts page (/charts) and its JSON endpoints, behind the operator login.

- GET /charts              the page; api/static/charts.js draws with uPlot
- GET /charts/series?q=    series whose name or labels contain q
- GET /charts/data?name=&labels=&granularity=&from=&to=   buckets, oldest first
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from litestar import Request, Response, get
from litestar.response import Template

from api.auth.sessions import operator_guard
from api.core.db import read_pool_of
from api.core.pages import render
from api.series import QUERIES
from api.series.routes import GRANULARITY_STEP
from api.series.store import fetch_averages

MAX_BUCKETS = 20_000


@get("/charts", guards=[operator_guard], include_in_schema=False)
async def charts_page(request: Request[Any, Any, Any]) -> Template:
    return render(request, "series/charts.html")


@get("/charts/series", guards=[operator_guard], include_in_schema=False)
async def charts_series(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    q = request.query_params.get("q", "")[:200]
    async with read_pool_of(request.app).connection() as conn:
        rows = await (await conn.execute(QUERIES["series_search"], (q,))).fetchall()
    return [
        {"id": r[0], "name": r[1], "labels": r[2], "last": r[3].isoformat() if r[3] else None}
        for r in rows
    ]


def _bad(message: str) -> Response[dict[str, str]]:
    return Response({"message": message}, status_code=400)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


@get("/charts/data", guards=[operator_guard], include_in_schema=False)
async def charts_data(request: Request[Any, Any, Any]) -> Response[Any]:
    params = request.query_params
    name = params.get("name", "")
    granularity = params.get("granularity", "")
    if not name:
        return _bad("name is required")
    if granularity not in GRANULARITY_STEP:
        return _bad("granularity must be minute, hour or day")
    labels_text = params.get("labels") or None
    if labels_text is not None:
        try:
            labels = json.loads(labels_text)
        except ValueError:
            return _bad("labels must be a JSON object")
        if not isinstance(labels, dict):
            return _bad("labels must be a JSON object")
    start, end = _time(params.get("from")), _time(params.get("to"))
    if start is None or end is None or end <= start:
        return _bad("from and to must be ISO 8601 times with an offset, from before to")
    if (end - start) / GRANULARITY_STEP[granularity] > MAX_BUCKETS:
        return _bad(f"more than {MAX_BUCKETS} buckets: choose a coarser granularity")
    rows = await fetch_averages(
        read_pool_of(request.app), name, labels_text, granularity, start, end
    )
    rows.reverse()  # uPlot wants time ascending
    return Response(
        {
            "name": name,
            "labels": labels_text and json.loads(labels_text),
            "granularity": granularity,
            "step": GRANULARITY_STEP[granularity] // timedelta(seconds=1),
            "t": [r[0].timestamp() for r in rows],
            "avg": [r[1] for r in rows],
            "min": [r[2] for r in rows],
            "max": [r[3] for r in rows],
            "n": [r[4] for r in rows],
        }
    )


ROUTES = [charts_page, charts_series, charts_data]
