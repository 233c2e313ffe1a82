"""The shared series-aggregate cases (tests/series/cases.py) in TimescaleDB mode: continuous
aggregates (hour, day) refreshed like their policies would, real-time for the newest buckets;
minutes from the raw points; values stored as decimals in vigil.points_data."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.series import cases
from vigil import SQL_DIR

pytestmark = pytest.mark.timescale

Conn = psycopg.Connection[Any]

AGGREGATES = ("hour", "day")  # continuous aggregates; minutes are read from the raw points


def ts_refresh(conn: Conn) -> cases.Refresh:
    """What the refresh policies do: materialize whole buckets up to `now` (autocommit); the
    minute tier is a view over the raw points."""

    def refresh(now: datetime) -> None:
        for tier in AGGREGATES:
            conn.execute(
                f"call refresh_continuous_aggregate('vigil.points_{tier}', null,"
                f" date_trunc('{tier}', %s::timestamptz, 'UTC'))",
                (now,),
            )

    return refresh


def ts_pack(conn: Conn) -> cases.Pack:
    """What the compression policies do: the raw chunks that ended over an hour ago, and the
    aggregates' chunks after their own age (their policies run now)."""

    def pack(now: datetime) -> None:
        jobs = conn.execute(
            "select job_id from timescaledb_information.jobs"
            " where proc_name = 'policy_compression' and hypertable_schema = 'vigil'"
            "   and hypertable_name like 'points%%' order by job_id"
        ).fetchall()
        assert len(jobs) == 3
        for (job,) in jobs:
            conn.execute("call run_job(%s)", (job,))

    return pack


def compressed_chunks(conn: Conn) -> int:
    row = conn.execute(
        "select count(*) from timescaledb_information.chunks"
        " where hypertable_schema = 'vigil' and hypertable_name = 'points_data' and is_compressed"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_packed_reads_equal_raw(ts_conn: Conn) -> None:
    cases.case_packed_reads_equal_raw(ts_conn, ts_refresh(ts_conn), ts_pack(ts_conn))
    assert compressed_chunks(ts_conn) >= 13


def test_late_points_in_packed_days(ts_conn: Conn) -> None:
    cases.case_late_points_in_packed_days(ts_conn, ts_refresh(ts_conn), ts_pack(ts_conn))
    assert compressed_chunks(ts_conn) >= 30


def test_nab_averages_equal_raw_avg(ts_conn: Conn) -> None:
    cases.case_nab_averages_equal_raw_avg(ts_conn, ts_refresh(ts_conn))


def test_sub_range_and_empty(ts_conn: Conn) -> None:
    cases.case_sub_range_and_empty(ts_conn, ts_refresh(ts_conn))


def test_backfill_is_read_at_once_and_folded_in_by_the_next_refresh(ts_conn: Conn) -> None:
    """The continuous aggregates hold the backfilled buckets stale until their refresh;
    vigil._series_dirty names exactly those (from TimescaleDB's invalidation logs), and the
    reads take them from the raw points meanwhile."""
    refresh = ts_refresh(ts_conn)
    stale: list[bool] = []

    def refresh_noting_stale(now: datetime) -> None:
        stale.append(dirty(ts_conn, "hour"))
        refresh(now)

    cases.case_backfill_is_read_at_once(ts_conn, refresh_noting_stale)
    # Before the first refresh nothing is materialized (the aggregate reads raw points
    # throughout, nothing is stale); before the second, the backfilled buckets; none after.
    assert stale == [False, True]
    assert [dirty(ts_conn, g) for g in cases.GRANULARITIES] == [False, False, False]


def dirty(conn: Conn, granularity: str) -> bool:
    """Whether any bucket of the last 30 days is stale in that granularity's aggregate."""
    row = conn.execute(
        "select not isempty(vigil._series_dirty(%s, now() - interval '30 days', now()))",
        (granularity,),
    ).fetchone()
    assert row is not None
    return bool(row[0])


def test_aggregates_policies_and_retention_per_tier(ts_conn: Conn) -> None:
    rows = ts_conn.execute(
        "select hypertable_name, proc_name, config from timescaledb_information.jobs"
        " where hypertable_schema = 'vigil' and hypertable_name like 'points%'"
        "    or (proc_name = 'policy_refresh_continuous_aggregate'"
        "        and config ->> 'mat_hypertable_id' is not null)"
    ).fetchall()
    retention = {str(r[0]): r[2]["drop_after"] for r in rows if r[1] == "policy_retention"}
    assert retention == {
        "points_data": "90 days",
        "points_hour": "2 years",
        "points_day": "10 years",
    }
    compress = {str(r[0]): r[2]["compress_after"] for r in rows if r[1] == "policy_compression"}
    assert compress == {
        "points_data": "01:00:00",
        "points_hour": "7 days",
        "points_day": "60 days",
    }
    refresh = [r for r in rows if r[1] == "policy_refresh_continuous_aggregate"]
    assert len(refresh) == 2
    realtime = ts_conn.execute(
        "select view_name, materialized_only from timescaledb_information.continuous_aggregates"
        " where view_schema = 'vigil' order by 1"
    ).fetchall()
    assert realtime == [("points_day", False), ("points_hour", False)]
    jobs = ts_conn.execute(
        "select job, enabled from vigil.portable_jobs"
        " where job in ('refresh_series_rollups', 'prune_series', 'pack_series_points')"
    ).fetchall()
    assert sorted(jobs) == [
        ("pack_series_points", False),
        ("prune_series", False),
        ("refresh_series_rollups", False),
    ]


def test_reapplying_the_file_keeps_the_layout_and_a_dbas_tuning(ts_conn: Conn) -> None:
    """vigil.points is a view over the hypertable vigil.points_data, points_minute a view;
    a DBA's chunk interval stays when the file is applied again."""
    ts_conn.execute("select set_chunk_time_interval('vigil.points_hour', interval '20 days')")
    ts_conn.execute((SQL_DIR / "60_series.sql").read_text().encode())
    kinds = ts_conn.execute(
        "select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'vigil' and c.relname in ('points', 'points_data', 'points_minute')"
        " order by 1"
    ).fetchall()
    assert kinds == [("points", "v"), ("points_data", "r"), ("points_minute", "v")]
    query = """
        select d.time_interval
          from timescaledb_information.continuous_aggregates c
          join timescaledb_information.dimensions d
            on d.hypertable_schema = c.materialization_hypertable_schema
           and d.hypertable_name = c.materialization_hypertable_name
         where c.view_schema = 'vigil' and c.view_name = 'points_hour'"""
    assert str(ts_conn.execute(query).fetchone()[0]) == "20 days, 0:00:00"  # type: ignore[index]


def test_one_point_per_series_and_time(ts_conn: Conn) -> None:
    """Inserts through the view vigil.points and vigil.put_points replace a stored point of
    the same series and time (the last value wins), also in a compressed chunk; the raw
    table takes no twin."""
    sid = ts_conn.execute("select id from vigil.series_ids('{once}', '{\"{}\"}')").fetchone()[0]  # type: ignore[index]
    now = ts_conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    at = now.replace(microsecond=0) - timedelta(days=3)
    ts_conn.execute("insert into vigil.points values (%s, %s, 1.5), (%s, %s, 2.5)",
                    (sid, at, sid, at + timedelta(seconds=1)))  # fmt: skip
    ts_conn.execute("insert into vigil.points values (%s, %s, 3.25)", (sid, at))
    put = "select vigil.put_points(%s::bigint[], %s::timestamptz[], %s::float8[])"
    assert ts_conn.execute(put, ([sid, sid], [at, at], [4.0, 5.0])).fetchone() == (1,)
    assert ts_conn.execute(put, ([sid], [at], [5.0])).fetchone() == (0,)  # the same: no write
    # A day of 200 series, compressed, then sent again unchanged (a retry): nothing is
    # written, no compressed batch taken apart; then one value changes.
    ids = ts_conn.execute(
        "select id from vigil.series_ids(array_fill('many'::text, array[200]), (select"
        " array_agg(jsonb_build_object('h', i)) from generate_series(1, 200) i))"
    )
    many = [r[0] for r in ids]
    day = ([s for s in many for _ in range(24)],
           [at + timedelta(hours=h, seconds=5) for _ in many for h in range(24)],
           [h / 8 for _ in many for h in range(24)])  # fmt: skip
    assert ts_conn.execute(put, day).fetchone() == (200 * 24,)
    ts_pack(ts_conn)(now)
    assert compressed_chunks(ts_conn) >= 1
    hot = "select count(*) from only {}"
    chunks = [r[0] for r in ts_conn.execute("select show_chunks('vigil.points_data')")]
    assert sum(ts_conn.execute(hot.format(c)).fetchone()[0] for c in chunks) == 0  # type: ignore[index]
    assert ts_conn.execute(put, day).fetchone() == (0,)
    assert sum(ts_conn.execute(hot.format(c)).fetchone()[0] for c in chunks) == 0  # type: ignore[index]
    assert ts_conn.execute(put, ([many[7]], [day[1][7 * 24 + 3]], [-2.0])).fetchone() == (1,)
    assert ts_conn.execute(
        "select value from vigil.points where series_id = %s and at = %s",
        (many[7], day[1][7 * 24 + 3]),
    ).fetchone() == (-2.0,)
    ts_conn.execute(put, ([sid], [at + timedelta(seconds=1)], [1 / 3]))
    rows = ts_conn.execute(
        "select at, value from vigil.points where series_id = %s order by at", (sid,)
    ).fetchall()
    assert rows == [(at, 5.0), (at + timedelta(seconds=1), 1 / 3)]
    with pytest.raises(psycopg.errors.UniqueViolation):
        ts_conn.execute(
            "insert into vigil.points_data (series_id, at, m, e) values (%s, %s, 6, 0)", (sid, at)
        )


def test_aggregates_compress_in_batches_across_series(ts_conn: Conn) -> None:
    """The hour and day aggregates are compressed ordered by (series_id, bucket), not one
    batch per series: a chunk of a few series' buckets is one compressed row; what the
    compressed aggregate returns for one series equals the raw points' buckets."""
    settings = ts_conn.execute(
        "select c.view_name::text, s.attname::text, s.segmentby_column_index,"
        "       s.orderby_column_index"
        "  from timescaledb_information.continuous_aggregates c"
        "  join timescaledb_information.compression_settings s"
        "    on s.hypertable_schema = c.materialization_hypertable_schema"
        "   and s.hypertable_name = c.materialization_hypertable_name"
        " where c.view_schema = 'vigil' order by 1, 4"
    ).fetchall()
    assert settings == [
        ("points_day", "series_id", None, 1), ("points_day", "bucket", None, 2),
        ("points_hour", "series_id", None, 1), ("points_hour", "bucket", None, 2),
    ]  # fmt: skip
    ids = [
        int(r[0])
        for r in ts_conn.execute(
            "select id from vigil.series_ids(%s::text[], %s::jsonb[]) order by ord",
            (["a", "b", "c"], ["{}", "{}", "{}"]),
        ).fetchall()
    ]
    now = ts_conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=20)
    ts_conn.execute(
        "insert into vigil.points (series_id, at, value)"
        " select s, %s + g * interval '5 minutes', (g * 7 %% 1000) / 8.0 + s"
        "   from unnest(%s::bigint[]) s, generate_series(0, 12 * 24 * 10 - 1) g",
        (start, ids),
    )
    ts_refresh(ts_conn)(now)
    ts_pack(ts_conn)(now)
    compressed = ts_conn.execute(
        "select z.schema_name, z.table_name"
        "  from timescaledb_information.continuous_aggregates a"
        "  join _timescaledb_catalog.hypertable h"
        "    on h.schema_name = a.materialization_hypertable_schema"
        "   and h.table_name = a.materialization_hypertable_name"
        "  join _timescaledb_catalog.chunk c on c.hypertable_id = h.id and not c.dropped"
        "  join _timescaledb_catalog.chunk z on z.id = c.compressed_chunk_id"
        " where a.view_schema = 'vigil' and a.view_name = 'points_hour'"
    ).fetchall()
    assert compressed  # hour chunks compressed
    batches = 0
    for schema, table in compressed:
        count = sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
        batches += int(ts_conn.execute(count).fetchone()[0])  # type: ignore[index]
    assert batches == len(compressed)  # one batch per compressed chunk, holding all three series
    got = ts_conn.execute(
        "select bucket, n, total, min_value, max_value from vigil.points_hour"
        " where series_id = %s and bucket < %s order by bucket",
        (ids[1], start + timedelta(days=10)),
    ).fetchall()
    want = ts_conn.execute(
        "select time_bucket('1 hour', at), count(*), sum(value), min(value), max(value)"
        "  from vigil.points where series_id = %s group by 1 order by 1",
        (ids[1],),
    ).fetchall()
    assert len(got) == 240 and got == want
