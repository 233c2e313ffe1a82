"""Request records and journal lines carrying ids, stored through the SQL entry points that
work in both modes (vigil.journal_ingest, vigil.requests_ingest)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

Conn = psycopg.Connection[tuple[object, ...]]
NOW = datetime.now(UTC).replace(microsecond=0)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


def journal(conn: Conn, rows: list[tuple[datetime, str, str | None, str, dict[str, Any]]]) -> None:
    """(at, host, unit, message, own fields) lines through vigil.journal_ingest."""
    result = conn.execute(
        "select accepted from vigil.journal_ingest(%s, %s, %s, %s, %s, %s::smallint[], %s,"
        " %s::jsonb)",
        (
            [r[0] for r in rows],
            [hashlib.sha256(repr(r).encode()).digest() for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [None for _ in rows],
            [6 for _ in rows],
            [r[3] for r in rows],
            json.dumps([{"_HOSTNAME": r[1], **r[4]} for r in rows]),
        ),
    ).fetchone()
    assert result == (len(rows),)


def requests(conn: Conn, rows: list[dict[str, Any]]) -> None:
    """Request records (columns of vigil.requests) through vigil.requests_ingest."""
    full = [
        {
            "key": i + 1,
            "ip": "203.0.113.9",
            "method": "GET",
            "status": 200,
            "protocol": "HTTP/1.1",
            **r,
            "at": r["at"].isoformat(),
        }
        for i, r in enumerate(rows)
    ]
    result = conn.execute(
        "select accepted from vigil.requests_ingest(%s::jsonb)", (json.dumps(full),)
    ).fetchone()
    assert result == (len(rows),)


def seed(conn: Conn) -> None:
    """TRACE on two hosts from every source, OTHER and request id req-7 elsewhere."""
    t = NOW - timedelta(minutes=10)
    s = timedelta(seconds=1)
    requests(
        conn,
        [
            {"at": t, "host": "edge", "vhost": "shop.example", "path": "/cart", "query": "a=1",
             "trace_id": TRACE, "request_id": "req-1"},
            {"at": t + 9 * s, "host": "edge", "path": "/pay", "status": 502, "request_id": "req-7"},
            {"at": t + 10 * s, "host": "edge", "path": "/other", "trace_id": OTHER},
        ],
    )  # fmt: skip
    journal(
        conn,
        [
            (t + 1 * s, "app-1", "shop.service", "cart loaded", {"TRACE_ID": TRACE.upper()}),
            (t + 2 * s, "app-1", "shop.service", "calling payments", {"traceparent": TRACEPARENT}),
            (t + 3 * s, "app-2", "pay.service", f"charge failed trace_id={TRACE} code=7", {}),
            (t + 4 * s, "app-2", "pay.service", "retrying", {"trace_id": TRACE}),
            (t + 5 * s, "app-2", "pay.service", "gave up", {"request_id": "req-7"}),
            (t + 6 * s, "app-2", "pay.service", "audit", {"REQUEST_ID": "req-7"}),
            (t + 7 * s, "app-1", "shop.service", f"not an id x{TRACE}", {}),
            (t + 8 * s, "app-1", "shop.service", "unrelated", {"TRACE_ID": ["a", "b"]}),
            (t + 8 * s, "app-1", "shop.service", "huge", {"TRACE_ID": "x" * 5000}),
        ],
    )
