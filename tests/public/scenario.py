"""A small real history for the public views: two services (one recovered, one down now) and a
late heartbeat, written through the SQL entry points the prober and the API use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from tests.support.uptime import add

Conn = psycopg.Connection[tuple[object, ...]]

API_URL = "https://api.internal.example/health"
DB_URL = "http://10.0.0.5:5432/"
HOST = "secret-host-7"
NAME = "backup"
REASON = "connect refused by 10.0.0.5"


@dataclass(frozen=True)
class Scenario:
    now: datetime
    api_id: int
    db_id: int
    metric_id: int
    late_at: datetime
    """When the heartbeat went late (the detector's time)."""


def check(conn: Conn, sid: int, at: datetime, ok: bool) -> None:
    conn.execute(
        "select vigil.record_check(%s, %s, %s, %s, %s, null)",
        (sid, at, 200 if ok else None, 12.0 if ok else None, None if ok else REASON),
    )


def seed(conn: Conn) -> Scenario:
    now = datetime.now(UTC)
    api = add(conn, "api", API_URL, retries=0)
    check(conn, api, now - timedelta(days=3), True)
    check(conn, api, now - timedelta(days=2), False)  # down for one hour
    check(conn, api, now - timedelta(days=2) + timedelta(hours=1), True)
    db = add(conn, "db", DB_URL, retries=0)
    check(conn, db, now - timedelta(hours=1), True)
    check(conn, db, now - timedelta(minutes=30), False)  # down since
    # A ping due every 60 minutes, last seen 5 h ago; the detector ran 3 h ago.
    conn.execute(
        "select * from vigil.ingest_metrics(%s, %s, %s, %s, %s, %s)",
        ([HOST], [NAME], ["ping"], ["60"], [now - timedelta(hours=5)], now - timedelta(hours=5)),
    )
    conn.execute("select vigil.detect(%s)", (now - timedelta(hours=3),))
    row = conn.execute(
        "select m.id, t.at from vigil.metrics m join vigil.transitions t on t.metric_id = m.id"
    ).fetchone()
    assert row is not None
    metric_id, late_at = row
    assert isinstance(late_at, datetime)
    return Scenario(now, api, db, int(str(metric_id)), late_at)
