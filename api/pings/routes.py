"""Push check routes: Healthchecks-compatible pings and Uptime Kuma pushes.

`/ping/<secret>[/start|/fail|/log|/<exit status>]` and `/ping/<ping-key>/<slug>[/...]` with
HEAD, GET or POST answer as Healthchecks does (`OK`, `Created`, `not found`); the body (up to
VIGIL_PING_BODY_LIMIT bytes, announced in `Ping-Body-Limit`) is kept with the ping.
`/api/push/<secret>?status=up|down&msg=&ping=` answers as Uptime Kuma does (`{"ok":true}`).
The secret in the URL is the credential (the clients cannot send a header): no sender token.
Left out of /openapi.json (include_in_schema=False): these are other products' wire formats,
documented in docs/checks.md.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import psycopg
from litestar import MediaType, Request, Response, route
from litestar.enums import HttpMethod

from api.core.db import http_error, pool_of
from api.pings import QUERIES
from api.pings.formats.healthchecks import (
    Ping,
    PingError,
    body_text,
    canonical_uuid,
    parse_ping,
    parse_push,
    secret_hash,
)
from api.pings.schedule import ScheduleError, next_cron
from vigil.settings import Settings

log = logging.getLogger("vigil.api.pings")

KUMA_NOT_FOUND = {"ok": False, "msg": "Monitor not found or not active."}
METHODS = [HttpMethod.GET, HttpMethod.HEAD, HttpMethod.POST]

Conn = psycopg.AsyncConnection[tuple[Any, ...]]


def _body_limit(request: Request[Any, Any, Any]) -> int:
    settings: Settings = request.app.state.settings
    return settings.ping_body_limit


def _text(request: Request[Any, Any, Any], status: int, text: str) -> Response[bytes]:
    content = b"" if request.method == HttpMethod.HEAD else text.encode()
    headers = {
        "Ping-Body-Limit": str(_body_limit(request)),  # as Healthchecks: clients cut there
        "Access-Control-Allow-Origin": "*",
    }
    return Response(content, status_code=status, media_type=MediaType.TEXT, headers=headers)


def _next_due(cron: str | None, tz: str, kind: str, name: str) -> datetime | None:
    """The next cron time after now for a success or failure ping of a cron check."""
    if cron is None or kind not in ("success", "fail"):
        return None
    try:
        return next_cron(cron, tz, datetime.now(UTC))
    except ScheduleError as exc:  # set by hand in SQL: the period applies until it is fixed
        log.warning("push check %s: %s; its period applies instead", name, exc)
        return None


async def _record(
    conn: Conn,
    request: Request[Any, Any, Any],
    check: tuple[Any, ...],
    kind: str,
    exit_status: int | None,
    **extra: Any,
) -> bool:
    check_id, name, cron, tz = check[:4]
    params = {
        "check_id": check_id,
        "kind": kind,
        "exit_status": exit_status,
        "next_cron": _next_due(cron, tz, kind, name),
        "method": request.method,
        "remote_addr": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent"),
        **extra,
    }
    cur = await conn.execute(QUERIES["push_ping"], params)
    return await cur.fetchone() is not None


async def _find(conn: Conn, ping: Ping) -> tuple[Any, ...] | None:
    if ping.secret is not None:
        cur = await conn.execute(QUERIES["push_check_find"], (secret_hash(ping.secret),))
    else:
        assert ping.ping_key is not None
        cur = await conn.execute(
            QUERIES["push_check_by_slug"], (secret_hash(ping.ping_key), ping.slug, ping.create)
        )
    return await cur.fetchone()


@route(
    ["/ping/{a:str}", "/ping/{a:str}/{b:str}", "/ping/{a:str}/{b:str}/{c:str}"],
    http_method=METHODS,
    include_in_schema=False,
)
async def healthchecks_ping(request: Request[Any, Any, Any]) -> Response[bytes]:
    segments = [str(request.path_params[k]) for k in ("a", "b", "c") if k in request.path_params]
    try:
        ping = parse_ping(segments, request.query_params)
    except PingError as exc:
        return _text(request, exc.status, exc.text)
    body = body_text(await request.body(), _body_limit(request))
    try:
        async with pool_of(request.app).connection() as conn:
            check = await _find(conn, ping)
            if check is None:
                return _text(request, 404, "not found")
            recorded = await _record(
                conn,
                request,
                check,
                ping.kind,
                ping.exit_status,
                rid=ping.rid,
                body=body,
                source="healthchecks",
                response_ms=None,
            )
    except psycopg.Error as exc:
        raise http_error(exc) from None
    if not recorded:
        return _text(request, 404, "not found")
    if len(check) > 4 and check[4]:
        return _text(request, 201, "Created")
    return _text(request, 200, "OK")


@route("/api/push/{token:str}", http_method=METHODS, include_in_schema=False)
async def uptime_kuma_push(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    token = str(request.path_params["token"])
    push = parse_push(request.query_params)
    try:
        async with pool_of(request.app).connection() as conn:
            cur = await conn.execute(
                QUERIES["push_check_find"], (secret_hash(canonical_uuid(token) or token),)
            )
            check = await cur.fetchone()
            recorded = check is not None and await _record(
                conn,
                request,
                check,
                "success" if push.up else "fail",
                None,
                rid=None,
                body=body_text(push.msg.encode(), _body_limit(request)),
                source="uptime-kuma",
                response_ms=push.ping_ms,
            )
    except psycopg.Error as exc:
        raise http_error(exc) from None
    if not recorded:
        return Response(KUMA_NOT_FOUND, status_code=404, media_type=MediaType.JSON)
    return Response({"ok": True}, status_code=200, media_type=MediaType.JSON)


ROUTES = [healthchecks_ping, uptime_kuma_push]
