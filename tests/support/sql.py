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


def detect_job_id(conn: Conn) -> int:
    """TimescaleDB mode: the id of the detector job (add_job of vigil.detect_job)."""
    row = conn.execute(
        "select job_id from timescaledb_information.jobs "
        "where proc_schema = 'vigil' and proc_name = 'detect_job'"
    ).fetchone()
    assert row is not None, "no TimescaleDB job for vigil.detect_job"
    return int(str(row[0]))


def run_scheduled_detector(conn: Conn, mode: str) -> None:
    """Runs the detector the way its scheduler does, at the database's now():
    `CALL run_job(id)` in TimescaleDB mode (the scheduler never runs in the test server),
    one tick of vigil.run_due_jobs (what the notifier calls) in portable mode."""
    if mode == "timescale":
        conn.execute("call run_job(%s)", (detect_job_id(conn),))
    else:
        conn.execute("select vigil.run_due_jobs(now())")


def db_now(conn: Conn) -> datetime:
    row = conn.execute("select now()").fetchone()
    assert row is not None and isinstance(row[0], datetime)
    return row[0]
