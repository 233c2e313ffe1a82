"""Journal ingest: POST /journal (metrics-sender JSON, NDJSON) and POST /upload
(systemd-journal-upload, Journal Export Format). Parsing is in formats/, storage
in store.py; dedupe and retention are SQL (sql/50_journal.sql)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.exceptions import ClientException

from api.auth.senders import sender_guard
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
