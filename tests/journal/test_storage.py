"""Journal storage in SQL (portable mode): partitions, retention, trigram indexes, search."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

Conn = psycopg.Connection[tuple[object, ...]]

NOW = datetime.now(UTC).replace(microsecond=0)


def ingest(
    conn: Conn, rows: list[tuple[datetime, str, str | None, int | None, str]], now: datetime = NOW
) -> tuple[Any, ...]:
    """Stores (at, host, unit, priority, message) rows through vigil.journal_ingest."""
    result = conn.execute(
        "select * from vigil.journal_ingest(%s, %s, %s, %s, %s, %s::smallint[], %s, %s::jsonb, %s)",
        (
            [r[0] for r in rows],
            [hashlib.sha256(repr(r).encode()).digest() for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
            [None for _ in rows],
            [r[3] for r in rows],
            [r[4] for r in rows],
            json.dumps([{"_HOSTNAME": r[1]} for r in rows]),
            now,
        ),
    ).fetchone()
    assert result is not None
    return result


def partitions(conn: Conn) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
            " where i.inhparent = 'vigil.journal_lines'::regclass order by 1"
        )
    ]


def test_retention_drops_expired_partitions(conn: Conn) -> None:
    old = NOW - timedelta(days=10)
    assert ingest(conn, [(old, "h", None, 6, "ten days old"), (NOW, "h", None, 6, "new")]) == (
        2,
        0,
        0,
        0,
    )
    old_part = "journal_p" + old.strftime("%Y%m%d")
    assert old_part in partitions(conn)
    # 5 days later: the 10-day-old line is 15 days old -> its whole day is dropped
    later = NOW + timedelta(days=5)
    n = conn.execute(
        'select vigil.journal_maintenance(%s, \'{"retention": "14 days"}\')', (later,)
    ).fetchone()
    assert n is not None and int(str(n[0])) >= 1
    assert old_part not in partitions(conn)
    assert [r[0] for r in conn.execute("select message from vigil.journal")] == ["new"]
    # upcoming partitions exist (3 days ahead of the job's now)
    assert "journal_p" + (later + timedelta(days=3)).strftime("%Y%m%d") in partitions(conn)
    # the retention is read from the job config: 1 day now rejects a 2-day-old line
    conn.execute(
        'update vigil.portable_jobs set config = config || \'{"retention": "1 day"}\''
        " where job = 'journal_maintenance'"
    )
    assert ingest(conn, [(NOW - timedelta(days=2), "h", None, 6, "x")]) == (0, 0, 1, 0)


def test_closed_days_get_a_trigram_index_once_they_stop_changing(conn: Conn) -> None:
    noon = NOW.replace(hour=12, minute=0, second=0) - timedelta(days=1)
    ingest(conn, [(noon, "h", None, 6, "yesterday"), (NOW, "h", None, 6, "today")])

    def indexed() -> set[str]:
        return {
            str(r[0])
            for r in conn.execute(
                "select tablename from pg_indexes where schemaname = 'vigil'"
                " and indexname like '%%message_trgm'"
            )
        }

    yesterday = "journal_p" + noon.strftime("%Y%m%d")
    # the first run sees the closed day; lines may still be arriving for it
    conn.execute("select vigil.journal_maintenance(%s, '{}')", (NOW,))
    assert indexed() == set()
    # more lines arrive for it (a backfill): its size changed, still not indexed
    ingest(conn, [(noon + timedelta(seconds=i), "h", None, 6, "x" * 500) for i in range(1, 40)])
    conn.execute("select vigil.journal_maintenance(%s, '{}')", (NOW,))
    assert indexed() == set()
    # unchanged since the previous run: indexed now; empty closed days and today never
    conn.execute("select vigil.journal_maintenance(%s, '{}')", (NOW,))
    assert indexed() == {yesterday}
    assert conn.execute("select count(*) from vigil.journal_days").fetchone() == (0,)
    conn.execute("set enable_seqscan = off")
    plan = "\n".join(
        str(r[0])
        for r in conn.execute(
            "explain select * from vigil.journal where message ilike '%%yesterd%%'"
        )
    )
    assert "message_trgm" in plan


def test_settle_false_indexes_closed_days_at_once(conn: Conn) -> None:
    """After a bulk load a DBA need not wait for a second run."""
    noon = NOW.replace(hour=12, minute=0, second=0) - timedelta(days=2)
    ingest(conn, [(noon, "h", None, 6, "two days ago")])
    conn.execute("""select vigil.journal_maintenance(%s, '{"settle": false}')""", (NOW,))
    names = {
        str(r[0])
        for r in conn.execute(
            "select tablename from pg_indexes where indexname like '%%message_trgm'"
        )
    }
    assert names == {"journal_p" + noon.strftime("%Y%m%d")}


def test_closed_hours_of_today_get_a_partial_index(conn: Conn) -> None:
    today = NOW.replace(hour=0, minute=0, second=0)
    ingest(
        conn,
        [
            (today + timedelta(minutes=30), "h", None, 6, "early needle"),
            (today + timedelta(hours=5, minutes=30), "h", None, 6, "late needle"),
        ],
    )
    job_now = today + timedelta(hours=5, minutes=10)
    conn.execute("select vigil.journal_maintenance(%s, '{}')", (job_now,))
    part = "journal_p" + today.strftime("%Y%m%d")
    names = [
        str(r[0])
        for r in conn.execute(
            "select indexname from pg_indexes where tablename = %s and indexname like '%%trgm%%'",
            (part,),
        )
    ]
    assert names == [f"{part}_trgm_h05"]
    assert conn.execute("select vigil._journal_indexed_until()").fetchone() == (
        today + timedelta(hours=5),
    )
    # an hour later the index is replaced, not added to
    conn.execute("select vigil.journal_maintenance(%s, '{}')", (job_now + timedelta(hours=1),))
    names = [
        str(r[0])
        for r in conn.execute(
            "select indexname from pg_indexes where tablename = %s and indexname like '%%trgm%%'",
            (part,),
        )
    ]
    assert names == [f"{part}_trgm_h06"]
    # the search splits at the indexed hour and finds lines on both sides, in order
    assert search(conn, text="NEEDLE") == ["late needle", "early needle"]
    assert search(conn, text="NEEDLE", newest_first=False, limit=1) == ["early needle"]


def test_dedupe_and_bounds(conn: Conn) -> None:
    row = (NOW, "h", None, 6, "same")
    assert ingest(conn, [row, row]) == (1, 1, 0, 0)
    assert ingest(conn, [row, (NOW + timedelta(days=2), "h", None, 6, "future")]) == (0, 1, 0, 1)


def search(conn: Conn, **kw: Any) -> list[str]:
    args = sql.SQL(", ").join(
        sql.SQL("{} => {}").format(sql.Identifier(f"p_{k}"), sql.Placeholder(k)) for k in kw
    )
    query = sql.SQL("select message from vigil.journal_search({})").format(args)
    return [str(r[0]) for r in conn.execute(query, kw)]


@pytest.fixture
def lines(conn: Conn) -> list[datetime]:
    times = [NOW - timedelta(minutes=60 - i) for i in range(60)]
    ingest(
        conn,
        [
            (
                t,
                f"host-{i % 2}",
                "a.service" if i % 3 else "b.service",
                i % 8,
                f"line {i:02d}" + (" Needle_%" if i in (7, 42) else ""),
            )
            for i, t in enumerate(times)
        ],
    )
    return times


def test_search_filters(conn: Conn, lines: list[datetime]) -> None:
    assert search(conn, text="needle_%") == ["line 42 Needle_%", "line 07 Needle_%"]
    assert search(conn, text="line_") == []  # _ is literal, not any character
    assert search(conn, host="host-1", unit="b.service", limit=2) == ["line 57", "line 51"]
    assert search(conn, priority=0) == [
        "line 56",
        "line 48",
        "line 40",
        "line 32",
        "line 24",
        "line 16",
        "line 08",
        "line 00",
    ]
    # inclusive time range
    assert search(conn, **{"from": lines[10], "to": lines[12]}) == ["line 12", "line 11", "line 10"]
    assert search(conn, **{"from": lines[10], "to": lines[12], "newest_first": False}) == [
        "line 10",
        "line 11",
        "line 12",
    ]
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        search(conn, limit=0)


def test_keyset_paging_stable_while_lines_arrive(conn: Conn, lines: list[datetime]) -> None:
    first = conn.execute(
        "select at, id, message from vigil.journal_search(p_limit => 10)"
    ).fetchall()
    assert [r[2] for r in first][:2] == ["line 59", "line 58"]
    # new lines arrive (newer, and one late with an old time)
    ingest(
        conn,
        [
            (NOW, "host-0", None, 6, "brand new"),
            (lines[45] - timedelta(seconds=1), "host-0", None, 6, "late 44.9"),
        ],
    )
    last = first[-1]
    second = conn.execute(
        "select message from vigil.journal_search(p_after_at => %s, p_after_id => %s,"
        " p_limit => 10)",
        (last[0], last[1]),
    ).fetchall()
    assert [r[0] for r in second] == [
        "line 49",
        "line 48",
        "line 47",
        "line 46",
        "line 45",
        "late 44.9",
        "line 44",
        "line 43",
        "line 42 Needle_%",
        "line 41",
    ]
    # live tail: what arrived after the newest id shown
    newest_id = max(int(str(r[1])) for r in first)
    tail = conn.execute(
        "select message from vigil.journal_search(p_tail_id => %s)", (newest_id,)
    ).fetchall()
    assert [r[0] for r in tail] == ["brand new", "late 44.9"]


def test_today_index_hours(conn: Conn) -> None:
    today = NOW.replace(hour=0, minute=0, second=0)
    ingest(conn, [(today + timedelta(minutes=30), "h", None, 6, "x")])
    part = "journal_p" + today.strftime("%Y%m%d")
    every4 = '{"today_index_hours": 4}'
    for hour, expected in ((5, []), (8, [f"{part}_trgm_h08"])):
        conn.execute(
            "select vigil.journal_maintenance(%s, %s)", (today + timedelta(hours=hour), every4)
        )
        names = [
            str(r[0])
            for r in conn.execute(
                "select indexname from pg_indexes where tablename = %s"
                " and indexname like '%%trgm%%'",
                (part,),
            )
        ]
        assert names == expected


def test_a_closed_day_trades_its_hourly_index_for_the_whole_day(conn: Conn) -> None:
    today = NOW.replace(hour=0, minute=0, second=0)
    ingest(conn, [(today + timedelta(minutes=30), "h", None, 6, "early needle")])
    part = "journal_p" + today.strftime("%Y%m%d")

    def names() -> list[str]:
        return [
            str(r[0])
            for r in conn.execute(
                "select indexname from pg_indexes where tablename = %s order by 1", (part,)
            )
        ]

    conn.execute("select vigil.journal_maintenance(%s, '{}')", (today + timedelta(hours=3),))
    assert f"{part}_trgm_h03" in names()
    tomorrow = today + timedelta(days=1, hours=1)
    for _ in range(2):  # seen, then unchanged: indexed
        conn.execute("select vigil.journal_maintenance(%s, '{}')", (tomorrow,))
    assert [n for n in names() if "trgm" in n] == [f"{part}_message_trgm"]
    # the btrees were rebuilt and still serve the dedupe
    assert ingest(conn, [(today + timedelta(minutes=30), "h", None, 6, "early needle")])[1] == 1
    assert search(conn, text="NEEDLE") == ["early needle"]
