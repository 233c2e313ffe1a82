"""The Requests overview (GET /requests/overview): for a time range (presets `range=1h|6h|24h|7d`,
or `start`/`end` read in the viewer's zone `tz`) and an optional `host` (the logging host or the
virtual host): traffic and error-rate charts (api/static/requests-overview.js draws them with
uPlot and charts.js's formats), the busiest routes (vigil.request_route), client addresses and
user agents, and the status breakdown. Every row links into the filtered request list
(/requests?route=...), a route also to the trace view of its slowest traced request.

One query per panel (api/requests/queries.sql, overview_*), all over the (at) index, run
concurrently on their own connections. Log text is untrusted: autoescaped, with invisible and
direction-changing characters shown as escapes."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from litestar import Request, get
from litestar.response import Template
from markupsafe import Markup

from api.auth.sessions import operator_guard
from api.core.db import http_error, read_pool_of
from api.core.pages import render
from api.journal.pages import visible
from api.requests import QUERIES

RANGES = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
DEFAULT_RANGE = "24h"
MAX_SPAN = timedelta(days=31)
STEPS = tuple(timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440))
MAX_BUCKETS = 200
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)  # date_bin's origin in overview_traffic
TOP_ROUTES = 15
TOP_IPS = 10
TOP_AGENTS = 10
FILTER_KEYS = ("range", "start", "end", "tz", "host")
CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


class RangeError(ValueError):
    """A filter the page cannot use; the message is shown to the operator."""


@dataclass
class Window:
    """[start, end) in UTC, whole seconds; `preset` is the range name, or "" for From/To."""

    start: datetime
    end: datetime
    preset: str
    host: str | None
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def step(self) -> timedelta:
        span = self.end - self.start
        return next((s for s in STEPS if span / s <= MAX_BUCKETS), STEPS[-1])

    def params(self, limit: int = 0) -> dict[str, Any]:
        return {
            "from": self.start,
            "to": self.end,
            "host": self.host,
            "step": self.step,
            "limit": limit,
        }

    def list_url(self, **filters: str) -> str:
        """The Requests list of this window (its From/To are UTC) with more filters."""
        query = {
            "start": self.start.strftime("%Y-%m-%dT%H:%M:%S"),
            "end": self.end.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if self.host:
            query["host"] = self.host
        return "/requests?" + urlencode({**query, **filters})


def _zone(name: str) -> ZoneInfo:
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RangeError(f"unknown time zone {name!r}") from None


def _time(text: str, zone: ZoneInfo, label: str) -> datetime:
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RangeError(f"{label} must be a date and time like 2026-11-30T14:30") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=zone)
    return at.astimezone(UTC)


def _ceil_second(at: datetime) -> datetime:
    whole = at.replace(microsecond=0)
    return whole + timedelta(seconds=1) if whole < at else whole


def parse_window(params: dict[str, str], now: datetime, zone_name: str = "") -> Window:
    raw = {k: params.get(k, "").strip() for k in FILTER_KEYS}
    host = raw["host"][:255] or None
    if raw["start"] or raw["end"]:
        zone = _zone(raw["tz"] or zone_name)
        if not raw["start"]:
            raise RangeError("From is needed with To (or pick a range: 1h, 6h, 24h, 7d)")
        start = _time(raw["start"], zone, "From")
        end = _time(raw["end"], zone, "To") if raw["end"] else now
        start, end = start.replace(microsecond=0), _ceil_second(end)
        if end <= start:
            raise RangeError("From must be before To")
        if end - start > MAX_SPAN:
            raise RangeError(f"the range is at most {MAX_SPAN.days} days")
        return Window(start, end, "", host, raw)
    preset = raw["range"] or DEFAULT_RANGE
    if preset not in RANGES:
        raise RangeError(f"range must be one of {', '.join(RANGES)}")
    end = _ceil_second(now)
    return Window(end - RANGES[preset], end, preset, host, raw)


# --- panels ---


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def num_text(n: int) -> str:
    """12,345"""
    return f"{n:,}"


def pct_text(value: float) -> str:
    """A share for people: 0 %, 0.04 %, 1.3 %, 42 %."""
    if value == 0:
        return "0 %"
    if value < 0.1:
        return f"{value:.2f} %"
    return f"{value:.1f} %" if value < 10 else f"{value:.0f} %"


def bytes_text(n: int) -> str:
    """1023 B, 1.5 KiB, 210 MiB."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" or size >= 100 else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _buckets(w: Window, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Every bucket of the window (empty ones as zero) for the charts: requests per minute
    over the part of the bucket inside the window, 5xx and 4xx shares in %."""
    step = w.step
    by_start = {r[0]: r for r in rows}
    first = ORIGIN + ((w.start - ORIGIN) // step) * step
    out: dict[str, list[Any]] = {k: [] for k in ("t", "n", "s5xx", "s4xx", "rpm", "e5", "e4")}
    at = first
    while at < w.end:
        _, n, s5, s4 = by_start.get(at, (at, 0, 0, 0))
        covered = (min(at + step, w.end) - max(at, w.start)) / timedelta(minutes=1)
        out["t"].append(int(at.timestamp()))
        out["n"].append(n)
        out["s5xx"].append(s5)
        out["s4xx"].append(s4)
        out["rpm"].append(round(n / covered, 3) if covered > 0 else None)
        out["e5"].append(round(_pct(s5, n), 3) if n else None)
        out["e4"].append(round(_pct(s4, n), 3) if n else None)
        at += step
    return {
        "from": int(w.start.timestamp()),
        "to": int(w.end.timestamp()),
        "step": int(step.total_seconds()),
        **out,
    }


def _statuses(w: Window, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    total = sum(r[1] for r in rows)
    by_class: dict[str, int] = {}
    for status, n, _ in rows:
        key = f"{status // 100}xx"
        by_class[key] = by_class.get(key, 0) + n
    classes = [
        {"name": c, "n": by_class.get(c, 0), "share": _pct(by_class.get(c, 0), total),
         "url": w.list_url(status=c)}
        for c in CLASSES
        if c in by_class or c in ("2xx", "4xx", "5xx")
    ]  # fmt: skip
    codes = [
        {"status": s, "n": n, "share": _pct(n, total), "url": w.list_url(status=str(s)),
         "cls": f"s{s // 100}"}
        for s, n, _ in sorted(rows, key=lambda r: (-r[1], r[0]))
    ]  # fmt: skip
    s5 = by_class.get("5xx", 0)
    s4 = by_class.get("4xx", 0)
    minutes = (w.end - w.start) / timedelta(minutes=1)
    return {
        "total": total,
        "rpm": total / minutes,
        "s5xx": s5,
        "s4xx": s4,
        "e5": _pct(s5, total),
        "e4": _pct(s4, total),
        "bytes": sum(r[2] for r in rows),
        "classes": classes,
        "codes": codes,
    }


def _ms(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    ms = seconds * 1000
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def _routes(w: Window, rows: list[tuple[Any, ...]], total: int) -> list[dict[str, Any]]:
    out = []
    for route, n, s5, s4, size, timed, latency, slowest in rows:
        item: dict[str, Any] = {
            "route": route,
            "shown": visible(route) if route is not None else Markup("(no request line)"),
            "n": n,
            "share": _pct(n, total),
            "s5xx": s5,
            "s4xx": s4,
            "e5": _pct(s5, n),
            "e4": _pct(s4, n),
            "bytes": size,
            "timed": timed,
            "p50": _ms(latency[0]) if timed else None,
            "p95": _ms(latency[1]) if timed else None,
            "p99": _ms(latency[2]) if timed else None,
            "url": w.list_url(route=route) if route is not None else None,
            "errors_url": w.list_url(route=route, status="5xx") if route and s5 else None,
            "trace_url": "/trace/" + quote(slowest, safe="") if slowest else None,
        }
        out.append(item)
    return out


def _ips(w: Window, rows: list[tuple[Any, ...]], total: int) -> list[dict[str, Any]]:
    return [
        {"ip": str(ip), "n": n, "share": _pct(n, total), "s5xx": s5, "s4xx": s4,
         "e5": _pct(s5, n), "e4": _pct(s4, n), "bytes": size, "url": w.list_url(ip=str(ip))}
        for ip, n, s5, s4, size in rows
    ]  # fmt: skip


def _agents(w: Window, rows: list[tuple[Any, ...]], total: int) -> list[dict[str, Any]]:
    return [
        {"agent": agent, "shown": visible(agent) if agent else Markup("(none sent)"), "n": n,
         "share": _pct(n, total), "s5xx": s5, "s4xx": s4, "e5": _pct(s5, n), "e4": _pct(s4, n),
         "url": w.list_url(agent=agent) if agent else None}
        for agent, n, s5, s4 in rows
    ]  # fmt: skip


async def _fetch(request: Request[Any, Any, Any], query: str, params: dict[str, Any]) -> Any:
    async with read_pool_of(request.app).connection() as conn:
        return await (await conn.execute(query, params)).fetchall()


async def overview(request: Request[Any, Any, Any], w: Window) -> dict[str, Any]:
    """Every panel's rows, the queries run concurrently on their own connections."""
    traffic, statuses, routes, ips, agents = await asyncio.gather(
        _fetch(request, QUERIES["overview_traffic"], w.params()),
        _fetch(request, QUERIES["overview_statuses"], w.params()),
        _fetch(request, QUERIES["overview_routes"], w.params(TOP_ROUTES)),
        _fetch(request, QUERIES["overview_ips"], w.params(TOP_IPS)),
        _fetch(request, QUERIES["overview_agents"], w.params(TOP_AGENTS)),
    )
    summary = _statuses(w, statuses)
    total = summary["total"]
    return {
        "chart": _buckets(w, traffic),
        "summary": summary,
        "routes": _routes(w, routes, total),
        "ips": _ips(w, ips, total),
        "agents": _agents(w, agents, total),
    }


def _step_text(step: timedelta) -> str:
    minutes = int(step.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440} day"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


@get("/requests/overview", guards=[operator_guard], include_in_schema=False)
async def overview_page(request: Request[Any, Any, Any]) -> Template:
    params = {k: str(v) for k, v in request.query_params.items()}
    operator = request.scope.get("state", {}).get("vigil_operator")
    zone_name = str(getattr(operator, "time_zone", "") or "")
    raw = {k: params.get(k, "").strip() for k in FILTER_KEYS}
    context: dict[str, Any] = {
        "raw": raw,
        "ranges": list(RANGES),
        "data": None,
        "num": num_text,
        "pct": pct_text,
        "size": bytes_text,
    }
    try:
        w = parse_window(params, datetime.now(UTC), zone_name)
    except RangeError as exc:
        return render(request, "requests/overview.html", status_code=400, error=str(exc), **context)
    context.update(
        w=w,
        step_text=_step_text(w.step),
        start_iso=w.start.isoformat().replace("+00:00", "Z"),
        end_iso=w.end.isoformat().replace("+00:00", "Z"),
        list_url=w.list_url(),
        preset_url={
            r: "/requests/overview?"
            + urlencode({"range": r, **({"host": w.host} if w.host else {})})
            for r in RANGES
        },
    )
    try:
        data = await overview(request, w)
    except psycopg.Error as exc:
        error = http_error(exc)
        message = (
            "the database is unavailable, retry in a moment"
            if error.status_code == 503
            else f"these filters cannot be used: {error.detail}"
        )
        return render(
            request,
            "requests/overview.html",
            status_code=error.status_code,
            error=message,
            **context,
        )
    context["data"] = data
    return render(request, "requests/overview.html", **context)


ROUTES = [overview_page]
