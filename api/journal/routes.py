"""Journal ingest: POST /journal (metrics-sender JSON, NDJSON) and POST /upload
(systemd-journal-upload, Journal Export Format). Parsing is in formats/, storage
in store.py; dedupe and retention are SQL (sql/50_journal.sql)."""

from __future__ import annotations

from functools import partial
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.exceptions import ClientException
from litestar.openapi.spec import OpenAPIType, Schema

from api.auth.senders import sender_guard
from api.core import openapi as oa
from api.core.db import pool_of
from api.journal.formats.journald import (
    Batch,
    BodyError,
    ExportParser,
    chunks,
    parse_json_body,
)
from api.journal.store import Inserter
from vigil.settings import Settings

EXPORT_TYPE = "application/vnd.fdo.journal"
NDJSON_TYPE = "application/x-ndjson"
CHUNK = 2000  # entries per vigil.journal_ingest call
STREAM_FLUSH = 5000  # /upload: store every this many parsed entries,
STREAM_FLUSH_BYTES = 8 * 1024 * 1024  # or when they hold this many bytes


class Outcome(msgspec.Struct):
    """The reply body: counts, and why lines were rejected (first few line numbers)."""

    accepted: int = 0
    duplicated: int = 0
    rejected: int = 0
    reasons: dict[str, int] = msgspec.field(default_factory=dict)
    rejected_lines: list[dict[str, Any]] = msgspec.field(default_factory=list)


# --- OpenAPI (api/core/openapi.py) ---

FIELD_VALUE = Schema(
    any_of=[
        oa.string(),
        oa.array(oa.integer(minimum=0, maximum=255), description="bytes: text that is not UTF-8"),
        oa.array(
            Schema(type=[OpenAPIType.STRING, OpenAPIType.ARRAY]), description="a repeated field"
        ),
        Schema(type=OpenAPIType.NULL, description="journalctl's stand-in for a large value"),
    ],
)
ENTRY = oa.obj(
    {
        "__REALTIME_TIMESTAMP": Schema(
            one_of=[oa.string(pattern="^[0-9]+$"), oa.integer()],
            description="microseconds since 1970, as journalctl writes it (a string of digits) "
            "or a number",
            examples=["1763805600000000"],
        ),
        "MESSAGE": FIELD_VALUE,
        "_HOSTNAME": FIELD_VALUE,
        "_SYSTEMD_UNIT": FIELD_VALUE,
        "CONTAINER_NAME": FIELD_VALUE,
        "PRIORITY": FIELD_VALUE,
    },
    required=["__REALTIME_TIMESTAMP"],
    extra=FIELD_VALUE,
    title="JournalEntry",
    description="One `journalctl -o json` line: a journald entry. Values are strings, arrays of "
    "byte numbers (journald's form for text that is not UTF-8) or arrays (repeated fields).",
)
METRICS_SENDER_BATCH = oa.obj(
    {
        "logs": oa.nullable(
            OpenAPIType.STRING,
            description="`journalctl -o json` lines; `null` is an empty batch",
        )
    },
    extra=True,
    title="MetricsSenderBatch",
    description="metrics-sender's batch (one per minute, also empty).",
)
NDJSON = oa.array(
    ENTRY,
    title="JournalLines",
    description="NDJSON: `journalctl -o json` lines, one JournalEntry per line (each element "
    "here is one line); blank lines are ignored",
)
EXPORT = oa.string(
    title="JournalExport",
    description="The Journal Export Format: entries separated by a blank line; a field is "
    "`NAME=value` or `NAME`, a 64-bit little-endian length, the bytes and a newline",
)
OUTCOME = oa.ingest_outcome(
    "JournalOutcome",
    accepted="entries stored",
    duplicated="entries already stored, or repeated",
    rejected="entries refused, by reason in `reasons`",
    rejected_lines="the first 20 lines rejected while reading the body (1-based; for the "
    "export format, the entry number); not those refused by the retention window",
)
EXPORT_EXAMPLE = "__REALTIME_TIMESTAMP=1763805600000000\n_HOSTNAME=web-1\nMESSAGE=hello\n\n"
ENTRY_EXAMPLE = {"__REALTIME_TIMESTAMP": "1763805600000000", "_HOSTNAME": "web-1", "MESSAGE": "hi"}
STORED = oa.reply(
    "Every readable body: what was stored, duplicated and rejected (the valid lines are stored "
    "even when others are rejected).",
    OUTCOME,
    examples={
        "some rejected": {
            "accepted": 2,
            "duplicated": 1,
            "rejected": 2,
            "reasons": {"not valid JSON": 1, "older than the retention (14 days)": 1},
            "rejected_lines": [{"line": 3, "reason": "not valid JSON"}],
        }
    },
)
EXPORT_ERROR = (
    "400 malformed export-format binary field (no newline after the data); stored before it: 0\n"
)


# Every journal route takes a sender token; a body it reads is answered 200 with its Outcome.
journal_post = partial(
    post, guards=[sender_guard], status_code=200, tags=["journal"], security=oa.SENDER
)


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
    async with pool_of(request.app).connection() as conn:
        inserter = Inserter(conn)
        oldest, newest, retention = await inserter.bounds()
        for part in chunks(batch.entries, CHUNK):
            accepted, duplicated, expired, future = await inserter.insert(part, oldest, newest)
            outcome.accepted += accepted
            outcome.duplicated += duplicated
            _count(outcome, f"older than the retention ({retention})", expired)
            _count(outcome, "more than 1 day in the future; check the sender's clock", future)


async def _stored(
    request: Request[Any, Any, Any], batch: Batch, outcome: Outcome | None = None
) -> Response[bytes]:
    """Stores the last part of a body and replies with the outcome of all of it."""
    outcome = Outcome() if outcome is None else outcome
    await store(request, batch, outcome)
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
    return await _stored(request, batch, outcome)


@journal_post(
    "/journal",
    operation_id="postJournal",
    summary="journalctl -o json lines (metrics-sender, curl), or the export format",
    description="A body that is one line holding a JSON object with a `logs` member is "
    "metrics-sender's form; any other body is read as NDJSON, except with the content type "
    f"`{EXPORT_TYPE}` (as on `/upload`).",
    operation_class=oa.documented(
        request_body=oa.body(
            {
                oa.JSON: Schema(any_of=[METRICS_SENDER_BATCH, ENTRY]),
                NDJSON_TYPE: NDJSON,
                EXPORT_TYPE: EXPORT,
            },
            description='metrics-sender\'s `{"logs": ...}`, `journalctl -o json` lines, or '
            "`journalctl -o export`",
            required=False,
            examples={
                oa.JSON: {"logs": msgspec.json.encode(ENTRY_EXAMPLE).decode() + "\n"},
                NDJSON_TYPE: [ENTRY_EXAMPLE],
                EXPORT_TYPE: EXPORT_EXAMPLE,
            },
        ),
        responses={
            200: STORED,
            400: oa.text_error(
                400,
                "`logs` is not a string; a broken export stream (the entries before it are "
                "stored).",
                '400 "logs" must be a string of journalctl -o json lines\n',
                EXPORT_ERROR,
            ),
            **oa.vigil_errors(401, 413, 503),
        },
    ),
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
    return await _stored(request, batch)


@journal_post(
    "/upload",
    request_max_body_size=None,  # streamed; each entry is limited to VIGIL_MAX_BODY_BYTES
    operation_id="postUpload",
    summary="The Journal Export Format (systemd-journal-upload)",
    description="Stored while it streams (every 5,000 entries), so there is no total size "
    "limit; one entry may not exceed `VIGIL_MAX_BODY_BYTES`. systemd-journal-upload sends no "
    "custom headers: give it `URL=http://HOST:8080/t/TOKEN`.",
    operation_class=oa.documented(
        request_body=oa.body(
            {EXPORT_TYPE: EXPORT},
            description="`journalctl -o export`, usually chunked",
            required=False,
            examples={EXPORT_TYPE: EXPORT_EXAMPLE},
        ),
        responses={
            200: STORED,
            400: oa.text_error(
                400,
                "Another content type; a broken export stream or an entry over "
                "`VIGIL_MAX_BODY_BYTES` (the entries before it are stored).",
                f"400 Content-Type must be {EXPORT_TYPE} (the Journal Export Format); send "
                "journalctl -o json lines to /journal\n",
                EXPORT_ERROR,
            ),
            **oa.vigil_errors(401, 503),
        },
    ),
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
