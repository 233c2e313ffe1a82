"""The Requests page (GET /requests): request records newest first, filters by time, host,
status (a status or a class), method, path prefix, route (vigil.request_route, e.g.
/orders/:id), exact user agent and client address or network; keyset
paging (`cursor`, the same as GET /v1/requests). Log text is untrusted: autoescaped, with
invisible and direction-changing characters shown as escapes."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import psycopg
from litestar import Request, get
from litestar.response import Template

from api.auth.sessions import operator_guard
from api.core.db import http_error, read_pool_of
from api.core.pages import render
from api.journal.pages import visible
from api.requests.overview import overview_page
from api.requests.routes import QueryError, item_of, parse_query, search

FILTER_KEYS = (
    "start", "end", "host", "status", "method", "path", "route", "agent", "ip", "pageSize",
)  # fmt: skip
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PAGE_SIZES = (50, 100, 200, 500)


def _row(item: dict[str, Any]) -> dict[str, Any]:
    shown = dict(item)
    for key in ("host", "vhost", "path", "query", "referrer", "user_agent", "request", "user"):
        shown[key] = visible(item[key]) if item[key] else ""
    shown["utc"] = item["time"].replace("T", " ")[:23] + " UTC"
    shown["class"] = f"s{item['status'] // 100}"
    return shown


@get("/requests", guards=[operator_guard], include_in_schema=False)
async def requests_page(request: Request[Any, Any, Any]) -> Template:
    params = {k: str(v) for k, v in request.query_params.items()}
    raw = {k: params.get(k, "").strip() for k in FILTER_KEYS}
    raw["agent"] = params.get("agent", "")  # exact text
    context: dict[str, Any] = {
        "raw": raw,
        "rows": [],
        "classes": STATUS_CLASSES,
        "methods": METHODS,
        "page_sizes": PAGE_SIZES,
    }
    try:
        q = parse_query({**params, "limit": raw["pageSize"]}, limit_name="limit")
    except QueryError as exc:
        return render(request, "requests/requests.html", status_code=400, error=str(exc), **context)
    try:
        async with read_pool_of(request.app).connection() as conn:
            rows, next_cursor = await search(conn, q)
    except psycopg.Error as exc:
        error = http_error(exc)
        message = (
            "the database is unavailable, retry in a moment"
            if error.status_code == 503
            else f"these filters cannot be used: {error.detail}"
        )
        return render(
            request,
            "requests/requests.html",
            status_code=error.status_code,
            error=message,
            **context,
        )
    query = {k: v for k, v in raw.items() if v}
    context["rows"] = [_row(item_of(tuple(r))) for r in rows]
    context["older_url"] = (
        "/requests?" + urlencode({**query, "cursor": next_cursor}) if next_cursor else None
    )
    context["first_url"] = "/requests?" + urlencode(query) if q.after_at else None
    return render(request, "requests/requests.html", **context)


ROUTES = [requests_page, overview_page]  # the overview: api/requests/overview.py
