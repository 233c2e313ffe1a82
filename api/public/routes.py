"""Public routes, no login: badges (/badge/KEY/KIND.svg|json) and status pages (/status/SLUG).

A badge URL names what it shows: `state`, `uptime` (24 h) or `uptime-24h|7d|30d`, then `.svg`
(a flat SVG badge) or `.json` (Shields.io endpoint JSON). Unknown keys and slugs are 404.
Replies are cached briefly (Cache-Control: max-age=60) and show no URL or host unless an
item of a status page was chosen to show it. Anyone may call these routes, so what they read
is also kept in the process for READ_TTL seconds, and at most PUBLIC_READS of them read the
database at a time: a loop of anonymous requests cannot take the pool from ingest.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any, TypeVar

from litestar import Request, Response, get
from litestar.params import FromPath
from litestar.response import Template

from api.core.db import read_pool_of
from api.public import QUERIES
from api.public.badge import WINDOWS, Badge, percent, shields_json, state_badge, svg
from api.public.badge import uptime_badge as make_uptime_badge

CACHE = "public, max-age=60"
READ_TTL = 30.0  # seconds a public read is served from the process
READ_CACHE_SIZE = 1000
PUBLIC_READS = 2  # database reads of public routes at a time
T = TypeVar("T")
_reads: dict[tuple[str, str], tuple[float, Any]] = {}
_slots = asyncio.Semaphore(PUBLIC_READS)
clock = time.monotonic  # the cache's clock (tests set their own)


async def cached(key: tuple[str, str], read: Callable[[], Awaitable[T]]) -> T:
    """`read()`'s result, at most READ_TTL seconds old; reads take turns (PUBLIC_READS)."""
    hit = _reads.get(key)
    if hit is not None and hit[0] > clock():
        return hit[1]  # type: ignore[no-any-return]
    async with _slots:
        hit = _reads.get(key)  # another request may have read it meanwhile
        if hit is not None and hit[0] > clock():
            return hit[1]  # type: ignore[no-any-return]
        value = await read()
    if len(_reads) >= READ_CACHE_SIZE:
        _reads.clear()
    _reads[key] = (clock() + READ_TTL, value)
    return value


KINDS = {"state": None, "uptime": "24h"} | {f"uptime-{w}": w for w in WINDOWS}
FORMATS = ("svg", "json")


def _not_found(what: str) -> Response[str]:
    return Response(
        f"no such {what}; check the URL (a deleted one is gone for good)\n",
        status_code=404,
        media_type="text/plain; charset=utf-8",
        headers={"cache-control": "no-store"},
    )


@get("/badge/{key:str}/{name:str}", include_in_schema=False)
async def badge(
    request: Request[Any, Any, Any], key: FromPath[str], name: FromPath[str]
) -> Response[Any]:
    kind, _, fmt = name.rpartition(".")
    if kind not in KINDS or fmt not in FORMATS:
        known = ", ".join(f"{k}.{f}" for k in KINDS for f in FORMATS)
        return _not_found(f"badge kind {name!r} (use one of {known})")

    async def read() -> Any:
        async with read_pool_of(request.app).connection() as conn:
            return await (await conn.execute(QUERIES["badge_read"], (key,))).fetchone()

    row = await cached(("badge", key), read)
    if row is None:
        return _not_found("badge")
    label, state = str(row[0]), str(row[1])
    window = KINDS[kind]
    shown: Badge
    if window is None:
        shown = state_badge(label, state)
    else:
        value = row[WINDOWS[window]]
        shown = make_uptime_badge(window, None if value is None else float(value))
    if fmt == "json":
        return Response(shields_json(shown), headers={"cache-control": CACHE})
    return Response(
        svg(shown),
        media_type="image/svg+xml; charset=utf-8",
        headers={"cache-control": CACHE},
    )


def _bar_class(value: float | None) -> str:
    if value is None:
        return "none"
    if value >= 99.9:
        return "up"
    if value >= 99:
        return "minor"
    return "major"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def _utc(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _pct(value: float | None) -> str:
    return "no data" if value is None else percent(float(value))


@get("/status/{slug:str}", include_in_schema=False)
async def status_page(
    request: Request[Any, Any, Any], slug: FromPath[str]
) -> Response[Any] | Template:
    async def read() -> tuple[list[Any], list[Any], list[Any]]:
        async with read_pool_of(request.app).connection() as conn:
            rows = await (await conn.execute(QUERIES["status_page_read"], (slug,))).fetchall()
            if not rows:
                return [], [], []
            days = await (await conn.execute(QUERIES["status_page_days"], (slug,))).fetchall()
            incidents = await (
                await conn.execute(QUERIES["status_page_incidents"], (slug,))
            ).fetchall()
        return list(rows), list(days), list(incidents)

    rows, days, incidents = await cached(("status", slug), read)
    if not rows:
        return _not_found("status page")
    bars: dict[int, list[dict[str, str]]] = defaultdict(list)
    for item, day, value in days:
        assert isinstance(day, date)
        up = None if value is None else float(value)
        bars[int(item)].append({"cls": _bar_class(up), "title": f"{day.isoformat()}: {_pct(up)}"})
    items = [
        {
            "label": label,
            "detail": detail,
            "state": state,
            "uptime": {"24 h": _pct(u24), "7 d": _pct(u7), "30 d": _pct(u30)},
            "uptime_90d": _pct(u90),
            "bars": bars[int(item)],
        }
        for _, item, label, detail, state, u24, u7, u30, u90 in rows
    ]
    states = {i["state"] for i in items}
    overall = (
        ("ok", "All systems operational")
        if states <= {"up"}
        else ("bad", "Some systems are down")
        if states & {"down", "late", "alert"}
        else ("unknown", "Some systems have no data yet")
    )
    return Template(
        "public/status.html",
        context={
            "title": rows[0][0],
            "overall": overall,
            "items": items,
            "incidents": [
                {
                    "label": label,
                    "started": _utc(started),
                    "started_iso": started.isoformat(),
                    "ended": _utc(ended) if ended else "ongoing",
                    "ended_iso": ended.isoformat() if ended else "",
                    "state": state,
                    "duration": _duration(float(secs)),
                    "detail": detail,
                }
                for _, label, started, ended, state, detail, secs in incidents
            ],
        },
        headers={"cache-control": CACHE},
    )


ROUTES = [badge, status_page]
