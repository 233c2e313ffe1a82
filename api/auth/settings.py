"""The operator's own settings (/settings): the time zone every page shows times in.

The zone is stored per user (vigil.users.time_zone, set by vigil.user_set_time_zone); no
choice means the browser's own zone. base.html names a chosen zone in
<meta name="vigil-tz">, which vigil.js, journal.js, charts.js, metric.js and service.js read.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from litestar import Request, Response, get, post
from litestar.response import Redirect, Template

from api.auth import QUERIES
from api.auth.sessions import current_operator, operator_guard
from api.core.db import pool_of
from api.core.pages import render

MAX_ZONE = 64


async def _zones(request: Request[Any, Any, Any]) -> list[str]:
    """The choices: the IANA names PostgreSQL knows (it validates them too), UTC first."""
    async with pool_of(request.app).connection() as conn:
        rows = await (await conn.execute(QUERIES["time_zones"])).fetchall()
    return ["UTC", *(str(row[0]) for row in rows)]


async def _page(
    request: Request[Any, Any, Any], status_code: int = 200, **context: Any
) -> Template:
    return render(
        request,
        "auth/settings.html",
        status_code=status_code,
        zones=await _zones(request),
        now=datetime.now(UTC),
        **context,
    )


@get("/settings", guards=[operator_guard], include_in_schema=False)
async def settings_page(request: Request[Any, Any, Any]) -> Template:
    return await _page(request, saved=request.query_params.get("saved") == "1")


@post("/settings", guards=[operator_guard], status_code=303, include_in_schema=False)
async def save_settings(request: Request[Any, Any, Any]) -> Response[Any]:
    """Post/redirect/get; an unknown zone is a 400 with the form again."""
    form = await request.form()
    zone = str(form.get("time_zone", "")).strip()
    if len(zone) > MAX_ZONE:
        return await _page(request, 400, error="A time zone name has at most 64 characters.")
    operator = current_operator(request)
    try:
        async with pool_of(request.app).connection() as conn:
            await conn.execute(QUERIES["user_set_time_zone"], (operator.email, zone or None))
    except psycopg.errors.InvalidParameterValue as exc:
        hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
        return await _page(request, 400, error=f"{exc.diag.message_primary}{hint}")
    return Redirect("/settings?saved=1", status_code=303)


ROUTES = [settings_page, save_settings]
