"""Journal ingest: POST /journal (metrics-sender JSON, NDJSON) and POST /upload
(systemd-journal-upload, Journal Export Format). Parsing is in api/journal_formats.py;
storage, dedupe and retention are SQL (sql/70_journal.sql)."""

from __future__ import annotations

import struct
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
import psycopg.errors
from litestar import MediaType, Request, Response, post
from litestar.exceptions import ClientException

from api.auth import sender_guard
from api.db import http_error, pool_of
from api.journal_formats import (
    Batch,
    BodyError,
    Entry,
    ExportParser,
    chunks,
    parse_json_body,
)
from vigil.settings import Settings

EXPORT_TYPE = "application/vnd.fdo.journal"
CHUNK = 2000  # entries per vigil.journal_ingest call
STREAM_FLUSH = 5000  # /upload: store every this many parsed entries,
STREAM_FLUSH_BYTES = 8 * 1024 * 1024  # or when they hold this many bytes

BOUNDS_SQL = "select oldest, newest, retention::text from vigil.journal_bounds()"
DIRECT_COPY_SQL = (
    "copy vigil.journal (at, sha256, host, unit, container, priority, message, fields)"
    " from stdin (format binary)"
)
STAGE_COPY_SQL = (
    "copy pg_temp.journal_stage (at, sha256, host, unit, container, priority, message, fields)"
    " from stdin (format binary)"
)
STAGED_SQL = "select accepted, duplicated, expired, future from vigil.journal_ingest_staged()"
ARRAYS_SQL = (
    "select accepted, duplicated, expired, future"
    " from vigil.journal_ingest(%s::timestamptz[], %s::bytea[], %s::text[], %s::text[],"
    " %s::text[], %s::smallint[], %s::text[], %s::jsonb)"
)
Counts = tuple[int, int, int, int]  # accepted, duplicated, expired, future
Conn = psycopg.AsyncConnection[Any]

# Binary COPY (PostgreSQL docs, COPY, "Binary Format"): a
# header, per row the field count and each field as a 4-byte length (-1: null) + its bytes,
# a trailer. It spares PostgreSQL parsing times and hex and the API quoting text.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
COPY_TRAILER = b"\xff\xff"
NULL = b"\xff\xff\xff\xff"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 (PostgreSQL's epoch) in Unix microseconds
# field count 8; at: int8 microseconds since 2000-01-01; sha256: 32 bytes
_ROW_START = struct.Struct("!hiqi").pack
_LENGTH = struct.Struct("!i").pack
_PRIORITY = [b"\x00\x00\x00\x02" + struct.pack("!h", p) for p in range(8)]
_JSONB_VERSION = b"\x01"


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def copy_rows(entries: list[Entry]) -> bytes:
    """The entries as one binary COPY stream in the column order of DIRECT_COPY_SQL."""
    parts = [COPY_HEADER]
    add = parts.extend
    texts: dict[str | None, bytes] = {None: NULL}  # host, unit, container: few distinct
    for us, sha256, host, unit, container, priority, message, fields in entries:
        if (h := texts.get(host)) is None:
            h = texts[host] = _text(host)
        if (u := texts.get(unit)) is None:
            u = texts[unit] = _text(unit)
        if (c := texts.get(container)) is None:
            c = texts[container] = _text(container)
        m = message.encode()
        add(
            (
                _ROW_START(8, 8, us - PG_EPOCH_US, 32),
                sha256,
                h,
                u,
                c,
                NULL if priority is None else _PRIORITY[priority],
                _LENGTH(len(m)),
                m,
                _LENGTH(len(fields) + 1),
                _JSONB_VERSION,
                fields,
            )
        )
    parts.append(COPY_TRAILER)
    return b"".join(parts)


def _text(value: str | None) -> bytes:
    if value is None:
        return NULL
    data = value.encode()
    return _LENGTH(len(data)) + data


class Inserter:
    """Stores parsed entries; the rules are SQL (vigil.journal_ingest_staged).

    Fast path: when every entry lies within vigil.journal_bounds(), COPY straight into
    vigil.journal in one transaction; a duplicate (unique violation) or a day without a
    partition (check violation) rolls it back and the slow path runs: COPY into the
    session's staging table, then vigil.journal_ingest_staged() (insert ... on conflict do
    nothing, creates partitions, counts). A server without COPY FROM STDIN (the PGlite
    test server) gets the rows as arrays (vigil.journal_ingest).
    """

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.copy_supported = True

    async def bounds(self) -> tuple[datetime, datetime, str]:
        row = await (await self.conn.execute(BOUNDS_SQL)).fetchone()
        assert row is not None
        return row[0], row[1], row[2]

    async def insert(self, entries: list[Entry], oldest: datetime, newest: datetime) -> Counts:
        if self.copy_supported:
            try:
                rows = copy_rows(entries)
                low, high = _us(oldest), _us(newest)
                if all(low <= e.us <= high for e in entries) and await self._direct(rows):
                    return (len(entries), 0, 0, 0)
                return await self._staged(rows)
            except psycopg.errors.FeatureNotSupported:
                self.copy_supported = False
        return await self._arrays(entries)

    async def _direct(self, rows: bytes) -> bool:
        try:
            # autocommit: the COPY is its own transaction (no BEGIN/COMMIT round trips)
            async with (
                self.conn.transaction() if not self.conn.autocommit else nullcontext(),
                self.conn.cursor().copy(DIRECT_COPY_SQL) as copy,
            ):
                await copy.write(rows)
        except (psycopg.errors.UniqueViolation, psycopg.errors.CheckViolation):
            return False
        return True

    async def _staged(self, rows: bytes) -> Counts:
        async with self.conn.transaction():
            await self.conn.execute("select vigil.journal_stage()")
            async with self.conn.cursor().copy(STAGE_COPY_SQL) as copy:
                await copy.write(rows)
            row = await (await self.conn.execute(STAGED_SQL)).fetchone()
        assert row is not None
        return row[0], row[1], row[2], row[3]

    async def _arrays(self, entries: list[Entry]) -> Counts:
        row = await (await self.conn.execute(ARRAYS_SQL, array_params(entries))).fetchone()
        assert row is not None
        return row[0], row[1], row[2], row[3]


def array_params(entries: list[Entry]) -> tuple[object, ...]:
    """The parameters of ARRAYS_SQL (vigil.journal_ingest) for servers without COPY."""
    return (
        [e.at for e in entries],
        [e.sha256 for e in entries],
        [e.host for e in entries],
        [e.unit for e in entries],
        [e.container for e in entries],
        [e.priority for e in entries],
        [e.message for e in entries],
        (b"[" + b",".join(e.fields for e in entries) + b"]").decode(),
    )


class Outcome(msgspec.Struct):
    """The reply body: counts, and why lines were rejected (first few line numbers)."""

    accepted: int = 0
    duplicated: int = 0
    rejected: int = 0
    reasons: dict[str, int] = msgspec.field(default_factory=dict)
    rejected_lines: list[dict[str, Any]] = msgspec.field(default_factory=list)


def _count(outcome: Outcome, reason: str, n: int) -> None:
    if n:
        outcome.rejected += n
        outcome.reasons[reason] = outcome.reasons.get(reason, 0) + n


async def store(request: Request[Any, Any, Any], batch: Batch, outcome: Outcome) -> None:
    """Stores the batch's entries and folds everything into outcome."""
    outcome.duplicated += batch.duplicated
    for reason, n in batch.reasons.items():
        _count(outcome, reason, n)
    outcome.rejected_lines.extend(batch.samples[: 20 - len(outcome.rejected_lines)])
    if not batch.entries:
        return
    try:
        async with pool_of(request.app).connection() as conn:
            inserter = Inserter(conn)
            oldest, newest, retention = await inserter.bounds()
            for part in chunks(batch.entries, CHUNK):
                accepted, duplicated, expired, future = await inserter.insert(part, oldest, newest)
                outcome.accepted += accepted
                outcome.duplicated += duplicated
                _count(outcome, f"older than the retention ({retention})", expired)
                _count(outcome, "more than 1 day in the future; check the sender's clock", future)
    except psycopg.Error as exc:
        raise http_error(exc) from None


def _reply(outcome: Outcome) -> Response[bytes]:
    return Response(msgspec.json.encode(outcome), media_type=MediaType.JSON, status_code=200)


async def _ingest_export(request: Request[Any, Any, Any]) -> Response[bytes]:
    settings: Settings = request.app.state.settings
    parser = ExportParser(settings.max_body_bytes)
    outcome = Outcome()
    batch = Batch()
    try:
        async for data in request.stream():
            parser.feed(data, batch)
            if (
                len(batch.entries) + batch.rejected >= STREAM_FLUSH
                or batch.size >= STREAM_FLUSH_BYTES
            ):
                await store(request, batch, outcome)
                batch = Batch()
        parser.finish(batch)
    except BodyError as exc:
        await store(request, batch, outcome)
        raise ClientException(detail=f"{exc}; stored before it: {outcome.accepted}") from None
    await store(request, batch, outcome)
    return _reply(outcome)


@post(
    "/journal",
    guards=[sender_guard],
    status_code=200,
    summary="journalctl -o json lines",
)
async def post_journal(request: Request[Any, Any, Any]) -> Response[bytes]:
    """`{"logs": "..."}` (metrics-sender), bare NDJSON, or the export format by content type."""
    if request.headers.get("content-type", "").startswith(EXPORT_TYPE):
        return await _ingest_export(request)
    body = await request.body()
    try:
        batch = parse_json_body(body)
    except BodyError as exc:
        raise ClientException(detail=str(exc)) from None
    outcome = Outcome()
    await store(request, batch, outcome)
    return _reply(outcome)


@post(
    "/upload",
    guards=[sender_guard],
    status_code=200,
    request_max_body_size=None,  # streamed; each entry is limited to VIGIL_MAX_BODY_BYTES
)
async def post_upload(request: Request[Any, Any, Any]) -> Response[bytes]:
    """systemd-journal-upload: the Journal Export Format, chunked, stored as it streams."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(EXPORT_TYPE):
        raise ClientException(
            detail=f"Content-Type must be {EXPORT_TYPE} (the Journal Export Format); "
            "send journalctl -o json lines to /journal"
        )
    return await _ingest_export(request)


ROUTES = [post_journal, post_upload]
