"""Numeric series, wire-compatible with metrics-server (docs/compatibility.md),
plus batches and InfluxDB line protocol.

- POST /v1/metrics                 one point -> 201 {"status":"success"}
- GET  /v1/metrics/                distinct names, ascending
- GET  /v1/metrics/{name}/{granularity}/{startDate}/{endDate}   averages, newest first
- POST /v1/metrics/batch           JSON array or NDJSON of points, written with COPY
- GET  /ping                       {"status":"up"}
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
from typing import Any

from litestar import MediaType, Request, Response, get, post
from litestar.params import FromPath

from api.auth.senders import influx_guard, sender_guard
from api.core.db import pool_of
from api.core.decoding import MALFORMED
from api.series import QUERIES
from api.series.formats.influx import parse_body
from api.series.formats.json import PointParser, _point, parse_json_batch
from api.series.formats.points import (
    Batch,
    PointError,
)
from api.series.store import fetch_averages, write_batch

INVALID_PAYLOAD = "Invalid Payload. Please verify the request payload and try again."
GRANULARITY_STEP = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}


async def store(request: Request[Any, Any, Any], batch: Batch) -> None:
    async with pool_of(request.app).connection() as conn:
        await write_batch(conn, batch)


def _invalid(message: str = INVALID_PAYLOAD) -> Response[dict[str, str]]:
    return Response({"message": message}, status_code=400)


@post("/v1/metrics", guards=[sender_guard], status_code=201)
async def post_metric(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    parser = PointParser()
    try:
        parser.add(_point.decode(await request.body()))
    except (*MALFORMED, PointError):
        return _invalid()
    await store(request, parser.batch)
    return Response({"status": "success"}, status_code=201)


@post("/v1/metrics/batch", guards=[sender_guard], status_code=200)
async def post_batch(request: Request[Any, Any, Any]) -> Response[dict[str, object]]:
    try:
        batch = parse_json_batch(await request.body())
    except PointError as exc:
        return Response({"message": str(exc)}, status_code=400)
    await store(request, batch)
    status = 400 if batch.rejected and not batch.accepted else 200
    return Response(batch.summary(), status_code=status)


@get("/v1/metrics", guards=[sender_guard])
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


@get(
    "/v1/metrics/{name:str}/{granularity:str}/{start_date:str}/{end_date:str}",
    guards=[sender_guard],
)
async def averages(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    granularity: FromPath[str],
    start_date: FromPath[str],
    end_date: FromPath[str],
) -> Response[dict[str, Any]]:
    if granularity not in GRANULARITY_STEP:
        return _invalid("Invalid granularity. Use minute, hour or day.")
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


@get("/ping", media_type=MediaType.JSON)
async def ping() -> dict[str, str]:
    return {"status": "up"}


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
    await store(request, batch)
    if not batch.rejected:
        return Response(None, status_code=204)
    first = batch.errors[0][1] if batch.errors else "invalid line"
    return _error(v2, f"partial write: {first} dropped={batch.rejected}")


def _error(v2: bool, message: str) -> Response[Any]:
    body = {"code": "invalid", "message": message} if v2 else {"error": message}
    return Response(body, status_code=400)


@post("/write", guards=[influx_guard], status_code=200)
async def write_v1(request: Request[Any, Any, Any]) -> Response[Any]:
    return await _write(request, v2=False)


@post("/api/v2/write", guards=[influx_guard], status_code=200)
async def write_v2(request: Request[Any, Any, Any]) -> Response[Any]:
    return await _write(request, v2=True)


@post("/query", guards=[influx_guard], status_code=200)
async def query_v1() -> dict[str, Any]:
    """InfluxDB 1.x clients (Telegraf) send CREATE DATABASE here first; nothing to do."""
    return {"results": [{"statement_id": 0}]}


ROUTES = [post_metric, post_batch, list_names, averages, ping, write_v1, write_v2, query_v1]
