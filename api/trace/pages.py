"""The Trace page (GET /trace/{id}, and GET /trace?id= from its search box): every request
record and journal line carrying the id, oldest first, with a summary by host and service.
Log text is untrusted: autoescaped, with invisible characters shown as escapes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import psycopg
from litestar import Request, get
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.auth.sessions import operator_guard
from api.core.db import http_error, read_pool_of
from api.core.pages import render
from api.journal.pages import visible
from api.trace.routes import MAX_ITEMS, check_id, groups_of, lookup

PRIORITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


def _row(item: dict[str, Any]) -> dict[str, Any]:
    shown = dict(item)
    shown["utc"] = item["time"].replace("T", " ")[:23] + " UTC"
    shown["host"] = visible(item["host"]) if item["host"] else ""
    shown["service"] = visible(item["service"]) if item["service"] else ""
    shown["message"] = visible(item["message"] or "")
    if item["kind"] == "request":
        shown["class"] = f"s{item['status'] // 100}"
        shown["label"] = str(item["status"])
    else:
        p = item.get("priority")
        shown["class"] = f"p{p}" if p is not None else ""
        shown["label"] = PRIORITIES[p] if p is not None and 0 <= p <= 7 else "log"
    return shown


@get("/trace", guards=[operator_guard], include_in_schema=False)
async def trace_search(request: Request[Any, Any, Any]) -> Template | Redirect:
    raw = str(request.query_params.get("id") or "").strip()
    if not raw:
        return render(request, "trace/trace.html", trace_id="", rows=[], groups=[])
    try:
        value = check_id(raw)
    except ValueError as exc:
        return render(
            request, "trace/trace.html", status_code=400, error=str(exc), trace_id=raw, rows=[]
        )
    return Redirect(path="/trace/" + quote(value, safe=""), status_code=303)


@get("/trace/{trace_id:str}", guards=[operator_guard], include_in_schema=False)
async def trace_page(request: Request[Any, Any, Any], trace_id: FromPath[str]) -> Template:
    context: dict[str, Any] = {"trace_id": trace_id, "rows": [], "groups": []}
    try:
        value = check_id(trace_id)
    except ValueError as exc:
        return render(request, "trace/trace.html", status_code=400, error=str(exc), **context)
    try:
        async with read_pool_of(request.app).connection() as conn:
            items = await lookup(conn, value)
    except psycopg.Error as exc:
        error = http_error(exc)
        message = (
            "the database is unavailable, retry in a moment"
            if error.status_code == 503
            else f"this id cannot be looked up: {error.detail}"
        )
        return render(
            request, "trace/trace.html", status_code=error.status_code, error=message, **context
        )
    rows = [_row(i) for i in items]
    context.update(
        rows=rows,
        groups=groups_of(rows),
        truncated=len(items) >= MAX_ITEMS,
        max_items=MAX_ITEMS,
    )
    return render(request, "trace/trace.html", **context)


ROUTES = [trace_search, trace_page]
