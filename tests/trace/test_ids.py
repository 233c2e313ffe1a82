"""Journal ids extracted once at ingest (vigil.journal_lines.ids, api/journal/ids.py): the
Python extraction agrees with SQL's vigil._journal_ids; the API's COPY paths (direct and
staged) store them; the column survives TimescaleDB compression and is added to a
hypertable with compressed chunks; lines without ids are backfilled; re-applying
sql/57_trace.sql replaces the old expression index."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
import pytest

from api.journal.formats.journald import parse_lines
from api.journal.ids import line_ids
from api.journal.store import Inserter
from tests.support.timescale import policy
from tests.trace.data import OTHER, TRACE, TRACEPARENT, journal
from vigil import PROJECT_ROOT

Conn = psycopg.Connection[tuple[object, ...]]
NOW = datetime.now(UTC).replace(microsecond=0)
_decode = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode

CASES: list[tuple[dict[str, Any], str]] = [
    ({}, "nothing here"),
    ({"TRACE_ID": TRACE.upper()}, "upper-case field"),
    ({"REQUEST_ID": "req-7", "request_id": "req-7", "trace_id": "Req-8"}, "two, one twice"),
    ({"TRACE_ID": ["a", "b"], "REQUEST_ID": 42, "trace_id": None}, "not strings"),
    ({"REQUEST_ID": ""}, "empty id"),
    ({"REQUEST_ID": "x" * 200, "request_id": "y" * 201}, "200 is the longest id"),
    ({"REQUEST_ID": "é" * 200}, "200 characters, 400 bytes"),
    ({"traceparent": TRACEPARENT.upper()}, "traceparent"),
    ({"TRACEPARENT": "  \t" + TRACEPARENT}, "leading blanks"),
    ({"traceparent": "00-" + TRACE + "-00f067aa0ba902b7"}, "no flags: not a traceparent"),
    ({"traceparent": "x00-" + TRACE + "-00f067aa0ba902b7-01"}, "not at the start"),
    ({"request_id": TRACE[:31] + "G"}, "31 hex digits and a letter: as is"),
    ({}, f"a {OTHER} b {OTHER}, c{TRACE} d"),
    ({}, f"{TRACE}-{OTHER}"),
    ({}, f"id={TRACE.upper()}_x {TRACE}0 {TRACE[:31]}"),
    ({}, "é" * 8150 + " " + TRACE + " " + OTHER),  # 8 KiB in characters, not bytes
    ({}, "x" * 8159 + " " + TRACE + " " + OTHER),  # TRACE ends at the 8 KiB boundary
    ({}, "x" * 8160 + " " + TRACE),  # cut by the boundary: not an id
    ({"MESSAGE_ID": TRACE, "SPAN_ID": OTHER}, "other fields are not ids"),
    ({}, f"é{TRACE}ü, \uff10{OTHER}"),  # non-ASCII letters and digits are word boundaries
]


def sql_ids(conn: Conn, fields: dict[str, Any], message: str) -> list[str] | None:
    row = conn.execute(
        "select vigil._journal_ids(%s::jsonb, %s)", (json.dumps(fields), message)
    ).fetchone()
    assert row is not None
    return None if row[0] is None else sorted(str(x) for x in row[0])  # type: ignore[attr-defined]


def test_python_extraction_agrees_with_sql(conn: Conn) -> None:
    for fields, message in CASES:
        py = line_ids(_decode(json.dumps(fields).encode()), message)
        assert py == sql_ids(conn, fields, message), (fields, message[-80:])
    some = line_ids(_decode(json.dumps(CASES[2][0]).encode()), "")
    assert some == ["Req-8", "req-7"]  # the check can fail: distinct, exact case
    assert line_ids({}, "x" * 8160 + " " + TRACE) is None


def entry_lines(n: int, start: datetime) -> list[bytes]:
    out = []
    for i in range(n):
        fields: dict[str, str] = {
            "__REALTIME_TIMESTAMP": str(int((start + timedelta(seconds=i)).timestamp() * 1e6)),
            "_HOSTNAME": "app-1",
            "_SYSTEMD_UNIT": "shop.service",
            "MESSAGE": f"line {i}" + (f" trace {TRACE}" if i % 3 == 0 else ""),
        }
        if i % 4 == 1:
            fields["REQUEST_ID"] = f"req-{i}"
        out.append(json.dumps(fields).encode())
    return out


def test_api_copy_paths_store_the_ids(conn: Conn, dsn: str) -> None:
    async def store(raw: list[bytes]) -> tuple[int, int, int, int]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as c:
            inserter = Inserter(c)
            oldest, newest, _ = await inserter.bounds()
            return await inserter.insert(parse_lines(raw).entries, oldest, newest)

    start = NOW - timedelta(minutes=30)
    raw = entry_lines(12, start)
    assert asyncio.run(store(raw[:6])) == (6, 0, 0, 0)  # straight into the table
    assert asyncio.run(store(raw)) == (6, 6, 0, 0)  # a duplicate: through the stage
    stored = conn.execute(
        "select message, ids from vigil.journal_lines order by at"
    ).fetchall()  # fmt: skip
    expected = [
        sorted(([TRACE] if i % 3 == 0 else []) + ([f"req-{i}"] if i % 4 == 1 else [])) or None
        for i in range(12)
    ]
    assert [r[1] for r in stored] == expected
    found = conn.execute("select message from vigil.trace(%s)", ("req-9",)).fetchall()
    assert found == [("line 9 trace " + TRACE,)]
    assert len(conn.execute("select * from vigil.trace(%s)", (TRACE,)).fetchall()) == 4


def test_backfill_fills_lines_without_ids(db: Conn) -> None:
    t = NOW - timedelta(minutes=5)
    journal(db, [(t, "app-1", "a.service", f"x {TRACE}", {}), (t, "app-1", None, "none", {})])
    db.execute("update vigil.journal_lines set ids = null")  # as stored before the column
    assert db.execute("select * from vigil.trace(%s)", (TRACE,)).fetchall() == []
    window = (t - timedelta(hours=1), t + timedelta(hours=1))
    assert db.execute("select vigil.trace_journal_backfill(%s, %s)", window).fetchone() == (1,)
    assert db.execute("select vigil.trace_journal_backfill(%s, %s)", window).fetchone() == (0,)
    assert [r[0] for r in db.execute("select message from vigil.trace(%s)", (TRACE,))] == [
        f"x {TRACE}"
    ]
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        db.execute("select vigil.trace_journal_backfill(%s, %s)", window[::-1])


@pytest.mark.timescale
def test_ids_survive_compression(ts_conn: Conn) -> None:
    old = (NOW - timedelta(days=4)).replace(hour=12, minute=0, second=0)  # one chunk
    journal(
        ts_conn,
        [
            (old, "app-1", "shop.service", "old, by field", {"REQUEST_ID": "req-old"}),
            (old + timedelta(seconds=1), "app-2", "pay.service", f"old {TRACE}", {}),
            (NOW - timedelta(minutes=1), "app-2", "pay.service", "new", {"trace_id": TRACE}),
        ],
    )
    ts_conn.execute(
        "call run_job(%s)", (policy(ts_conn, "policy_compression", "journal_lines")[0],)
    )
    compressed = ts_conn.execute(
        "select count(*) filter (where is_compressed) from timescaledb_information.chunks"
        " where hypertable_schema = 'vigil' and hypertable_name = 'journal_lines'"
    ).fetchone()
    assert compressed == (1,)
    found = ts_conn.execute("select message from vigil.trace(%s)", (TRACE,)).fetchall()
    assert found == [(f"old {TRACE}",), ("new",)]
    assert ts_conn.execute("select message from vigil.trace('req-old')").fetchall() == [
        ("old, by field",)
    ]
    # an upgrade: the column and index added to a hypertable with compressed chunks, the
    # lines (compressed too) backfilled
    ts_conn.execute("drop index vigil.journal_lines_ids_idx")
    ts_conn.execute("alter table vigil.journal_lines drop column ids")
    ts_conn.execute((PROJECT_ROOT / "sql" / "57_trace.sql").read_text().encode())
    assert ts_conn.execute("select * from vigil.trace(%s)", (TRACE,)).fetchall() == []
    window = (NOW - timedelta(days=10), NOW)
    assert ts_conn.execute(
        "select vigil.trace_journal_backfill(%s, %s)", window
    ).fetchone() == (3,)  # fmt: skip
    assert ts_conn.execute("select message from vigil.trace(%s)", (TRACE,)).fetchall() == found


def test_reapplying_the_sql_replaces_the_expression_index(conn: Conn) -> None:
    conn.execute("drop index vigil.journal_lines_ids_idx")
    conn.execute(
        "create index journal_lines_ids_idx on vigil.journal_lines"
        " using gin (vigil._journal_ids(fields, message))"
        " where vigil._journal_ids(fields, message) is not null"
    )
    conn.execute((PROJECT_ROOT / "sql" / "57_trace.sql").read_text().encode())
    row = conn.execute(
        "select indexdef from pg_indexes where schemaname = 'vigil'"
        " and indexname = 'journal_lines_ids_idx'"
    ).fetchone()
    assert row is not None and "gin (ids) WITH (fastupdate=off) WHERE (ids IS NOT NULL)" in str(
        row[0]
    ), row
    # every day's partition has it, with the same options
    parts = conn.execute(
        "select c.reloptions from pg_inherits i join pg_class c on c.oid = i.inhrelid"
        " where i.inhparent = 'vigil.journal_lines_ids_idx'::regclass"
    ).fetchall()
    assert parts and all(r[0] == ["fastupdate=off"] for r in parts), parts
