"""What `vigil stat` shows, seeded through the SQL entry points that work in both modes: a
Telegraf host (web-1) with heartbeats, disk reports, series, requests, journal lines and a
firing alert; a node_exporter host (db-1); a collectd host (c-1); a host only in the journal
(j-1)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from vigil.cli import stat

Conn = psycopg.Connection[Any]
# Whole minutes: the sparkline buckets (36 minutes over 24 h) then hold whole minute buckets.
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
MIN = timedelta(minutes=1)
HALF = "▁" * 20 + "█" * 20
"""The 24-hour sparkline of web-1's CPU: 10 % for 12 hours, then 70 %."""

# Series: name, labels, value for minutes 1..720 ago, value for minutes 721..1440 ago.
SERIES: list[tuple[str, dict[str, str], float, float]] = [
    ("cpu_usage_idle", {"host": "web-1", "cpu": "cpu-total"}, 30.0, 90.0),  # cpu 70 %, was 10 %
    ("cpu_usage_idle", {"host": "web-1", "cpu": "cpu0"}, 0.0, 0.0),  # per CPU: left out
    ("cpu_usage_user", {"host": "web-1", "cpu": "cpu-total"}, 55.0, 5.0),
    ("mem_used_percent", {"host": "web-1"}, 61.5, 61.5),
    ("system_load1", {"host": "web-1"}, 0.52, 0.52),
    ("disk_used_percent", {"host": "web-1", "path": "/", "fstype": "ext4"}, 71.2, 71.2),
    ("http_things_total", {"host": "web-1"}, 1.0, 1.0),  # not recognised: left out
    ("node_load1", {"instance": "db-1:9100", "job": "node"}, 1.5, 1.5),
    ("node_memory_MemAvailable_bytes", {"instance": "db-1:9100", "job": "node"}, 25.0, 50.0),
    ("node_memory_MemTotal_bytes", {"instance": "db-1:9100", "job": "node"}, 100.0, 100.0),
    ("node_filesystem_avail_bytes",
     {"instance": "db-1:9100", "job": "node", "mountpoint": "/", "fstype": "ext4"}, 10.0, 10.0),
    ("node_filesystem_size_bytes",
     {"instance": "db-1:9100", "job": "node", "mountpoint": "/", "fstype": "ext4"}, 40.0, 40.0),
    ("node_filesystem_avail_bytes",
     {"instance": "db-1:9100", "job": "node", "mountpoint": "/run", "fstype": "tmpfs"}, 1.0, 1.0),
    ("node_filesystem_size_bytes",
     {"instance": "db-1:9100", "job": "node", "mountpoint": "/run", "fstype": "tmpfs"}, 1.0, 1.0),
    ("load_load_shortterm", {"host": "c-1"}, 0.25, 0.25),
    ("df_root_percent_bytes_used", {"host": "c-1"}, 33.0, 33.0),
]  # fmt: skip


def seed(conn: Conn, now: datetime = NOW) -> None:
    """Everything `vigil stat` reads, relative to `now`."""
    # Heartbeats: backup reported 2 minutes ago; nightly 3 hours ago with a 5-minute deadline
    # (late: alert); disk / at 95 % (above 90: alert, a firing instance of the disk rule) and
    # /home at 42 % (ok), each reported every 36 minutes for a day.
    conn.execute("select vigil.ingest_metric('web-1', 'nightly', 'ping', '5', %s, %s)",
                 (now - 180 * MIN, now - 180 * MIN))  # fmt: skip
    conn.execute("select vigil.detect(%s)", (now - MIN,))
    for k in range(40, 0, -1):
        at = now - k * 36 * MIN + MIN
        conn.execute(
            "select vigil.ingest_metric('web-1', 'home', 'disk', %s, %s, %s)",
            (f"{40 + (k <= 20) * 2}", at, at),
        )
    conn.execute("select vigil.ingest_metric('web-1', '/', 'disk', '95%%', %s, %s)",
                 (now - MIN, now - MIN))  # fmt: skip
    conn.execute("select vigil.ingest_metric('web-1', 'backup', 'ping', '60', %s, %s)",
                 (now - 2 * MIN, now - 2 * MIN))  # fmt: skip
    # Series: one point a minute for a day.
    ids = conn.execute(
        "select id from vigil.series_ids(%s, %s::jsonb[]) order by ord",
        ([s[0] for s in SERIES], [json.dumps(s[1]) for s in SERIES]),
    ).fetchall()
    conn.execute(
        "insert into vigil.points (series_id, at, value)"
        " select s.id, %s - k * interval '1 minute', case when k <= 720 then s.new else s.old end"
        "   from unnest(%s::bigint[], %s::float8[], %s::float8[]) as s (id, new, old),"
        "        generate_series(1, 1440) as k",
        (now, [i for (i,) in ids], [s[2] for s in SERIES], [s[3] for s in SERIES]),
    )
    # Requests of web-1: 20 in the last 5 minutes (2 answered 500, 4 answered 404), and 360
    # in the 36 minutes from 21 hours ago (bucket 6 of 40 over a day).
    recent = [
        {"at": now - timedelta(seconds=10 + 12 * i),
         "status": 500 if i < 2 else 404 if i < 6 else 200}
        for i in range(20)
    ]  # fmt: skip
    old = [{"at": now - 21 * 60 * MIN + timedelta(seconds=6 * i)} for i in range(360)]
    requests(conn, [{"host": "web-1", **r} for r in recent + old])
    # Journal: 10 lines of web-1 in the last 5 minutes, one of them an error; j-1 only here.
    journal(
        conn,
        [(now - timedelta(seconds=20 * i + 5), "web-1", 3 if i == 0 else 6) for i in range(10)]
        + [(now - 30 * MIN, "j-1", 6)],
    )


def requests(conn: Conn, rows: list[dict[str, Any]]) -> None:
    full = [
        {"key": i + 1, "ip": "203.0.113.9", "method": "GET", "path": "/", "status": 200, **r,
         "at": r["at"].isoformat()}
        for i, r in enumerate(rows)
    ]  # fmt: skip
    result = conn.execute(
        "select accepted from vigil.requests_ingest(%s::jsonb)", (json.dumps(full),)
    ).fetchone()
    assert result == (len(rows),)


def journal(conn: Conn, rows: list[tuple[datetime, str, int]]) -> None:
    """(at, host, priority) lines through vigil.journal_ingest."""
    result = conn.execute(
        "select accepted from vigil.journal_ingest(%s, %s, %s, %s, %s, %s::smallint[], %s,"
        " %s::jsonb)",
        (
            [r[0] for r in rows],
            [hashlib.sha256(repr(r).encode()).digest() for r in rows],
            [r[1] for r in rows],
            ["app.service" for _ in rows],
            [None for _ in rows],
            [r[2] for r in rows],
            [f"line {i}" for i, _ in enumerate(rows)],
            json.dumps([{"_HOSTNAME": r[1]} for r in rows]),
        ),
    ).fetchone()
    assert result == (len(rows),)


def reading(doc: dict[str, Any], label: str) -> stat.Reading:
    """The one reading of a host view with that label (cpu, mem, load1, disk /...)."""
    found = [r for r in stat.readings(doc["series"]) if r.label == label]
    assert len(found) == 1, [r.label for r in stat.readings(doc["series"])]
    return found[0]
