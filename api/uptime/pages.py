"""The services page (/services): state, uptime 24 h / 7 d / 30 d, a response-time
sparkline (inline SVG, drawn here: no script, CSP-safe), recent events; add and remove."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from litestar import Request, Response, get, post
from litestar.response import Redirect, Template
from markupsafe import Markup

from api.auth.sessions import operator_guard
from api.core.db import pool_of
from api.core.pages import render
from api.uptime import QUERIES
from vigil import QUERIES as VIGIL_QUERIES
from vigil.durations import positive_seconds

SPARK_POINTS = 60
EVENTS_SHOWN = 10

LIST_COLUMNS = (
    "id", "name", "url", "state", "enabled", "last_error", "avg_ms", "uptime_24h",
    "uptime_7d", "uptime_30d", "interval", "allow_internal", "last_checked_at",
    "state_changed_at", "ms", "ok",
)  # fmt: skip


def sparkline(
    values: list[float | None], oks: list[bool], width: int = 160, height: int = 28
) -> Markup:
    """Response times as an SVG polyline; failed checks as red marks on the baseline."""
    if not values:
        return Markup('<span class="muted">no checks yet</span>')
    top = max((v for v in values if v is not None), default=1.0) or 1.0
    step = width / max(len(values) - 1, 1)
    points: list[str] = []
    marks: list[str] = []
    for i, (v, ok) in enumerate(zip(values, oks, strict=True)):
        x = round(i * step, 1)
        if v is not None:
            y = round(height - 2 - (v / top) * (height - 4), 1)
            points.append(f"{x},{y}")
        if not ok:
            marks.append(
                f'<rect x="{max(x - 1, 0)}" y="{height - 6}" width="3" height="6" fill="#c62828"/>'
            )
    line = (
        f'<polyline points="{" ".join(points)}" fill="none" stroke="#1565c0" stroke-width="1.5"/>'
        if len(points) > 1
        else ""
    )
    label = f"response time, last {len(values)} checks, max {top:.0f} ms"
    return Markup(  # noqa: S704 (only numbers computed here are interpolated)
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{label}"><title>{label}</title>{line}{"".join(marks)}</svg>'
    )


async def _page(
    request: Request[Any, Any, Any], status_code: int = 200, **context: Any
) -> Template:
    async with pool_of(request.app).connection() as conn:
        rows = await (await conn.execute(QUERIES["services_page"], (SPARK_POINTS,))).fetchall()
        event_rows = await (
            await conn.execute(QUERIES["services_page_events"], (EVENTS_SHOWN,))
        ).fetchall()
    events: dict[int, list[dict[str, Any]]] = {}
    for sid, event, started, ended, reason in event_rows:
        events.setdefault(int(sid), []).append(
            {"event": event, "started": started, "ended": ended, "reason": reason}
        )
    services = []
    for row in rows:
        service = dict(zip(LIST_COLUMNS, row, strict=True))
        service["spark"] = sparkline(list(service["ms"] or []), list(service["ok"] or []))
        service["events"] = events.get(int(service["id"]), [])
        services.append(service)
    return render(
        request, "uptime/services.html", status_code=status_code, services=services, **context
    )


@get("/services", guards=[operator_guard], include_in_schema=False)
async def services_page(request: Request[Any, Any, Any]) -> Template:
    return await _page(request, done=request.query_params.get("done"))


def _seconds(text: str, default: float) -> float:
    """A form field's seconds (the default when left empty); ValueError when invalid."""
    return positive_seconds(text) if text.strip() else default


@post("/services", guards=[operator_guard], status_code=303, include_in_schema=False)
async def add_service(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    name = str(form.get("name", "")).strip()
    url = str(form.get("url", "")).strip()
    keep = {"name": name, "url": url}
    try:
        interval = _seconds(str(form.get("interval", "")), 15)
        timeout = _seconds(str(form.get("timeout", "")), 15)
    except ValueError:
        return await _page(request, 400, error="Interval and timeout are seconds.", form=keep)
    try:
        async with pool_of(request.app).connection() as conn:
            await conn.execute(
                QUERIES["service_add"],
                (
                    name,
                    url,
                    timedelta(seconds=interval),
                    timedelta(seconds=timeout),
                    form.get("allow_internal") == "on",
                ),
            )
    except (psycopg.errors.UniqueViolation, psycopg.errors.InvalidParameterValue,
            psycopg.errors.CheckViolation) as exc:  # fmt: skip
        hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
        status = 409 if isinstance(exc, psycopg.errors.UniqueViolation) else 400
        message = f"{exc.diag.message_primary}{hint}"
        return await _page(request, status, error=message, form=keep)
    return Redirect("/services?done=added", status_code=303)


@post("/services/remove", guards=[operator_guard], status_code=303, include_in_schema=False)
async def remove_service(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    name = str(form.get("name", ""))
    async with pool_of(request.app).connection() as conn:
        row = await (await conn.execute(VIGIL_QUERIES["service_remove"], (name,))).fetchone()
    if not row or not row[0]:
        return await _page(request, 404, error=f"No service named {name!r}.")
    return Redirect("/services?done=removed", status_code=303)


ROUTES = [services_page, add_service, remove_service]
