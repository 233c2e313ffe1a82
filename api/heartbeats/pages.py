"""The dashboard (/): every metric, alerts first, filters, auto-refresh, delete; a page per
metric with its transitions and the delivery status of each message; the system panel."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from api.auth.sessions import operator_guard
from api.core.db import pool_of, read_pool_of
from api.core.pages import render
from api.heartbeats import QUERIES
from vigil.supervisor import supervised_roles


async def _all(conn: AsyncConnection[Any], sql: str, params: Any = None) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


def _filters(request: Request[Any, Any, Any]) -> dict[str, str | None]:
    """host, type and state from the query string (empty means all)."""
    host = request.query_params.get("host")
    type_ = request.query_params.get("type")
    state = request.query_params.get("state")
    return {
        "host": host or None,
        "type": type_ or None,
        "state": state if state in ("ok", "alert") else None,
    }


async def _dashboard_context(
    request: Request[Any, Any, Any], filters: dict[str, Any]
) -> dict[str, Any]:
    async with read_pool_of(request.app).connection() as conn:
        metrics = await _all(conn, QUERIES["dashboard_metrics"], filters)
        status = (await _all(conn, QUERIES["system_panel"]))[0]
        choices = (await _all(conn, QUERIES["dashboard_choices"]))[0]
    age = status["detector_age"]
    status["detector_late"] = age is None or age > status["stall_after"]
    return {
        "metrics": metrics,
        "alerts": sum(1 for m in metrics if m["alerting"]),
        "system": status,
        "roles": supervised_roles(),
        "hosts": choices["hosts"],
        "types": choices["types"],
        "filters": filters,
        "query": urlencode({k: v for k, v in filters.items() if v}),
    }


@get("/", guards=[operator_guard], include_in_schema=False)
async def dashboard(
    request: Request[Any, Any, Any],
) -> Template:
    context = await _dashboard_context(request, _filters(request))
    return render(request, "heartbeats/dashboard.html", **context)


@get("/dashboard/live", guards=[operator_guard], include_in_schema=False)
async def dashboard_live(
    request: Request[Any, Any, Any],
) -> Template:
    """The part of the dashboard that refreshes itself every 10 s (HTMX), same filters."""
    context = await _dashboard_context(request, _filters(request))
    return render(request, "heartbeats/dashboard_live.html", **context)


@post(
    "/metrics/{metric_id:int}/delete",
    guards=[operator_guard],
    status_code=200,
    include_in_schema=False,
)
async def delete_metric(request: Request[Any, Any, Any], metric_id: FromPath[int]) -> Response[str]:
    """HTMX POST (hx-confirm on the button, CSRF header): the row is swapped for nothing."""
    async with pool_of(request.app).connection() as conn:
        row = await (await conn.execute(QUERIES["metric_delete"], (metric_id,))).fetchone()
    if not row or not row[0]:
        raise NotFoundException(detail="no such metric (deleted already?)")
    headers = {} if request.headers.get("hx-request") else {"Location": "/"}
    return Response("", status_code=200 if not headers else 303, headers=headers)


@get("/metrics/{metric_id:int}", guards=[operator_guard], include_in_schema=False)
async def metric_page(request: Request[Any, Any, Any], metric_id: FromPath[int]) -> Template:
    async with read_pool_of(request.app).connection() as conn:
        found = await _all(conn, QUERIES["metric"], (metric_id,))
        if not found:
            raise NotFoundException(detail="no such metric")
        transitions = await _all(conn, QUERIES["metric_transitions"], (metric_id,))
    metric = found[0]
    return render(request, "heartbeats/metric.html", metric=metric, transitions=transitions)


@get("/dashboard", status_code=308, include_in_schema=False)
async def dashboard_bookmark(request: Request[Any, Any, Any]) -> Redirect:
    """metrics-backend's dashboard address: the dashboard is /, filters kept."""
    query = request.url.query
    return Redirect("/" + ("?" + query if query else ""), status_code=308)


ROUTES = [dashboard, dashboard_bookmark, dashboard_live, delete_metric, metric_page]
