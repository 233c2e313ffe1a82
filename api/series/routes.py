"""Numeric series, wire-compatible with metrics-server (docs/compatibility.md),
plus batches and InfluxDB line protocol.

- POST /v1/metrics                 one point -> 201 {"status":"success"}
- GET  /v1/metrics/                distinct names, ascending
- GET  /v1/metrics/{name}/{granularity}/{startDate}/{endDate}   averages, newest first
- POST /v1/metrics/batch           JSON array or NDJSON of points, written with COPY
- GET  /ping                       {"status":"up"} (InfluxDB's 204 to a client not accepting JSON)
- HEAD /ping, GET /ready           InfluxDB clients' liveness and readiness calls
- POST /write?db=X&precision=s     InfluxDB 1.x line protocol (db accepted and ignored)
- POST /api/v2/write?org=O&bucket=B&precision=s   InfluxDB 2.x (org/bucket ignored)
- POST /query                      1.x: answers CREATE DATABASE etc. with no results

Line protocol success: 204; some lines rejected: 400 with Influx's "partial write" body.

All /v1/metrics routes take a sender token (api/auth/senders.py), reads included: the series may
say more about a server than its owner wants to publish.
"""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime, timedelta
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import psycopg
from litestar import MediaType, Request, Response, get, head, post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIHeader, OpenAPIResponse, OpenAPIType, Schema
from litestar.params import FromPath

from api.auth.senders import influx_guard, sender_guard
from api.core import openapi as oa
from api.core.db import http_error, pool_of, status_of
from api.core.decoding import MALFORMED
from api.core.health import HEALTH_SQL
from api.series import QUERIES
from api.series.formats.influx import parse_body
from api.series.formats.json import PointParser, _point, parse_json_batch
from api.series.formats.points import (
    Batch,
    PointError,
)
from api.series.store import fetch_averages, write_batch

NDJSON_TYPE = "application/x-ndjson"
NUL = "\x00"
INVALID_PAYLOAD = "Invalid Payload. Please verify the request payload and try again."
INVALID_GRANULARITY = "Invalid granularity. Use minute, hour or day."
GRANULARITY_STEP = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}


# --- OpenAPI (api/core/openapi.py) ---

POINT = oa.obj(
    {
        "name": oa.string(min_length=1, max_length=255, description="the series name"),
        "value": oa.number(description="finite"),
        "timestamp": Schema(
            type=[OpenAPIType.STRING, OpenAPIType.NUMBER, OpenAPIType.NULL],
            description="RFC 3339 with an offset or `Z` (fraction up to nanoseconds, truncated to "
            'microseconds), or Unix seconds; missing, `null` or `""` mean now; not before '
            "1970, at most 10 minutes in the future",
            examples=["2024-02-02T11:43:02.099Z", 1706874182.099],
        ),
        "labels": Schema(
            type=[OpenAPIType.OBJECT, OpenAPIType.NULL],
            additional_properties=oa.string(max_length=255),
            property_names=oa.string(min_length=1, max_length=255),
            max_properties=32,
            description="at most 32; keys and values up to 255 characters. The series is "
            "(name, labels)",
        ),
    },
    required=["name", "value"],
    extra=True,
    title="Point",
    description="One point of a numeric series. Other members are ignored.",
)
MESSAGE = oa.obj({"message": oa.string()}, title="Message")


def _message_error(when: str, **messages: str) -> OpenAPIResponse:
    """A 400 in metrics-server's JSON: `{"message": ...}`, one example per message."""
    return oa.reply(when, MESSAGE, examples={key: {"message": m} for key, m in messages.items()})


SUMMARY = oa.batch_summary(
    "BatchSummary",
    accepted="points stored",
    rejected=None,
    index="the point's position in the array, or the NDJSON line's index (from 0; the message "
    "gives the line number)",
    errors="the first 20 rejected points",
)
NDJSON_POINTS = oa.array(
    POINT,
    title="PointLines",
    description="NDJSON: one Point per line (each element here is one line); blank lines are "
    "ignored",
)
AVERAGES = oa.obj(
    {
        "metricName": oa.string(),
        "granularity": oa.string(enum=list(GRANULARITY_STEP)),
        "startTime": oa.string(format="date-time", description="startDate, 00:00 UTC"),
        "endTime": oa.string(format="date-time", description="endDate, 00:00 UTC"),
        "data": oa.array(
            oa.obj(
                {
                    "timeFrame": oa.string(format="date-time", description="the bucket's start"),
                    "avg": oa.number(),
                }
            ),
            description="newest first",
        ),
    },
    title="Averages",
)
DAY = oa.string(
    pattern="^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
    description="`YYYY-MM-DD`, read as UTC midnight",
    examples=["2024-02-01"],
)
LINE_PROTOCOL = oa.string(
    title="LineProtocol",
    description="`measurement[,tag=value...] field=value[,...] [timestamp]` lines; blank lines "
    "and `#` comments are skipped; a line without a timestamp is now. Every numeric field is "
    "stored as the series `<measurement>_<field>` with the tags as labels",
)
PRECISION = oa.query(
    "precision",
    oa.string(enum=["", "ns", "n", "us", "u", "ms", "s", "m", "h"]),
    "The unit of the timestamps: `ns` (the default; also `n`), `us` (`u`), `ms`, `s`, `m`, `h`.",
)
GZIP = oa.header(
    "Content-Encoding",
    oa.string(enum=["gzip", "identity"]),
    "`gzip`: the body is inflated (up to 16 times `VIGIL_MAX_BODY_BYTES`).",
)
INFLUX_WHOLE_BODY = (
    "A line was rejected (the others are stored), or the body as a whole: an unknown precision, "
    "a body that is not UTF-8, an invalid gzip body, one that inflates too far."
)
LINE_EXAMPLE = "room,floor=1 temp=21.5 1763805600\n"


def _influx_body() -> Any:
    return oa.body(
        {oa.TEXT: LINE_PROTOCOL},
        description="InfluxDB line protocol, optionally gzip-compressed",
        required=False,
        examples={oa.TEXT: LINE_EXAMPLE},
    )


# The metrics-server routes take a sender token; the InfluxDB routes take it also as Influx
# clients send it.
series_get = partial(get, guards=[sender_guard], tags=["series"], security=oa.SENDER)
series_post = partial(post, guards=[sender_guard], tags=["series"], security=oa.SENDER)
influx_post = partial(post, guards=[influx_guard], tags=["influx"], security=oa.INFLUX)


async def store(request: Request[Any, Any, Any], batch: Batch) -> str | None:
    """Stores the batch; None, or why PostgreSQL refused the client's data (e.g. a NUL in a
    name or label), for the route to answer in its client's error format. Nothing is stored
    then. Other database errors propagate (503)."""
    try:
        async with pool_of(request.app).connection() as conn:
            await write_batch(conn, batch)
    except psycopg.Error as exc:
        if status_of(exc) >= 500:
            raise
        detail = exc.diag.message_detail  # e.g. "\u0000 cannot be converted to text."
        return str(http_error(exc).detail) + (f" ({detail})" if detail else "")
    return None


def _invalid(message: str = INVALID_PAYLOAD) -> Response[dict[str, str]]:
    return Response({"message": message}, status_code=400)


@series_post(
    "/v1/metrics",
    status_code=201,
    operation_id="postPoint",
    summary="One point (metrics-server)",
    operation_class=oa.documented(
        request_body=oa.body(
            {oa.JSON: POINT},
            description="One point",
            examples={
                oa.JSON: {
                    "timestamp": "2024-02-02T11:43:02.099Z",
                    "name": "temperature",
                    "value": 30,
                }
            },
        ),
        responses={
            201: oa.reply(
                "Stored.", oa.obj({"status": oa.string(const="success")}, title="Success")
            ),
            400: _message_error("The point is invalid.", invalid=INVALID_PAYLOAD),
            **oa.vigil_errors(401, 413, 503),
        },
    ),
)
async def post_metric(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    parser = PointParser()
    try:
        parser.add(_point.decode(await request.body()))
    except (*MALFORMED, PointError):
        return _invalid()
    if await store(request, parser.batch) is not None:
        return _invalid()
    return Response({"status": "success"}, status_code=201)


@series_post(
    "/v1/metrics/batch",
    status_code=200,
    operation_id="postPoints",
    summary="Many points: a JSON array or NDJSON",
    description="A body that starts with `[` is a JSON array, any other NDJSON; the content "
    "type is not checked. Points are written with one binary COPY. An empty body is `200` with "
    "nothing accepted.",
    operation_class=oa.documented(
        request_body=oa.body(
            {oa.JSON: oa.array(POINT), NDJSON_TYPE: NDJSON_POINTS},
            description="Points, each the object of `POST /v1/metrics`",
            required=False,
            examples={
                oa.JSON: [
                    {"name": "load", "value": 0.7, "labels": {"host": "web-1"}},
                    {"name": "load", "value": 1.2, "timestamp": 1763805600},
                ],
                NDJSON_TYPE: [{"name": "load", "value": 0.7}, {"name": "load", "value": 1}],
            },
        ),
        responses={
            200: oa.reply(
                "The counts and the first 20 errors; the valid points are stored.",
                SUMMARY,
                examples={
                    "one rejected": {
                        "accepted": 1,
                        "rejected": 1,
                        "errors": [
                            {"index": 1, "message": "Expected `float`, got `str` - at `$.value`"}
                        ],
                    }
                },
            ),
            400: oa.reply(
                "Every point was rejected (the same summary, nothing accepted), or the array is "
                "not JSON.",
                Schema(one_of=[SUMMARY, MESSAGE]),
                examples={
                    "malformed": {"message": "malformed JSON array: Input data was truncated"}
                },
            ),
            **oa.vigil_errors(401, 413, 503),
        },
    ),
)
async def post_batch(request: Request[Any, Any, Any]) -> Response[dict[str, object]]:
    try:
        batch = parse_json_batch(await request.body())
    except PointError as exc:
        return Response({"message": str(exc)}, status_code=400)
    refused = await store(request, batch)
    if refused is not None:
        return Response({"message": f"nothing stored: {refused}"}, status_code=400)
    status = 400 if batch.rejected and not batch.accepted else 200
    return Response(batch.summary(), status_code=status)


@series_get(
    "/v1/metrics",
    operation_id="listSeriesNames",
    summary="The distinct series names, ascending (also at /v1/metrics/)",
    operation_class=oa.documented(
        responses={
            200: oa.reply(
                "The names.",
                oa.array(oa.string()),
                examples={"names": ["humidity", "temperature"]},
            ),
            **oa.vigil_errors(401, 503),
        },
    ),
)
async def list_names(request: Request[Any, Any, Any]) -> list[str]:
    async with pool_of(request.app).connection() as conn:
        cur = await conn.execute(QUERIES["series_names"])
        return [str(row[0]) for row in await cur.fetchall()]


def _day(text: str) -> datetime | None:
    try:
        if len(text) != 10:
            return None
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    except ValueError:
        return None


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@series_get(
    "/v1/metrics/{name:str}/{granularity:str}/{start_date:str}/{end_date:str}",
    operation_id="getAverages",
    summary="Averages per bucket, newest first",
    description="Every bucket that starts from `start_date` 00:00 up to and including "
    "`end_date` 00:00 (UTC). All label sets of the name are averaged together.",
    operation_class=oa.documented(
        parameters=[
            oa.path("name", oa.string(min_length=1), "The series name."),
            oa.path("granularity", oa.string(enum=list(GRANULARITY_STEP)), "The bucket size."),
            oa.path("start_date", DAY, "The first bucket's day (`startDate`)."),
            oa.path("end_date", DAY, "The last day (`endDate`)."),
        ],
        responses={
            200: oa.reply(
                "The averages.",
                AVERAGES,
                examples={
                    "one bucket": {
                        "metricName": "temperature",
                        "granularity": "hour",
                        "startTime": "2024-02-01T00:00:00Z",
                        "endTime": "2024-02-03T00:00:00Z",
                        "data": [{"timeFrame": "2024-02-02T11:00:00Z", "avg": 30.0}],
                    }
                },
            ),
            400: _message_error(
                "Another granularity, or a date that is not `YYYY-MM-DD`.",
                granularity=INVALID_GRANULARITY,
                startDate="Invalid startDate format",
                endDate="Invalid endDate format",
            ),
            404: oa.reply(
                "No route: a name holding a `/` (sent as `%2F`) cannot be read here.",
                oa.NOT_FOUND_TEXT,
                media_type=oa.TEXT,
                examples={"not found": "404 Not Found\n"},
            ),
            **oa.vigil_errors(401, 503),
        },
    ),
)
async def averages(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    granularity: FromPath[str],
    start_date: FromPath[str],
    end_date: FromPath[str],
) -> Response[dict[str, Any]]:
    if granularity not in GRANULARITY_STEP:
        return _invalid(INVALID_GRANULARITY)
    start = _day(start_date)
    if start is None:
        return _invalid("Invalid startDate format")
    end = _day(end_date)
    if end is None:
        return _invalid("Invalid endDate format")
    # Inclusive range of bucket starts: [startDate 00:00Z, endDate 00:00Z].
    try:
        upper = end + GRANULARITY_STEP[granularity]
    except OverflowError:  # endDate 9999-12-31: the end of time
        upper = datetime.max.replace(tzinfo=UTC)
    if NUL in name:  # no series can have this name (PostgreSQL text holds no NUL)
        rows = []
    else:
        rows = await fetch_averages(pool_of(request.app), name, None, granularity, start, upper)
    data = [{"timeFrame": rfc3339(row[0]), "avg": row[1]} for row in rows]
    return Response(
        {
            "metricName": name,
            "granularity": granularity,
            "startTime": rfc3339(start),
            "endTime": rfc3339(end),
            "data": data,
        }
    )


# --- Liveness and readiness, also as InfluxDB clients call them (docs/compatibility.md) ---

try:
    VIGIL_VERSION = version("vigil")
except PackageNotFoundError:  # run from a checkout that was not pip-installed
    VIGIL_VERSION = "0.0.0"
INFLUX_HEADERS = {"X-Influxdb-Version": f"vigil-{VIGIL_VERSION}", "X-Influxdb-Build": "OSS"}
"""On every /ping reply: Influx clients read the server's version (`version()`) and build
(`build()`, where `Cloud` would change their behaviour) from these headers."""
STARTED = datetime.now(UTC)
INFLUX_REPLY_HEADERS = {
    name: OpenAPIHeader(schema=oa.string(examples=[value]), description="as InfluxDB sends it")
    for name, value in INFLUX_HEADERS.items()
}


def _influx_reply(description: str, schema: Schema | None = None) -> OpenAPIResponse:
    reply = oa.reply(description, schema)
    reply.headers = dict(INFLUX_REPLY_HEADERS)
    return reply


@get(
    "/ping",
    media_type=MediaType.JSON,
    operation_id="ping",
    summary="Liveness (no token): metrics-server's reply, or InfluxDB's 204",
    description='`GET /ping` answers `200 {"status":"up"}` as metrics-server did; a client '
    "that does not accept JSON (the InfluxDB 1.x Python client sends only "
    "`Accept: application/x-msgpack`) gets InfluxDB's `204` instead. Both carry InfluxDB's "
    "version headers.",
    tags=["status"],
    operation_class=oa.documented(
        responses={
            200: _influx_reply("Up.", oa.obj({"status": oa.string(const="up")}, title="Up")),
            204: _influx_reply("Up (a client that does not accept JSON)."),
        }
    ),
)
async def ping(request: Request[Any, Any, Any]) -> Response[Any]:
    accept = request.headers.get("accept", "").strip()
    if accept and request.accept.best_match([MediaType.JSON]) is None:
        return Response(None, status_code=204, headers=INFLUX_HEADERS)
    return Response({"status": "up"}, headers=INFLUX_HEADERS)


@head(
    "/ping",
    operation_id="pingHead",
    summary="Liveness (no token), as InfluxDB answers `HEAD /ping`",
    tags=["status"],
    status_code=204,
    operation_class=oa.documented(responses={204: _influx_reply("Up.")}),
)
async def ping_head() -> Response[None]:
    return Response(None, status_code=204, headers=INFLUX_HEADERS)


READY_TIMEOUT = 2.0
"""Seconds /ready waits for a database connection (probes time out quickly; /health waits 5)."""
READY = oa.obj(
    {
        "status": oa.string(enum=["ready", "unready"]),
        "started": oa.string(format="date-time", description="when this API process started"),
        "up": oa.string(description="for how long, as a Go duration (e.g. `754.021s`)"),
        "message": oa.string(description="unready: why"),
    },
    required=["status", "started", "up"],
    title="Ready",
    description="InfluxDB 2.x's readiness reply.",
)


@get(
    "/ready",
    media_type=MediaType.JSON,
    operation_id="ready",
    summary="Readiness (no token), in InfluxDB's shape",
    description="Ready when the database answers within 2 s (as `GET /health` does within 5).",
    tags=["status"],
    operation_class=oa.documented(
        responses={
            200: oa.reply(
                "Ready.",
                READY,
                examples={
                    "ready": {
                        "status": "ready",
                        "started": "2026-11-22T10:00:00.123456Z",
                        "up": "754.021s",
                    }
                },
            ),
            503: oa.reply(
                "The database does not answer (within 2 s: readiness probes wait briefly).",
                READY,
                examples={
                    "unready": {
                        "status": "unready",
                        "started": "2026-11-22T10:00:00.123456Z",
                        "up": "754.021s",
                        "message": "database unavailable, retry later",
                    }
                },
            ),
        }
    ),
)
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    body = {
        "status": "ready",
        "started": rfc3339(STARTED),
        "up": f"{(datetime.now(UTC) - STARTED).total_seconds():.3f}s",
    }
    try:
        async with pool_of(request.app).connection(timeout=READY_TIMEOUT) as conn:
            await conn.execute(HEALTH_SQL)
    except (psycopg.Error, TimeoutError):
        body.update(status="unready", message="database unavailable, retry later")
        return Response(body, status_code=503)
    return Response(body)


MAX_INFLATE_FACTOR = 16


async def read_body(request: Request[Any, Any, Any]) -> bytes:
    body = await request.body()
    if request.headers.get("content-encoding", "").lower() == "gzip":
        settings = request.app.state.settings
        limit = settings.max_body_bytes * MAX_INFLATE_FACTOR
        inflater = zlib.decompressobj(wbits=31)
        try:
            body = inflater.decompress(body, limit)
        except zlib.error as exc:
            raise PointError(f"invalid gzip body: {exc}") from None
        if inflater.unconsumed_tail:
            raise PointError(f"body inflates to more than {limit} bytes")
        if not inflater.eof or inflater.unused_data:
            raise PointError("invalid gzip body: truncated, or data after its end")
    return body


async def _write(request: Request[Any, Any, Any], v2: bool) -> Response[Any]:
    try:
        batch = parse_body(await read_body(request), request.query_params.get("precision", ""))
    except PointError as exc:
        return _error(v2, str(exc))
    refused = await store(request, batch)
    if refused is not None:
        return _error(v2, f"nothing stored: {refused}")
    if not batch.rejected:
        return Response(None, status_code=204)
    first = batch.errors[0][1] if batch.errors else "invalid line"
    return _error(v2, f"partial write: {first} dropped={batch.rejected}")


def _error_body(v2: bool, message: str) -> dict[str, str]:
    """An Influx error: 2.x `{"code": "invalid", "message": ...}`, 1.x `{"error": ...}`."""
    return {"code": "invalid", "message": message} if v2 else {"error": message}


def _error(v2: bool, message: str) -> Response[Any]:
    return Response(_error_body(v2, message), status_code=400)


INFLUX_ERROR = {
    False: oa.obj({"error": oa.string()}, title="InfluxV1Error"),
    True: oa.obj(
        {"code": oa.string(const="invalid"), "message": oa.string()}, title="InfluxV2Error"
    ),
}

INFLUX_QUERY = {
    False: [
        oa.query("db", oa.string(), "Accepted and ignored."),
        oa.query("rp", oa.string(), "Accepted and ignored."),
        oa.query("u", oa.string(), "The user name: ignored (the token is `p`)."),
    ],
    True: [
        oa.query("org", oa.string(), "Accepted and ignored."),
        oa.query("bucket", oa.string(), "Accepted and ignored."),
    ],
}
"""The query parameters of a write besides precision: InfluxDB 1.x (False) and 2.x (True)."""


def _influx_write(path: str, *, v2: bool, operation_id: str, summary: str) -> HTTPRouteHandler:
    """POST `path`: InfluxDB line protocol, answered as InfluxDB 2.x (`v2`) or 1.x would."""

    async def write(request: Request[Any, Any, Any]) -> Response[Any]:
        return await _write(request, v2)

    partial = _error_body(v2, "partial write: line 2: field without a value dropped=2")
    return influx_post(
        path,
        status_code=200,  # the reply says: 204 or 400
        operation_id=operation_id,
        summary=summary,
        operation_class=oa.documented(
            request_body=_influx_body(),
            parameters=[*INFLUX_QUERY[v2], PRECISION, GZIP],
            responses={
                204: oa.reply("Every line was stored."),
                400: oa.reply(INFLUX_WHOLE_BODY, INFLUX_ERROR[v2], examples={"partial": partial}),
                **oa.vigil_errors(401, 413, 503),
            },
        ),
    )(write)


write_v1 = _influx_write(
    "/write",
    v2=False,
    operation_id="influxWriteV1",
    summary="InfluxDB 1.x write (Telegraf outputs.influxdb)",
)
write_v2 = _influx_write(
    "/api/v2/write",
    v2=True,
    operation_id="influxWriteV2",
    summary="InfluxDB 2.x write (Telegraf outputs.influxdb_v2, client libraries)",
)


@influx_post(
    "/query",
    status_code=200,
    operation_id="influxQueryV1",
    summary="InfluxDB 1.x query: answered, does nothing",
    description="Telegraf sends `CREATE DATABASE` here first. Every query gets the same empty "
    "result; nothing is read or changed.",
    operation_class=oa.documented(
        parameters=[
            oa.query("q", oa.string(), 'The query (e.g. `CREATE DATABASE "telegraf"`): ignored.'),
            oa.query("db", oa.string(), "Ignored."),
            oa.query("u", oa.string(), "The user name: ignored (the token is `p`)."),
        ],
        responses={
            200: oa.reply(
                "No results.",
                oa.obj(
                    {"results": oa.array(oa.obj({"statement_id": oa.integer(const=0)}))},
                    title="InfluxQueryResult",
                ),
            ),
            **oa.vigil_errors(401, 503),
        },
    ),
)
async def query_v1() -> dict[str, Any]:
    """InfluxDB 1.x clients (Telegraf) send CREATE DATABASE here first; nothing to do."""
    return {"results": [{"statement_id": 0}]}


ROUTES = [
    post_metric,
    post_batch,
    list_names,
    averages,
    ping,
    ping_head,
    ready,
    write_v1,
    write_v2,
    query_v1,
]
