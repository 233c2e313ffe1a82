"""The dashboard (/): every metric, alerts first, filters, auto-refresh, delete; a page per
metric with a chart of its reports, the reports with the gap before each, its transitions
and the delivery status of each message; the system panel."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from itertools import pairwise
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


RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
REPORTS_PAGE = 100  # reports listed per page
CHART_LIMIT = 20_000  # newest reports drawn per range
_INT = re.compile(r"^\s*\+?[0-9]{1,7}\s*$")  # as vigil._parse_int: a ping's deadline in minutes
_NUMBER = re.compile(r"^\s*[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*$")


def _allowed(schedule: dict[str, Any], value: str | None) -> float | None:
    """Seconds a report allows before the next one is late (ping metrics), else None."""
    if not schedule["deadline_rule"]:
        return None
    if schedule["push_check"]:
        return None if schedule["cron"] else schedule["check_allowed"]
    if value is not None and _INT.match(value) and int(value) > 0:
        return int(value) * 60.0
    return schedule["default_allowed"]  # type: ignore[no-any-return]


def _number(value: str | None) -> float | None:
    if value is None or not _NUMBER.match(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _with_gaps(rows: list[dict[str, Any]], schedule: dict[str, Any]) -> list[dict[str, Any]]:
    """Newest-first reports, each with its gap since the report before it (seconds), the
    interval the report before allowed and whether the gap went past it (missed)."""
    out = []
    for i, row in enumerate(rows):
        prev = rows[i + 1] if i + 1 < len(rows) else None
        gap = (row["at"] - prev["at"]).total_seconds() if prev else None
        allowed = _allowed(schedule, prev["value"]) if prev else None
        missed = gap is not None and allowed is not None and gap > allowed
        out.append({**row, "gap": gap, "allowed": allowed, "missed": missed})
    return out


def _chart(
    rows: list[dict[str, Any]],
    schedule: dict[str, Any],
    since: datetime,
    now: datetime,
    deadline: datetime | None,
) -> dict[str, Any]:
    """The chart's data (oldest first, epoch seconds): values, or for ping metrics the gap
    before each report and the interval allowed, in minutes."""
    rows = rows[::-1]
    ping = bool(schedule["deadline_rule"])
    data: dict[str, Any] = {
        "kind": "deadline" if ping else "threshold",
        "from": since.timestamp(),
        "to": now.timestamp(),
        "deadline": deadline.timestamp() if ping and deadline else None,
        "t": [r["at"].timestamp() for r in rows],
        "truncated": len(rows) >= CHART_LIMIT,
    }
    if ping:
        gaps: list[float | None] = [None]
        allowed: list[float | None] = [None]
        for prev, row in pairwise(rows):
            gaps.append(round((row["at"] - prev["at"]).total_seconds() / 60, 3))
            limit = _allowed(schedule, prev["value"])
            allowed.append(None if limit is None else round(limit / 60, 3))
        data["gap"] = gaps[: len(rows)]
        data["allowed"] = allowed[: len(rows)]
    else:
        data["v"] = [_number(r["value"]) for r in rows]
    return data


def _before(request: Request[Any, Any, Any]) -> datetime | None:
    """The keyset of the reports list (?before=ISO time), ignored when unreadable."""
    text = request.query_params.get("before")
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@get("/metrics/{metric_id:int}", guards=[operator_guard], include_in_schema=False)
async def metric_page(request: Request[Any, Any, Any], metric_id: FromPath[int]) -> Template:
    """The metric, a chart of its reports over ?range= (24h, 7d, 30d), the reports newest
    first with the gap before each (?before= pages back), and its transitions."""
    range_ = request.query_params.get("range")
    range_ = range_ if range_ in RANGES else "24h"
    before = _before(request)
    now = datetime.now(UTC)
    since = now - RANGES[range_]
    async with read_pool_of(request.app).connection() as conn:
        found = await _all(conn, QUERIES["metric"], (metric_id,))
        if not found:
            raise NotFoundException(detail="no such metric")
        schedule = (await _all(conn, QUERIES["metric_schedule"], (metric_id,)))[0]
        page = await _all(
            conn,
            QUERIES["metric_reports"],
            {"id": metric_id, "before": before, "limit": REPORTS_PAGE + 1},
        )
        values = await _all(
            conn,
            QUERIES["metric_values"],
            {"id": metric_id, "since": since, "limit": CHART_LIMIT},
        )
        transitions = await _all(conn, QUERIES["metric_transitions"], (metric_id,))
    metric = found[0]
    reports = _with_gaps(page, schedule)[:REPORTS_PAGE]
    overdue = (
        before is None
        and metric["kind"] == "deadline"
        and metric["deadline"] is not None
        and metric["deadline"] < now
    )
    return render(
        request,
        "heartbeats/metric.html",
        metric=metric,
        transitions=transitions,
        reports=reports,
        more=len(page) > REPORTS_PAGE,
        before=before,
        overdue=overdue,
        silence=(now - metric["last_seen"]).total_seconds(),
        range=range_,
        ranges=list(RANGES),
        chart=_chart(values, schedule, since, now, metric["deadline"]),
    )


@get("/dashboard", status_code=308, include_in_schema=False)
async def dashboard_bookmark(request: Request[Any, Any, Any]) -> Redirect:
    """metrics-backend's dashboard address: the dashboard is /, filters kept."""
    query = request.url.query
    return Redirect("/" + ("?" + query if query else ""), status_code=308)


ROUTES = [dashboard, dashboard_bookmark, dashboard_live, delete_metric, metric_page]
