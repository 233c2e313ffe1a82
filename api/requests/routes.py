"""Web access logs over HTTP: POST /v1/requests (text lines or NDJSON) and
GET /v1/requests (the read for scripts, keyset paging). Parsing is vigil/accesslog.py,
storage api/requests/store.py, the rules SQL (sql/55_requests.sql)."""

from __future__ import annotations

import ipaddress
import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import psycopg
from litestar import MediaType, Request, Response, get, post
from litestar.exceptions import ClientException
from litestar.openapi.spec import OpenAPIType, Schema

from api.auth.senders import sender_guard
from api.core import openapi as oa
from api.core.db import http_error, pool_of
from api.requests import QUERIES
from api.requests.store import Origin, Store, dedupe_key
from api.uptime.routes import reader_guard
from vigil.accesslog import FORMATS, LineError, Record, clean, parse_line, record_of

NDJSON_TYPE = "application/x-ndjson"
CHUNK = 5000  # records per COPY
MAX_SAMPLES = 20
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass
class Outcome:
    """The reply body of a POST: counts, and why lines were rejected."""

    accepted: int = 0
    duplicated: int = 0
    rejected: int = 0
    kept_in_journal: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    rejected_lines: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, reason: str, n: int = 1, line: int | None = None) -> None:
        if n <= 0:
            return
        self.rejected += n
        self.reasons[reason] = self.reasons.get(reason, 0) + n
        if line is not None and len(self.rejected_lines) < MAX_SAMPLES:
            self.rejected_lines.append({"line": line, "reason": reason})


@dataclass
class Parsed:
    records: list[tuple[Record, int, str | None]] = field(default_factory=list)
    unparsed: list[tuple[bytes, str, Origin, int]] = field(default_factory=list)


def _origin_of(obj: dict[str, Any], host: str | None) -> Origin:
    h = obj.get("host")
    file_id = obj.get("file_id")
    offset = obj.get("offset")
    return Origin(
        clean(h)[:255] if isinstance(h, str) and h else host,
        clean(file_id)[:255] if isinstance(file_id, str) and file_id else None,
        offset if isinstance(offset, int) and not isinstance(offset, bool) else None,
    )


def parse_body(body: bytes, ndjson: bool, fmt: str, host: str | None, outcome: Outcome) -> Parsed:
    """Every line of a body: a request record, or an unparsed line with its reason."""
    parsed = Parsed()
    now_us = time.time_ns() // 1000
    for number, raw in enumerate(body.split(b"\n"), 1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        origin = Origin(host)
        line, line_fmt = raw, fmt
        line_us = now_us
        try:
            if ndjson:
                try:
                    obj = json.loads(raw)
                except (ValueError, RecursionError):
                    raise LineError("not valid JSON") from None
                if not isinstance(obj, dict):
                    raise LineError("not a JSON object")
                origin = _origin_of(obj, host)
                sent = obj.get("time")
                if isinstance(sent, int) and not isinstance(sent, bool) and 0 < sent < 2**62:
                    line_us = sent  # the sender's time: a resent unparsable line dedupes
                if "line" in obj:
                    if not isinstance(obj["line"], str):
                        raise LineError('"line" must be a string')
                    line = obj["line"].encode("utf-8", "surrogateescape")
                    given = obj.get("format", fmt)
                    line_fmt = given if given in FORMATS else fmt
                    record = parse_line(line, line_fmt)
                    if obj.get("now") is True and line_us != now_us:
                        record = replace(record, us=line_us)  # restamped (vigil send --now)
                else:
                    record = record_of(obj)
            else:
                record = parse_line(raw, fmt)
        except (LineError, UnicodeEncodeError) as exc:
            reason = str(exc) if isinstance(exc, LineError) else "text that is not UTF-8"
            outcome.reject(reason, line=number)
            parsed.unparsed.append((line, reason, origin, line_us))
            continue
        parsed.records.append((record, dedupe_key(line, origin), origin.host))
    return parsed


# --- OpenAPI (api/core/openapi.py) ---

OUTCOME = oa.ingest_outcome(
    "RequestsOutcome",
    accepted="records stored",
    duplicated="records already stored, or repeated",
    rejected="lines not stored as request records",
    more={
        "kept_in_journal": oa.integer(
            minimum=0, description="rejected lines kept as journal lines (VIGIL_REASON)"
        )
    },
    rejected_lines="the first 20 lines that did not parse (1-based)",
    max_lines=MAX_SAMPLES,
)
COMBINED_EXAMPLE = (
    '203.0.113.9 - - [30/Nov/2026:08:00:01 +0000] "GET /index.html?a=1 HTTP/1.1" 200 512 '
    '"-" "curl/8.5"\n'
)
NGINX_JSON = oa.obj(
    {
        "remote_addr": oa.string(),
        "time_iso8601": oa.string(),
        "request": oa.string(),
        "status": Schema(one_of=[oa.string(), oa.integer()]),
    },
    required=["remote_addr", "status"],
    extra=True,
    title="NginxJsonRecord",
    description="An nginx JSON access log record (nginx's variable names), or "
    '`{"line": "...", "format": "...", "host": "...", "file_id": "...", "offset": N, '
    '"time": US}`: one raw log line with where it came from (identical lines at different '
    "offsets are distinct) and when it was read (microseconds since 1970: the journal time of "
    "a line that does not parse, so that sending it again stores it once)",
)
ITEM = oa.obj(
    {
        "time": oa.string(description="RFC 3339, UTC, microseconds"),
        "host": oa.nullable(OpenAPIType.STRING, description="the logging host"),
        "vhost": oa.nullable(OpenAPIType.STRING),
        "ip": oa.string(),
        "method": oa.nullable(OpenAPIType.STRING),
        "path": oa.nullable(OpenAPIType.STRING),
        "query": oa.nullable(OpenAPIType.STRING),
        "protocol": oa.nullable(OpenAPIType.STRING),
        "status": oa.integer(),
        "bytes": oa.nullable(OpenAPIType.INTEGER),
        "referrer": oa.nullable(OpenAPIType.STRING),
        "user_agent": oa.nullable(OpenAPIType.STRING),
        "user": oa.nullable(OpenAPIType.STRING),
        "request": oa.nullable(OpenAPIType.STRING),
        "request_time": oa.nullable(OpenAPIType.NUMBER),
        "upstream_time": oa.nullable(OpenAPIType.NUMBER),
        "request_id": oa.nullable(OpenAPIType.STRING),
        "trace_id": oa.nullable(OpenAPIType.STRING),
    },
    title="RequestRecord",
)
PAGE = oa.obj(
    {
        "items": oa.array(ITEM),
        "next": oa.nullable(
            OpenAPIType.STRING, description="pass back as `cursor` for the next page; null: end"
        ),
    },
    title="RequestsPage",
)


@post(
    "/v1/requests",
    guards=[sender_guard],
    status_code=200,
    tags=["requests"],
    security=oa.SENDER,
    operation_id="postRequests",
    summary="Web access log lines (common, combined, nginx JSON)",
    description="Text lines (`text/plain`: the format by `?format=`, `auto` by default) or "
    f"NDJSON (`{NDJSON_TYPE}`: nginx JSON records, or raw lines as "
    '`{"line": ...}`). Lines that are not request records are kept as journal lines with '
    "`VIGIL_REASON` and counted in `reasons`.",
    operation_class=oa.documented(
        parameters=[
            oa.query("format", oa.string(enum=list(FORMATS), default="auto"), "The line format."),
            oa.query("host", oa.string(max_length=255), "The logging host of every line."),
        ],
        request_body=oa.body(
            {oa.TEXT: oa.string(), NDJSON_TYPE: oa.array(NGINX_JSON)},
            description="access log lines",
            examples={oa.TEXT: COMBINED_EXAMPLE},
        ),
        responses={
            200: oa.reply(
                "Every readable body: what was stored, duplicated and rejected.",
                OUTCOME,
                examples={
                    "one rejected": {
                        "accepted": 1,
                        "duplicated": 0,
                        "rejected": 1,
                        "kept_in_journal": 1,
                        "reasons": {"not a common or combined log line": 1},
                        "rejected_lines": [
                            {"line": 2, "reason": "not a common or combined log line"}
                        ],
                    }
                },
            ),
            400: oa.text_error(400, "An unknown `format`.", "400 unknown format 'x'\n"),
            **oa.vigil_errors(401, 413, 503),
        },
    ),
)
async def post_requests(request: Request[Any, Any, Any]) -> Response[bytes]:
    fmt = request.query_params.get("format") or "auto"
    if fmt not in FORMATS:
        raise ClientException(detail=f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    host = clean(request.query_params.get("host") or "")[:255] or None
    ctype = request.headers.get("content-type", "")
    ndjson = ctype.startswith((NDJSON_TYPE, "application/json"))
    outcome = Outcome()
    parsed = parse_body(await request.body(), ndjson, fmt, host, outcome)
    try:
        async with pool_of(request.app).connection() as conn:
            store = Store(conn)
            _, _, retention = await store.bounds()
            for start in range(0, len(parsed.records), CHUNK):
                accepted, duplicated, expired, future = await store.insert(
                    parsed.records[start : start + CHUNK]
                )
                outcome.accepted += accepted
                outcome.duplicated += duplicated
                outcome.reject(f"older than the retention ({retention})", expired)
                outcome.reject("more than 1 day in the future; check the sender's clock", future)
            outcome.kept_in_journal = await store.keep_unparsed(parsed.unparsed)
    except psycopg.Error as exc:
        raise http_error(exc) from None
    body = json.dumps(outcome.__dict__).encode()
    return Response(body, media_type=MediaType.JSON, status_code=200)


# --- The read for scripts ---


class QueryError(ValueError):
    """A query parameter the read cannot use; the message says why."""


@dataclass
class Query:
    start: datetime | None = None
    end: datetime | None = None
    host: str | None = None
    status_min: int | None = None
    status_max: int | None = None
    method: str | None = None
    path: str | None = None
    ip: str | None = None
    route: str | None = None
    agent: str | None = None
    limit: int = DEFAULT_LIMIT
    after_at: datetime | None = None
    after_key: int | None = None

    def params(self) -> dict[str, Any]:
        return {
            "from": self.start,
            "to": self.end,
            "host": self.host,
            "status_min": self.status_min,
            "status_max": self.status_max,
            "method": self.method,
            "path": self.path,
            "ip": self.ip,
            "route": self.route,
            "agent": self.agent,
            "after_at": self.after_at,
            "after_key": self.after_key,
            "limit": self.limit,
        }


def parse_time(text: str, name: str) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise QueryError(f"{name} must be an RFC 3339 time like 2026-11-30T08:00:00Z") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def parse_status(text: str) -> tuple[int | None, int | None]:
    """`5xx` (a class), `404` (one status), or empty."""
    t = text.strip().lower()
    if not t:
        return None, None
    if len(t) == 3 and t[0] in "12345" and t[1:] == "xx":
        return int(t[0]) * 100, int(t[0]) * 100 + 99
    if len(t) == 3 and t.isascii() and t.isdigit() and 100 <= int(t) <= 999:
        return int(t), int(t)
    raise QueryError("status must be a status like 404 or a class like 5xx")


def parse_ip(text: str) -> str | None:
    t = text.strip()
    if not t:
        return None
    try:
        return str(ipaddress.ip_network(t, strict=False))
    except ValueError:
        raise QueryError("ip must be an address (10.0.0.1) or a network (10.0.0.0/8)") from None


def parse_cursor(text: str) -> tuple[datetime | None, int | None]:
    if not text:
        return None, None
    at, _, key = text.rpartition(",")
    try:
        number = int(key)
        if not -(2**63) <= number < 2**63:  # a bigint key
            raise ValueError(key)
        return datetime.fromisoformat(at), number
    except ValueError:
        raise QueryError("bad cursor; start again without it") from None


def cursor_of(at: datetime, key: int) -> str:
    return f"{at.isoformat()},{key}"


def parse_query(params: dict[str, str], limit_name: str = "limit") -> Query:
    def text(name: str) -> str:
        return params.get(name, "").strip()

    q = Query()
    q.start = parse_time(text("start"), "start")
    q.end = parse_time(text("end"), "end")
    q.host = text("host")[:255] or None
    q.status_min, q.status_max = parse_status(text("status"))
    q.method = text("method").upper()[:32] or None
    q.path = text("path")[:2048] or None
    q.ip = parse_ip(text("ip"))
    q.route = text("route")[:2048] or None
    q.agent = params.get("agent", "")[:8192] or None  # exact: not stripped
    if text(limit_name):
        limit = text(limit_name)
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= MAX_LIMIT:
            raise QueryError(f"{limit_name} must be 1 to {MAX_LIMIT}")
        q.limit = int(text(limit_name))
    q.after_at, q.after_key = parse_cursor(text("cursor"))
    return q


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def item_of(row: tuple[Any, ...]) -> dict[str, Any]:
    (at, _key, host, vhost, ip, method, path, query, protocol, status, size, referrer, agent,
     user, req, rt, ut, rid, tid) = row  # fmt: skip
    return {
        "time": rfc3339(at),
        "host": host,
        "vhost": vhost,
        "ip": str(ip),
        "method": method,
        "path": path,
        "query": query,
        "protocol": protocol,
        "status": status,
        "bytes": size,
        "referrer": referrer,
        "user_agent": agent,
        "user": user,
        "request": req,
        "request_time": rt,
        "upstream_time": ut,
        "request_id": rid,
        "trace_id": tid,
    }


async def search(conn: psycopg.AsyncConnection[Any], q: Query) -> tuple[list[Any], str | None]:
    """One page of rows and the cursor of the next (None at the end)."""
    params = q.params()
    params["limit"] = q.limit + 1  # one more: is there a next page?
    if params["limit"] > MAX_LIMIT:
        params["limit"] = MAX_LIMIT
    if q.route or q.agent:
        query = QUERIES["requests_search_route"]
    else:  # the plain search: no per-row route normalisation
        query = QUERIES["requests_search"]
        del params["route"], params["agent"]
    rows = await (await conn.execute(query, params)).fetchall()
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    if q.limit == MAX_LIMIT and len(rows) == MAX_LIMIT:
        more = True  # cannot look ahead past the limit: the next page may be empty
    return rows, (cursor_of(rows[-1][0], rows[-1][1]) if more and rows else None)


@get(
    "/v1/requests",
    guards=[reader_guard],
    tags=["requests"],
    security=oa.READER,
    operation_id="listRequests",
    summary="Request records, newest first (keyset paging)",
    operation_class=oa.documented(
        parameters=[
            oa.query("start", oa.string(), "From this time (RFC 3339, inclusive)."),
            oa.query("end", oa.string(), "Before this time (RFC 3339, exclusive)."),
            oa.query("host", oa.string(), "The logging host or the virtual host."),
            oa.query("status", oa.string(pattern="^([1-5]xx|[1-9][0-9]{2})$"), "404 or 5xx."),
            oa.query("method", oa.string(), "GET, POST, ..."),
            oa.query("ip", oa.string(), "A client address or a network (CIDR)."),
            oa.query("path", oa.string(), "A path prefix."),
            oa.query(
                "route",
                oa.string(),
                "A route: the path after the rules of vigil.route_rules, e.g. `/orders/:id`.",
            ),
            oa.query("agent", oa.string(), "A user agent (the exact text)."),
            oa.query(
                "limit",
                oa.integer(minimum=1, maximum=MAX_LIMIT, default=DEFAULT_LIMIT),
                "Records per page.",
            ),
            oa.query("cursor", oa.string(), "The `next` of the previous page."),
        ],
        responses={
            200: oa.reply("One page.", PAGE),
            400: oa.text_error(
                400,
                "A parameter that is not usable.",
                "400 status must be a status like 404 or a class like 5xx\n",
            ),
            **oa.vigil_errors(401, 503),
        },
    ),
)
async def list_requests(request: Request[Any, Any, Any]) -> Response[bytes]:
    try:
        q = parse_query({k: str(v) for k, v in request.query_params.items()})
    except QueryError as exc:
        raise ClientException(detail=str(exc)) from None
    try:
        async with pool_of(request.app).connection() as conn:
            rows, next_cursor = await search(conn, q)
    except psycopg.Error as exc:
        raise http_error(exc) from None
    body = json.dumps({"items": [item_of(tuple(r)) for r in rows], "next": next_cursor})
    return Response(body.encode(), media_type=MediaType.JSON, status_code=200)


ROUTES = [post_requests, list_requests]
