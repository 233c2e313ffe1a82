"""Public routes, no login: badges (/badge/KEY/KIND.svg|json) and status pages (/status/SLUG).

A badge URL names what it shows: `state`, `uptime` (24 h) or `uptime-24h|7d|30d`, then `.svg`
(a flat SVG badge) or `.json` (Shields.io endpoint JSON). Unknown keys and slugs are 404.
Replies are cached briefly (Cache-Control: max-age=60) and show no URL or host unless an
item of a status page was chosen to show it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath
from litestar.response import Template

from api.core.db import read_pool_of
from api.public import QUERIES
from api.public.badge import WINDOWS, Badge, percent, shields_json, state_badge, svg
from api.public.badge import uptime_badge as make_uptime_badge

CACHE = "public, max-age=60"
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
    async with read_pool_of(request.app).connection() as conn:
        row = await (await conn.execute(QUERIES["badge_read"], (key,))).fetchone()
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
    pool = read_pool_of(request.app)
    async with pool.connection() as conn:
        rows = await (await conn.execute(QUERIES["status_page_read"], (slug,))).fetchall()
        if not rows:
            return _not_found("status page")
        days = await (await conn.execute(QUERIES["status_page_days"], (slug,))).fetchall()
        incidents = await (await conn.execute(QUERIES["status_page_incidents"], (slug,))).fetchall()
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
