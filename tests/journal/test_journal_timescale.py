"""The journal in TimescaleDB mode (PGlite lane): hypertable, compression of old chunks,
retention dropping expired chunks, and the API's insert path without COPY."""

from __future__ import annotations

import asyncio
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from api.journal.formats.journald import parse_lines
from api.journal.store import Inserter
from tests.support.timescale import is_hypertable, policy

pytestmark = pytest.mark.timescale

Conn = psycopg.Connection[tuple[object, ...]]
NOW = datetime.now(UTC).replace(microsecond=0)


def ingest(conn: Conn, rows: list[tuple[datetime, str, str]]) -> tuple[Any, ...]:
    """(at, host, message) rows through vigil.journal_ingest (the arrays entry point)."""
    result = conn.execute(
        "select * from vigil.journal_ingest(%s, %s, %s, %s, %s, %s::smallint[], %s, %s::jsonb)",
        (
            [r[0] for r in rows],
            [hashlib.sha256(repr(r).encode()).digest() for r in rows],
            [r[1] for r in rows],
            [None for _ in rows],
            [None for _ in rows],
            [6 for _ in rows],
            [r[2] for r in rows],
            json.dumps([{"_HOSTNAME": r[1]} for r in rows]),
        ),
    ).fetchone()
    assert result is not None
    return result


def chunks(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select range_start, is_compressed from timescaledb_information.chunks"
        " where hypertable_schema = 'vigil' and hypertable_name = 'journal_lines' order by 1"
    ).fetchall()


def test_hypertable_with_compression_settings(ts_conn: Conn) -> None:
    assert is_hypertable(ts_conn, "journal_lines")
    settings = ts_conn.execute(
        "select segmentby, orderby from timescaledb_information.hypertable_compression_settings"
        " where hypertable = 'vigil.journal_lines'::regclass"
    ).fetchone()
    assert settings is not None
    assert settings[0] == "host"
    assert str(settings[1]).startswith("set_id") and "at DESC" in str(settings[1])
    # no portable partitions and the portable job is disabled in this mode
    assert ts_conn.execute(
        "select enabled from vigil.portable_jobs where job = 'journal_maintenance'"
    ).fetchone() == (False,)


def test_old_chunks_get_compressed_and_stay_searchable(ts_conn: Conn) -> None:
    rows = [
        (NOW - timedelta(days=d, minutes=m), f"h{m % 2}", f"day {d} minute {m}")
        for d in (5, 4, 0)
        for m in range(20)
    ]
    assert ingest(ts_conn, rows) == (60, 0, 0, 0)
    ts_conn.execute(
        "call run_job(%s)", (policy(ts_conn, "policy_compression", "journal_lines")[0],)
    )
    state = chunks(ts_conn)
    old = [c for c in state if c[0] < NOW - timedelta(days=2)]
    new = [c for c in state if c[0] >= NOW - timedelta(days=1)]
    assert old and all(c[1] for c in old), state
    assert new and not any(c[1] for c in new), state
    # compressed rows are still found, and still deduplicated
    found = ts_conn.execute(
        "select message from vigil.journal_search(p_host => 'h1', p_text => 'DAY 5 MINUTE 1',"
        " p_limit => 5)"
    ).fetchall()
    assert [r[0] for r in found] == [
        "day 5 minute 1",
        "day 5 minute 11",
        "day 5 minute 13",
        "day 5 minute 15",
        "day 5 minute 17",
    ]
    assert ingest(ts_conn, rows[:3]) == (0, 3, 0, 0)


def test_retention_policy_drops_expired_chunks(ts_conn: Conn) -> None:
    assert ts_conn.execute("select vigil.journal_retention()").fetchone() == (timedelta(days=14),)
    # lines older than the retention are refused by ingest ...
    assert ingest(ts_conn, [(NOW - timedelta(days=20), "h", "old")]) == (0, 0, 1, 0)
    # ... so put some there directly, as if they had aged
    ts_conn.execute("insert into vigil.journal_sets (id, realtime, fields) values (0, false, '{}')")
    ts_conn.execute(
        "insert into vigil.journal_lines (at, key, set_id, host, message, fields)"
        " select %s - make_interval(days => d), d, 0, 'h', 'aged ' || d, '{}'"
        " from generate_series(15, 17) d",
        (NOW,),
    )
    ingest(ts_conn, [(NOW, "h", "fresh")])
    ts_conn.execute("call run_job(%s)", (policy(ts_conn, "policy_retention", "journal_lines")[0],))
    assert [r[0] for r in ts_conn.execute("select message from vigil.journal")] == ["fresh"]
    left = chunks(ts_conn)  # the fresh line's chunk, none older than the retention
    assert left and all(c[0] >= NOW - timedelta(days=14, hours=24) for c in left)
    # tuning with plain SQL changes what ingest accepts
    ts_conn.execute("select remove_retention_policy('vigil.journal_lines')")
    ts_conn.execute("select add_retention_policy('vigil.journal_lines', interval '3 days')")
    assert ts_conn.execute("select vigil.journal_retention()").fetchone() == (timedelta(days=3),)


def test_api_insert_path_without_copy(ts_dsn: str) -> None:
    """The PGlite server has no COPY FROM STDIN: the API falls back to the arrays call."""
    ts = int(NOW.timestamp() * 1_000_000)
    lines = [
        json.dumps(
            {"__REALTIME_TIMESTAMP": str(ts + i), "_HOSTNAME": "x", "MESSAGE": f"m{i}"}
        ).encode()
        for i in range(5)
    ]
    batch = parse_lines(lines + lines[:1])

    async def run() -> list[tuple[int, int, int, int]]:
        async with await psycopg.AsyncConnection.connect(ts_dsn, autocommit=True) as conn:
            inserter = Inserter(conn)
            oldest, newest, _ = await inserter.bounds()
            first = await inserter.insert(batch.entries, oldest, newest)
            again = await inserter.insert(batch.entries, oldest, newest)
            assert not inserter.copy_supported
            return [first, again]

    assert batch.duplicated == 1
    # its own thread: a session's Playwright may own this thread's event loop
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, run()).result() == [(5, 0, 0, 0), (0, 5, 0, 0)]


def test_compression_shrinks_lines_and_reads_stay_exact(ts_conn: Conn) -> None:
    """Old chunks compress (segment by host, ordered by set and time) to a fraction of
    their size, and vigil.journal reads the same lines, fields included, afterwards."""
    # 14 hours of lines inside one UTC day (one chunk), whatever the time of day: a second
    # chunk holding a few lines would be mostly the fixed size of a compressed chunk.
    start = (NOW - timedelta(days=6)).replace(hour=1, minute=0, second=0, microsecond=0)
    templates = [
        "pam_unix(sshd:session): session opened for user u{} by (uid=0)",
        "Accepted publickey for u{} from 10.0.0.{} port 22 ssh2",
        "GET /api/v1/items/{} HTTP/1.1 200 {} bytes",
        "BLOCK* NameSystem.allocateBlock: /user/root/part-{}. blk_{}",
    ]
    lines = []
    for i in range(3000):
        at = start + timedelta(seconds=17 * i)
        us = int(at.timestamp() * 1_000_000)
        unit = ["sshd.service", "nginx.service", "hdfs.service"][i % 3]
        lines.append(
            json.dumps(
                {
                    "__CURSOR": f"s=1a2b;i={i:x};b=9c8d;m={i + 5000:x};t={us:x};x={i * 77:x}",
                    "__REALTIME_TIMESTAMP": str(us),
                    "__MONOTONIC_TIMESTAMP": str(i + 5000),
                    "_BOOT_ID": "9c8d",
                    "_MACHINE_ID": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                    "_HOSTNAME": f"node-{i % 4}",
                    "_TRANSPORT": "syslog",
                    "PRIORITY": "6",
                    "SYSLOG_IDENTIFIER": unit.split(".")[0],
                    "_PID": str(1000 + i % 50),
                    "_SYSTEMD_UNIT": unit,
                    "MESSAGE": templates[i % 4].format(i % 97, i % 13),
                }
            ).encode()
        )
    entries = parse_lines(lines).entries
    from api.journal import QUERIES
    from api.journal.store import array_params

    for k in range(0, len(entries), 1000):
        ts_conn.execute(QUERIES["journal_ingest_arrays"], array_params(entries[k : k + 1000]))
    read = "select id, at, host, unit, priority, message, fields from vigil.journal order by id"
    before = ts_conn.execute(read).fetchall()
    assert len(before) == 3000
    ts_conn.execute(
        "call run_job(%s)", (policy(ts_conn, "policy_compression", "journal_lines")[0],)
    )
    assert all(c[1] for c in chunks(ts_conn))
    stats = ts_conn.execute(
        "select sum(before_compression_table_bytes + before_compression_toast_bytes),"
        " sum(after_compression_table_bytes + after_compression_toast_bytes),"
        " sum(before_compression_total_bytes), sum(after_compression_total_bytes)"
        " from hypertable_compression_stats('vigil.journal_lines')"
    ).fetchone()
    assert stats is not None
    heap_before, heap_after, total_before, total_after = (int(str(v)) for v in stats)
    print(
        "compression (table + TOAST, total):", heap_before / heap_after, total_before / total_after
    )
    assert heap_after * 3 < heap_before, stats
    assert total_after * 3 < total_before, stats
    assert ts_conn.execute(read).fetchall() == before


def test_lines_with_cursors_dedupe_in_compressed_chunks(ts_conn: Conn) -> None:
    """Lines identified by their cursor (dedupe key 0) sent again after their chunk was
    compressed are duplicates; a different line at the same microsecond is stored."""
    from api.journal import QUERIES
    from api.journal.store import array_params

    us = int((NOW - timedelta(days=5)).timestamp() * 1_000_000)

    def line(i: int, message: str, at: int) -> bytes:
        return json.dumps(
            {
                "__CURSOR": f"s=5a;i={i:x};b=b0;m={9000 + i:x};t={at:x};x={(i * 2**61) % 2**64:x}",
                "__REALTIME_TIMESTAMP": str(at),
                "__MONOTONIC_TIMESTAMP": str(9000 + i),
                "_BOOT_ID": "b0",
                "_HOSTNAME": "c1",
                "_PID": str(70 + i % 3),
                "MESSAGE": message,
            }
        ).encode()

    sent = [line(i, f"compressed {i}", us + i * 1_000_000) for i in range(50)]

    def ingest_lines(lines: list[bytes]) -> Any:
        return ts_conn.execute(
            QUERIES["journal_ingest_arrays"], array_params(parse_lines(lines).entries)
        ).fetchone()

    assert ingest_lines(sent) == (50, 0, 0, 0)
    ts_conn.execute("select compress_chunk(c) from show_chunks('vigil.journal_lines') c")
    assert all(c[1] for c in chunks(ts_conn))
    before = ts_conn.execute("select fields ->> '__CURSOR' from vigil.journal order by at")
    assert [r[0] for r in before] == [json.loads(x)["__CURSOR"] for x in sent]
    again = [*sent[:10], line(99, "same time as 3", us + 3_000_000)]
    assert ingest_lines(again) == (1, 10, 0, 0)
    keys = ts_conn.execute(
        "select key from vigil.journal_lines where at = %s order by key",
        (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us + 3_000_000),),
    ).fetchall()
    assert keys == [(0,), (1,)]
