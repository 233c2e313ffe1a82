"""SQL-level helpers for tests: ingest at a given time, read transitions and the outbox."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

Conn = psycopg.Connection[tuple[object, ...]]
T0 = datetime.fromisoformat("2026-11-22T10:00:00+00:00")


def ingest(
    conn: Conn,
    host: str,
    name: str,
    type_: str,
    value: str | None,
    at: datetime,
    now: datetime | None = None,
) -> str:
    row = conn.execute(
        "select vigil.ingest_metric(%s, %s, %s, %s, %s, %s)",
        (host, name, type_, value, at, now or at),
    ).fetchone()
    assert row is not None
    return str(row[0])


def detect(conn: Conn, now: datetime) -> int:
    row = conn.execute("select vigil.detect(%s)", (now,)).fetchone()
    assert row is not None
    return int(str(row[0]))


def state(conn: Conn, host: str, name: str) -> str:
    row = conn.execute(
        "select state from vigil.metrics where host = %s and name = %s", (host, name)
    ).fetchone()
    assert row is not None
    return str(row[0])


def outbox_texts(conn: Conn) -> list[str]:
    return [str(r[0]) for r in conn.execute("select text from vigil.outbox order by id")]


def transitions(conn: Conn) -> list[tuple[str, str]]:
    return [
        (str(a), str(b))
        for a, b in conn.execute("select from_state, to_state from vigil.transitions order by id")
    ]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
