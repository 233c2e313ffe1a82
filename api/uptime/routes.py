"""GET /v1/services and /v1/services/{id}/events: uptime, wire-compatible with
go-service-healthcheck (docs/compatibility.md).

Auth: a sender token (`Authorization: Bearer TOKEN` or the /t/TOKEN/ path prefix) or a
signed-in operator's session cookie. Errors use go-service-healthcheck's JSON envelope.
Events are paginated newest first with `?limit=` (default 100, at most 1000) and
`?before=ID` (keyset: events with a smaller id); `data.events.next_before` is the value
for the next page, or null on the last one.
"""

from __future__ import annotations

from functools import partial
from http import HTTPStatus
from typing import Any

import psycopg
from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import OpenAPIResponse, OpenAPIType, Schema
from litestar.params import FromPath

from api.auth.senders import SenderAuth
from api.auth.sessions import load_operator
from api.core import openapi as oa
from api.core.db import pool_of
from api.uptime import QUERIES

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


# --- OpenAPI (api/core/openapi.py) ---

INT64 = 2**63 - 1
EVENT = oa.obj(
    {
        "id": oa.integer(minimum=1),
        "event": oa.string(enum=["uptime", "downtime"]),
        "date_started": oa.integer(description="Unix seconds"),
        "date_ended": oa.nullable(OpenAPIType.INTEGER, description="Unix seconds; null: ongoing"),
        "created_at": oa.integer(),
        "updated_at": oa.integer(),
    },
    title="ServiceEvent",
)
SERVICE = oa.obj(
    {
        "id": oa.integer(minimum=1),
        "name": oa.string(),
        "url": oa.string(),
        "created_at": oa.integer(description="Unix seconds"),
        "updated_at": oa.integer(description="Unix seconds"),
        "metric": oa.obj(
            {
                "data": oa.obj(
                    {
                        "tick_count": oa.integer(minimum=0),
                        "up_count": oa.integer(minimum=0),
                        "down_count": oa.integer(minimum=0),
                        "average_response_time_ms": oa.number(
                            minimum=0, description="the mean of the checks that got a response"
                        ),
                        "uptime_percent": oa.number(
                            minimum=0, maximum=100, description="up / ticks x 100 (0 before any)"
                        ),
                    }
                )
            }
        ),
        "current_status": oa.string(
            enum=["up", "down", "unknown"], description="`unknown`: not checked yet"
        ),
        "latest_event": oa.obj({"data": Schema(one_of=[EVENT, Schema(type=OpenAPIType.NULL)])}),
    },
    title="Service",
)


def _envelope(status: int, data: Schema, title: str) -> Schema:
    return oa.obj(
        {
            "status": oa.integer(const=status),
            "status_desc": oa.string(const=HTTPStatus(status).phrase),
            "data": data,
        },
        title=title,
    )


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"status": status, "status_desc": HTTPStatus(status).phrase, "errors": [message]}


def _error_reply(
    status: int, when: str, alternative: Schema | None, **messages: str
) -> OpenAPIResponse:
    """An error in go-service-healthcheck's envelope (`error()`), one example per message;
    with `alternative`, also that schema as `text/plain` (one line of Vigil's own)."""
    return oa.reply(
        when,
        oa.obj(
            {
                "status": oa.integer(const=status),
                "status_desc": oa.string(const=HTTPStatus(status).phrase),
                "errors": oa.array(oa.string(), min_items=1),
            },
            title=f"Error{status}",
        ),
        examples={key: _error_body(status, m) for key, m in messages.items()},
        alternatives=None if alternative is None else {oa.TEXT: alternative},
    )


SERVICES = _envelope(200, oa.obj({"services": oa.obj({"data": oa.array(SERVICE)})}), "Services")
EVENTS = _envelope(
    200,
    oa.obj(
        {
            "events": oa.obj(
                {
                    "data": oa.array(EVENT, description="newest first"),
                    "next_before": oa.nullable(
                        OpenAPIType.INTEGER,
                        description="the `before` of the next page; null on the last",
                    ),
                }
            )
        }
    ),
    "ServiceEvents",
)
DATABASE_DOWN = "database unavailable, retry later"
DOWN = _error_reply(
    503,
    "The database is down: the envelope from the route, or the one line of text when it happens "
    "while checking the token.",
    oa.text_error_schema(503),
    down=DATABASE_DOWN,
)


async def reader_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """An operator session, else a sender token (401 from the token check)."""
    if await load_operator(connection) is not None:
        return
    auth: SenderAuth = connection.app.state.sender_auth
    await auth.check(connection)


# Every uptime route answers a signed-in operator or a sender token.
uptime_get = partial(get, guards=[reader_guard], tags=["uptime"], security=oa.READER)


def envelope(status: int, **data: Any) -> Response[dict[str, Any]]:
    return Response(
        {"status": status, "status_desc": HTTPStatus(status).phrase, "data": data},
        status_code=status,
    )


def error(status: int, message: str) -> Response[dict[str, Any]]:
    return Response(_error_body(status, message), status_code=status)


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


@uptime_get(
    "/v1/services",
    operation_id="listServices",
    summary="Every service with its counters and latest event",
    operation_class=oa.documented(
        responses={200: oa.reply("The services.", SERVICES), **oa.vigil_errors(401), 503: DOWN}
    ),
)
async def list_services(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    try:
        async with pool_of(request.app).connection() as conn:
            rows = await (await conn.execute(QUERIES["v1_services"])).fetchall()
    except psycopg.Error:
        return error(503, DATABASE_DOWN)
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


@uptime_get(
    "/v1/services/{service_id:str}/events",
    operation_id="listServiceEvents",
    summary="A service's uptime and downtime events, newest first",
    description="Keyset paging: `before` is an event id; the reply's `next_before` is the "
    "`before` of the next page.",
    operation_class=oa.documented(
        parameters=[
            oa.path("service_id", oa.integer(minimum=1, maximum=INT64), "The service's id."),
            oa.query(
                "limit",
                oa.integer(minimum=1, maximum=MAX_LIMIT, default=DEFAULT_LIMIT),
                "Events per page.",
            ),
            oa.query("before", oa.integer(minimum=1, maximum=INT64), "Events older than this id."),
        ],
        responses={
            200: oa.reply("The events.", EVENTS),
            400: _error_reply(
                400,
                "An id, `limit` or `before` that is not an integer in range.",
                None,
                id="service id must be an integer",
                limit="limit must be between 1 and 1000",
            ),
            404: _error_reply(
                404,
                "No service with this id; or, as one line of text, no route: an id holding a "
                "`/` (sent as `%2F`).",
                oa.NOT_FOUND_TEXT,
                unknown="record not found",
            ),
            **oa.vigil_errors(401),
            503: DOWN,
        },
    ),
)
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
        return error(503, DATABASE_DOWN)
    events = [_event(tuple(r)) for r in rows[:limit]]
    next_before = rows[limit - 1][0] if len(rows) > limit else None
    return envelope(200, events={"data": events, "next_before": next_before})


ROUTES = [list_services, service_events]
