"""The services page (/services): state, uptime 24 h / 7 d / 30 d, a response-time
sparkline (inline SVG, drawn here: no script, CSP-safe), recent events; add and remove.
A page per service (/services/{id or name}): response-time chart (uPlot, api/static/service.js),
uptime 24 h / 7 d / 30 d / 90 d, incidents; edit, pause and resume."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import psycopg
from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from markupsafe import Markup

from api.auth.sessions import operator_guard
from api.core.db import pool_of
from api.core.pages import render
from api.uptime import QUERIES
from api.uptime.internal import InternalURL, check_url
from prober.guard import ALLOW_HINT, NEVER_HINT
from vigil import QUERIES as VIGIL_QUERIES
from vigil.durations import positive_seconds

SPARK_POINTS = 60
EVENTS_SHOWN = 10
CHART_POINTS = 5000  # the newest checks of the last 24 h drawn on a service's page
INCIDENTS_SHOWN = 50
DB_ERRORS = (
    psycopg.errors.UniqueViolation,
    psycopg.errors.InvalidParameterValue,
    psycopg.errors.CheckViolation,
)
SETTING_COLUMNS = (
    "id", "name", "url", "interval", "timeout", "allow_internal", "expected_status",
    "body_contains", "retries", "enabled", "state", "state_changed_at", "last_checked_at",
    "last_error",
)  # fmt: skip

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
            {"event": event, "started": started, "ended": ended, "reason": _for_the_page(reason)}
        )
    services = []
    for row in rows:
        service = dict(zip(LIST_COLUMNS, row, strict=True))
        service["last_error"] = _for_the_page(service["last_error"])
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


def _for_the_page(error: str | None) -> str | None:
    """A check's error as the web shows it: the prober's hints name CLI flags."""
    if error is None:
        return None
    return error.replace(
        f"({ALLOW_HINT})", "(tick “Internal” in the service's settings to allow it)"
    ).replace(f"({NEVER_HINT})", "(never probed)")


class FormError(ValueError):
    """A service form that cannot be saved: the message for the page and its status."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


def _typed(form: Any) -> dict[str, Any]:
    """A service form as typed (shown again with an error)."""
    keep: dict[str, Any] = {
        key: str(form.get(key, "")).strip()
        for key in ("name", "url", "interval", "timeout", "expected_status", "retries")
    }
    keep["body_contains"] = str(form.get("body_contains", ""))
    keep["allow_internal"] = form.get("allow_internal") == "on"
    return keep


async def _settings(keep: dict[str, Any]) -> tuple[Any, ...]:
    """The parameters of service_add/service_edit from a typed form (name, URL, interval,
    timeout, internal, expected status, body, retries); FormError when invalid."""
    try:
        interval = _seconds(keep["interval"], 15)
        timeout = _seconds(keep["timeout"], 15)
    except ValueError:
        raise FormError("Interval and timeout are seconds.") from None
    try:
        status = int(keep["expected_status"]) if keep["expected_status"] else None
        retries = int(keep["retries"]) if keep["retries"] else 2
    except ValueError:
        raise FormError("Expected status and retries are whole numbers.") from None
    try:
        await anyio.to_thread.run_sync(check_url, keep["url"], keep["allow_internal"])
    except InternalURL as exc:
        fix = "" if exc.never else " Tick “Internal” if this service is on your network."
        raise FormError(f"{exc}.{fix}") from None
    params = (
        keep["name"], keep["url"], timedelta(seconds=interval), timedelta(seconds=timeout),
        keep["allow_internal"], status, keep["body_contains"] or None, retries,
    )  # fmt: skip
    return params


def _db_message(exc: psycopg.Error) -> FormError:
    hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
    status = 409 if isinstance(exc, psycopg.errors.UniqueViolation) else 400
    return FormError(f"{exc.diag.message_primary}{hint}", status)


@post("/services", guards=[operator_guard], status_code=303, include_in_schema=False)
async def add_service(request: Request[Any, Any, Any]) -> Response[Any]:
    keep = _typed(await request.form())
    try:
        params = await _settings(keep)
        try:
            async with pool_of(request.app).connection() as conn:
                await conn.execute(QUERIES["service_add"], params)
        except DB_ERRORS as exc:
            raise _db_message(exc) from None
    except FormError as exc:
        return await _page(request, exc.status, error=str(exc), form=keep)
    return Redirect("/services?done=added", status_code=303)


async def _service(conn: Any, key: str) -> dict[str, Any] | None:
    sid = int(key) if key.isascii() and key.isdigit() and len(key) < 19 else None
    row = await (await conn.execute(QUERIES["service_get"], {"id": sid, "name": key})).fetchone()
    if row is None:
        return None
    service = dict(zip(SETTING_COLUMNS, row, strict=True))
    service["last_error"] = _for_the_page(service["last_error"])
    return service


async def _service_page(
    request: Request[Any, Any, Any], key: str, status_code: int = 200, **context: Any
) -> Template:
    async with pool_of(request.app).connection() as conn:
        service = await _service(conn, key)
        if service is None:
            return render(request, "uptime/service.html", status_code=404, service=None, key=key)
        sid = service["id"]
        uptimes = await (await conn.execute(QUERIES["service_uptimes"], {"id": sid})).fetchone()
        checks = await (
            await conn.execute(QUERIES["service_checks"], (sid, timedelta(hours=24), CHART_POINTS))
        ).fetchall()
        incidents = await (
            await conn.execute(QUERIES["service_incidents"], (sid, INCIDENTS_SHOWN))
        ).fetchall()
    # Failed checks are a second series (at their response time, or on the axis when
    # there was no response).
    chart = {
        "t": [r[0] for r in checks],
        "ms": [r[1] if r[2] else None for r in checks],
        "failed": [None if r[2] else (r[1] or 0.0) for r in checks],
    }
    return render(
        request,
        "uptime/service.html",
        status_code=status_code,
        service=service,
        uptimes=dict(zip(("24 h", "7 d", "30 d", "90 d"), uptimes or (), strict=False)),
        chart=chart,
        checks=len(checks),
        failed=sum(1 for r in checks if not r[2]),
        incidents=[
            {"started": r[0], "ended": r[1], "reason": _for_the_page(r[2]), "seconds": r[3]}
            for r in incidents
        ],
        form=context.pop("form", None) or service,
        **context,
    )


@get("/services/{key:str}", guards=[operator_guard], include_in_schema=False)
async def service_page(request: Request[Any, Any, Any], key: FromPath[str]) -> Template:
    return await _service_page(request, key, done=request.query_params.get("done"))


@post("/services/{key:str}/edit", guards=[operator_guard], status_code=303, include_in_schema=False)
async def edit_service(request: Request[Any, Any, Any], key: FromPath[str]) -> Response[Any]:
    keep = _typed(await request.form())
    try:
        params = await _settings(keep)
        async with pool_of(request.app).connection() as conn:
            service = await _service(conn, key)
            if service is None:
                raise FormError(f"No service {key!r}.", 404)
            try:
                await conn.execute(QUERIES["service_edit"], (service["id"], *params))
            except DB_ERRORS as exc:
                raise _db_message(exc) from None
    except FormError as exc:
        return await _service_page(request, key, exc.status, error=str(exc), form=keep)
    return Redirect(f"/services/{service['id']}?done=saved", status_code=303)


@post(
    "/services/{key:str}/pause", guards=[operator_guard], status_code=303, include_in_schema=False
)
async def pause_service(request: Request[Any, Any, Any], key: FromPath[str]) -> Response[Any]:
    form = await request.form()
    paused = form.get("paused") != "false"
    async with pool_of(request.app).connection() as conn:
        service = await _service(conn, key)
        if service is not None:
            await conn.execute(QUERIES["service_pause"], (service["name"], paused))
    if service is None:
        return await _service_page(request, key)
    done = "paused" if paused else "resumed"
    return Redirect(f"/services/{quote(str(service['id']))}?done={done}", status_code=303)


@post("/services/remove", guards=[operator_guard], status_code=303, include_in_schema=False)
async def remove_service(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    name = str(form.get("name", ""))
    async with pool_of(request.app).connection() as conn:
        row = await (await conn.execute(VIGIL_QUERIES["service_remove"], (name,))).fetchone()
    if not row or not row[0]:
        return await _page(request, 404, error=f"No service named {name!r}.")
    return Redirect("/services?done=removed", status_code=303)


ROUTES = [services_page, add_service, remove_service, service_page, edit_service, pause_service]
