"""GET /v1/services and /v1/services/{id}/events: uptime, wire-compatible with
go-service-healthcheck (docs/compatibility.md).

Auth: a sender token (`Authorization: Bearer TOKEN` or the /t/TOKEN/ path prefix) or a
signed-in operator's session cookie. Errors use go-service-healthcheck's JSON envelope.
Events are paginated newest first with `?limit=` (default 100, at most 1000) and
`?before=ID` (keyset: events with a smaller id); `data.events.next_before` is the value
for the next page, or null on the last one.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import psycopg
from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath

from api.auth.senders import SenderAuth
from api.auth.sessions import load_operator
from api.core.db import pool_of
from api.uptime import QUERIES

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


async def reader_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """An operator session, else a sender token (401 from the token check)."""
    if await load_operator(connection) is not None:
        return
    auth: SenderAuth = connection.app.state.sender_auth
    await auth.check(connection)


def envelope(status: int, **data: Any) -> Response[dict[str, Any]]:
    return Response(
        {"status": status, "status_desc": HTTPStatus(status).phrase, "data": data},
        status_code=status,
    )


def error(status: int, message: str) -> Response[dict[str, Any]]:
    return Response(
        {"status": status, "status_desc": HTTPStatus(status).phrase, "errors": [message]},
        status_code=status,
    )


def _event(row: tuple[Any, ...]) -> dict[str, Any] | None:
    if row[0] is None:
        return None
    keys = ("id", "event", "date_started", "date_ended", "created_at", "updated_at")
    return dict(zip(keys, row, strict=True))


def _service(row: tuple[Any, ...]) -> dict[str, Any]:
    sid, name, url, created, updated, ticks, ups, downs, avg_ms, uptime, state = row[:11]
    return {
        "id": sid,
        "name": name,
        "url": url,
        "created_at": created,
        "updated_at": updated,
        "metric": {
            "data": {
                "tick_count": ticks,
                "up_count": ups,
                "down_count": downs,
                "average_response_time_ms": float(avg_ms),
                "uptime_percent": float(uptime),
            }
        },
        "current_status": state,
        "latest_event": {"data": _event(row[11:])},
    }


@get("/v1/services", guards=[reader_guard])
async def list_services(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    try:
        async with pool_of(request.app).connection() as conn:
            rows = await (await conn.execute(QUERIES["v1_services"])).fetchall()
    except psycopg.Error:
        return error(503, "database unavailable, retry later")
    return envelope(200, services={"data": [_service(tuple(r)) for r in rows]})


def _int_param(text: str | None, name: str, low: int, high: int) -> int | None:
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return value


@get("/v1/services/{service_id:str}/events", guards=[reader_guard])
async def service_events(
    request: Request[Any, Any, Any], service_id: FromPath[str]
) -> Response[dict[str, Any]]:
    try:
        sid = _int_param(service_id, "service id", 1, 2**63 - 1)
        limit = _int_param(request.query_params.get("limit"), "limit", 1, MAX_LIMIT)
        before = _int_param(request.query_params.get("before"), "before", 1, 2**63 - 1)
    except ValueError as exc:
        return error(400, str(exc))
    limit = limit or DEFAULT_LIMIT
    try:
        async with pool_of(request.app).connection() as conn:
            found = await (await conn.execute(QUERIES["v1_service_exists"], (sid,))).fetchone()
            if found is None:
                return error(404, "record not found")
            rows = await (
                await conn.execute(QUERIES["v1_service_events"], (sid, before, before, limit + 1))
            ).fetchall()
    except psycopg.Error:
        return error(503, "database unavailable, retry later")
    events = [_event(tuple(r)) for r in rows[:limit]]
    next_before = rows[limit - 1][0] if len(rows) > limit else None
    return envelope(200, events={"data": events, "next_before": next_before})


ROUTES = [list_services, service_events]
