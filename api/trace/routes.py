"""GET /v1/trace/{id}: every request record and journal line carrying a request or trace
id, oldest first (sql/57_trace.sql). An unknown id is 200 with no items."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from litestar import MediaType, Request, Response, get
from litestar.exceptions import ClientException
from litestar.openapi.spec import OpenAPIType
from litestar.params import FromPath

from api.core import openapi as oa
from api.core.db import http_error, pool_of
from api.requests.routes import rfc3339
from api.trace import QUERIES
from api.uptime.routes import reader_guard

MAX_ITEMS = 1000
MAX_ID = 200


def check_id(trace_id: str) -> str:
    """The id as looked up, or ValueError with the reason."""
    value = trace_id.strip()
    if not value:
        raise ValueError("give a request id or a trace id")
    if len(value) > MAX_ID:
        raise ValueError(f"an id is at most {MAX_ID} characters")
    if not value.isprintable():
        raise ValueError("an id has no control characters")
    return value


def item_of(row: tuple[Any, ...]) -> dict[str, Any]:
    kind, at, host, service, message, detail = row
    return {
        "kind": kind,
        "time": rfc3339(at),
        "host": host,
        "service": service,
        "message": message,
        **detail,
    }


def groups_of(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """(host, service) groups in the order of their first item, with their items."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        key = (item["host"] or "", item["service"] or "")
        group = groups.setdefault(key, {"host": key[0], "service": key[1], "items": []})
        group["items"].append(item)
    return list(groups.values())


async def lookup(conn: psycopg.AsyncConnection[Any], trace_id: str) -> list[dict[str, Any]]:
    cur = await conn.execute(QUERIES["trace"], {"id": trace_id, "limit": MAX_ITEMS})
    return [item_of(tuple(r)) for r in await cur.fetchall()]


ITEM = oa.obj(
    {
        "kind": oa.string(enum=["request", "journal"]),
        "time": oa.string(description="RFC 3339, UTC, microseconds"),
        "host": oa.nullable(OpenAPIType.STRING, description="the logging host"),
        "service": oa.nullable(
            OpenAPIType.STRING,
            description="the virtual host of a request; the unit (else container) of a line",
        ),
        "message": oa.string(description='"METHOD path?query status", or the MESSAGE'),
    },
    extra=True,
    title="TraceItem",
    description="A request record (also ip, method, path, query, status, bytes, "
    "request_time, request_id, trace_id, ...) or a journal line (also priority, unit, "
    "container, fields).",
)
TRACE = oa.obj({"id": oa.string(), "items": oa.array(ITEM)}, title="Trace")


@get(
    "/v1/trace/{trace_id:str}",
    guards=[reader_guard],
    tags=["requests"],
    security=oa.READER,
    operation_id="getTrace",
    summary="Request records and journal lines carrying a request or trace id, oldest first",
    description=f"At most {MAX_ITEMS} items. Journal lines carry an id in a TRACE_ID, "
    "REQUEST_ID, trace_id or request_id field, a W3C traceparent field, or as a 32-hex "
    "word in the message. An unknown id: 200 with no items.",
    operation_class=oa.documented(
        responses={
            200: oa.reply("The items, oldest first.", TRACE),
            400: oa.text_error(400, "An unusable id.", "400 an id is at most 200 characters\n"),
            **oa.vigil_errors(401, 503),
        },
    ),
)
async def get_trace(request: Request[Any, Any, Any], trace_id: FromPath[str]) -> Response[bytes]:
    try:
        value = check_id(trace_id)
    except ValueError as exc:
        raise ClientException(detail=str(exc)) from None
    try:
        async with pool_of(request.app).connection() as conn:
            items = await lookup(conn, value)
    except psycopg.Error as exc:
        raise http_error(exc) from None
    body = json.dumps({"id": value, "items": items})
    return Response(body.encode(), media_type=MediaType.JSON, status_code=200)


ROUTES = [get_trace]
