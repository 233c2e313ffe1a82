"""Shared series-aggregate cases, run in both lanes: portable (test_series_sql.py) and
TimescaleDB (test_series_timescale.py). Each lane passes an autocommit connection to a migrated
database and a `refresh(now)` that does what that mode's scheduler would do.

Points are written with plain INSERT ... unnest (the TimescaleDB lane's server has no COPY).
The reference reads every raw point (vigil.points_all: hot and packed alike).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.support import datasets

GRANULARITIES = ("minute", "hour", "day")

Conn = psycopg.Connection[Any]
Refresh = Callable[[datetime], None]

REFERENCE_SQL = """
select date_trunc(%(g)s, p.at, 'UTC') as bucket, avg(p.value), min(p.value), max(p.value),
       count(*)
  from vigil.points_all p join vigil.series s on s.id = p.series_id
 where s.name = %(name)s and s.labels @> coalesce(%(labels)s::jsonb, '{}')
   and p.at >= date_trunc(%(g)s, %(lo)s::timestamptz, 'UTC')
   and date_trunc(%(g)s, p.at, 'UTC') < %(hi)s
 group by 1 order by 1 desc
"""


def nab_series(file: str) -> list[tuple[datetime, float]]:
    """A NAB series (timestamp,value CSV), timestamps as UTC: the real file from
    ../shared/data/nab, or generated data of the same shape where it is absent
    (tests/support/datasets.py)."""
    return datasets.nab_series(file)


def shifted(points: list[tuple[datetime, float]], last: datetime) -> list[tuple[datetime, float]]:
    """The series moved in time so that its last point is at `last`."""
    delta = last - points[-1][0]
    return [(at + delta, value) for at, value in points]


def insert_points(
    conn: Conn, name: str, labels: dict[str, str], points: list[tuple[datetime, float]]
) -> int:
    row = conn.execute(
        "select id from vigil.series_ids(array[%s], array[%s::jsonb])",
        (name, json.dumps(labels)),
    ).fetchone()
    assert row is not None
    series_id = int(row[0])
    columns = ([series_id] * len(points), [p[0] for p in points], [p[1] for p in points])
    put = conn.execute(
        "select to_regprocedure('vigil.put_points(bigint[], timestamptz[], float8[])')"
    ).fetchone()
    if put and put[0]:  # one point per series and time: a point sent again replaces it
        conn.execute(
            "select vigil.put_points(%s::bigint[], %s::timestamptz[], %s::float8[])", columns
        )
    else:  # a schema before revision 0008 (migration tests)
        conn.execute(
            "insert into vigil.points (series_id, at, value)"
            " select * from unnest(%s::bigint[], %s::timestamptz[], %s::float8[])",
            columns,
        )
    return series_id


def averages(
    conn: Conn, name: str, labels: dict[str, str] | None, g: str, lo: datetime, hi: datetime
) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select * from vigil.series_averages(%s, %s::jsonb, %s, %s, %s)",
        (name, json.dumps(labels) if labels is not None else None, g, lo, hi),
    ).fetchall()


def reference(
    conn: Conn, name: str, labels: dict[str, str] | None, g: str, lo: datetime, hi: datetime
) -> list[tuple[Any, ...]]:
    params = {
        "g": g,
        "name": name,
        "labels": json.dumps(labels) if labels is not None else None,
        "lo": lo,
        "hi": hi,
    }
    return conn.execute(REFERENCE_SQL, params).fetchall()


def assert_same(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert want, "no buckets to compare: the window holds no points"
    assert [r[0] for r in got] == [r[0] for r in want]
    for g, w in zip(got, want, strict=True):
        assert g[1] == pytest.approx(w[1], rel=1e-9, abs=1e-9), g[0]
        assert (g[2], g[3], g[4]) == (w[2], w[3], w[4]), g[0]


def case_nab_averages_equal_raw_avg(conn: Conn, refresh: Refresh) -> None:
    """Two real NAB series under one name (two label sets), a refresh, then points in the
    newest (partial) buckets: every granularity equals avg() over the raw points, per label
    set and combined, newest first."""
    now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    end = now.replace(second=0, microsecond=0) - timedelta(hours=2)
    rds = shifted(nab_series("rds_cpu_utilization_cc0c53.csv"), end)
    ec2 = shifted(nab_series("ec2_cpu_utilization_825cc2.csv"), end - timedelta(minutes=3))
    insert_points(conn, "cpu", {"host": "db-1"}, rds)
    insert_points(conn, "cpu", {"host": "web-1"}, ec2)
    refresh(now)
    # After the refresh: the newest, partial buckets (the current minute, hour and day).
    fresh = [(now - timedelta(seconds=s), 40.0 + s) for s in (0.5, 0.25, 0.0)]
    insert_points(conn, "cpu", {"host": "db-1"}, fresh)
    lo, hi = rds[0][0] - timedelta(days=1), now + timedelta(minutes=1)
    for g in GRANULARITIES:
        for labels in (None, {"host": "db-1"}, {"host": "web-1"}):
            got = averages(conn, "cpu", labels, g, lo, hi)
            want = reference(conn, "cpu", labels, g, lo, hi)
            assert len(want) > 3
            assert_same(got, want)
        newest = averages(conn, "cpu", {"host": "db-1"}, g, lo, hi)[0]
        assert newest[4] >= 3  # the fresh points are in the newest bucket
        assert newest[3] == 40.5


def case_sub_range_and_empty(conn: Conn, refresh: Refresh) -> None:
    """A window in the middle of the data, whole buckets only; an unknown name is empty."""
    now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    taxi = shifted(nab_series("nyc_taxi.csv"), now.replace(minute=0, second=0, microsecond=0))
    insert_points(conn, "taxi", {}, taxi)
    refresh(now)
    lo = taxi[len(taxi) // 2][0] + timedelta(minutes=7)
    hi = lo + timedelta(days=3, minutes=11)
    for g in GRANULARITIES:
        assert_same(averages(conn, "taxi", {}, g, lo, hi), reference(conn, "taxi", {}, g, lo, hi))
    assert averages(conn, "nope", None, "hour", lo, hi) == []


def case_backfill_is_read_at_once(conn: Conn, refresh: Refresh) -> None:
    """Read your writes: points backfilled into old, already refreshed buckets (a sender that
    was offline), one two weeks back and one an hour back, count at once in every
    granularity, before any refresh, and equal avg() over the raw points; as they do after
    the next refresh."""
    now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    rds = shifted(nab_series("rds_cpu_utilization_cc0c53.csv"), now - timedelta(minutes=30))
    ec2 = shifted(nab_series("ec2_cpu_utilization_825cc2.csv"), now - timedelta(minutes=31))
    insert_points(conn, "cpu", {"host": "db-1"}, rds)
    insert_points(conn, "cpu", {"host": "web-1"}, ec2)
    refresh(now)
    lo, hi = rds[0][0], now + timedelta(minutes=1)
    before = {g: averages(conn, "cpu", None, g, lo, hi) for g in GRANULARITIES}
    late = [
        (rds[100][0] + timedelta(seconds=1), 1000.0),
        (now - timedelta(hours=1, microseconds=1), -500.0),
    ]
    insert_points(conn, "cpu", {"host": "db-1"}, late)
    for g in GRANULARITIES:
        got = averages(conn, "cpu", None, g, lo, hi)
        assert got != before[g], g
        assert sum(r[4] for r in got) == sum(r[4] for r in before[g]) + 2, g
        assert max(r[3] for r in got) == 1000.0 and min(r[2] for r in got) == -500.0, g
        assert_same(got, reference(conn, "cpu", None, g, lo, hi))
        assert_same(
            averages(conn, "cpu", {"host": "web-1"}, g, lo, hi),
            reference(conn, "cpu", {"host": "web-1"}, g, lo, hi),
        )
    refresh(now + timedelta(seconds=5))
    for g in GRANULARITIES:
        assert_same(averages(conn, "cpu", None, g, lo, hi), reference(conn, "cpu", None, g, lo, hi))


Pack = Callable[[datetime], None]


def raw_points(conn: Conn, series_id: int) -> list[tuple[datetime, float]]:
    rows = conn.execute(
        "select at, value from vigil.points_all where series_id = %s order by at, value",
        (series_id,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def case_packed_reads_equal_raw(conn: Conn, refresh: Refresh, pack: Pack) -> None:
    """Two weeks of real NAB points up to now, packed (compressed) up to the boundary of the
    mode: every granularity equals avg() over the raw points, across the boundary, and the
    points read back exactly (times to the microsecond, values to the bit)."""
    now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    rds = shifted(nab_series("rds_cpu_utilization_cc0c53.csv"), now - timedelta(minutes=2))
    # Microseconds and awkward floats: exact round trips, not decimal approximations.
    odd = [
        (rds[7][0] + timedelta(microseconds=123457), 0.1 + 0.2),
        (rds[9][0] + timedelta(microseconds=1), 5e-324),
        (rds[11][0] - timedelta(microseconds=999999), -1.2345678901234567e150),
        (rds[13][0] + timedelta(microseconds=2), 1 / 3),
    ]
    ec2 = shifted(nab_series("ec2_cpu_utilization_825cc2.csv"), now - timedelta(minutes=3))
    a = insert_points(conn, "cpu", {"host": "db-1"}, rds + odd)
    insert_points(conn, "cpu", {"host": "web-1"}, ec2)
    before = raw_points(conn, a)
    refresh(now)
    pack(now)
    assert raw_points(conn, a) == before
    lo, hi = rds[0][0] - timedelta(days=1), now + timedelta(minutes=1)
    for g in GRANULARITIES:
        for labels in (None, {"host": "db-1"}):
            assert_same(
                averages(conn, "cpu", labels, g, lo, hi), reference(conn, "cpu", labels, g, lo, hi)
            )
    # A window starting and ending inside packed days.
    mid_lo, mid_hi = rds[1000][0] + timedelta(minutes=7), rds[2000][0] + timedelta(minutes=11)
    for g in GRANULARITIES:
        assert_same(
            averages(conn, "cpu", None, g, mid_lo, mid_hi),
            reference(conn, "cpu", None, g, mid_lo, mid_hi),
        )
    # The newest point and the search's last time see packed and hot points alike.
    last = conn.execute("select * from vigil._series_last(%s, %s)", (a, rds[500][0])).fetchone()
    assert last == (rds[500][1], rds[500][0])
    found = conn.execute("select last_at from vigil.series_search('db-1')").fetchone()
    assert found == (rds[-1][0],)
    w_lo, w_hi = rds[5][0], rds[3000][0]
    window = conn.execute(
        "select count(*), sum(value) from vigil.series_points(%s, %s, %s)", (a, w_lo, w_hi)
    ).fetchone()
    want = [v for at, v in rds + odd if w_lo <= at < w_hi]
    assert window is not None and window[0] == len(want) == 2995 + 4
    assert window[1] == pytest.approx(sum(want), rel=1e-12)


def case_late_points_in_packed_days(conn: Conn, refresh: Refresh, pack: Pack) -> None:
    """Points sent late into days that are already packed (a sender back after a week): read
    at once in every granularity, exactly, before and after the next pack merges them. Then
    a point sent again, with another value, for a packed time: after the next pack it has
    replaced the packed one (one point per series and time; TimescaleDB replaces it at once,
    portable mode reads both until then)."""
    now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    taxi = shifted(nab_series("nyc_taxi.csv"), now - timedelta(minutes=1))[-2000:]
    sid = insert_points(conn, "taxi", {}, taxi)
    refresh(now)
    pack(now)
    lo, hi = taxi[0][0], now + timedelta(minutes=1)
    before = {g: averages(conn, "taxi", {}, g, lo, hi) for g in GRANULARITIES}
    late = [
        (taxi[100][0] + timedelta(seconds=1), 100000.0),
        (taxi[1500][0] - timedelta(microseconds=5), -7.25),
    ]
    insert_points(conn, "taxi", {}, late)
    for step in ("late", "packed again"):
        for g in GRANULARITIES:
            got = averages(conn, "taxi", {}, g, lo, hi)
            assert sum(r[4] for r in got) == sum(r[4] for r in before[g]) + 2, (step, g)
            assert max(r[3] for r in got) == 100000.0 and min(r[2] for r in got) == -7.25
            assert_same(got, reference(conn, "taxi", {}, g, lo, hi))
        refresh(now + timedelta(seconds=5))
        pack(now + timedelta(seconds=5))
    assert len(raw_points(conn, sid)) == 2002
    insert_points(conn, "taxi", {}, [(taxi[101][0], 123456.5)])  # sent again
    refresh(now + timedelta(seconds=10))
    pack(now + timedelta(seconds=10))
    raw = raw_points(conn, sid)
    assert len(raw) == 2002 and (taxi[101][0], 123456.5) in raw
    assert (taxi[101][0], taxi[101][1]) not in raw
    for g in GRANULARITIES:
        got = averages(conn, "taxi", {}, g, lo, hi)
        assert sum(r[4] for r in got) == sum(r[4] for r in before[g]) + 2, g
        assert max(r[3] for r in got) == 123456.5
        assert_same(got, reference(conn, "taxi", {}, g, lo, hi))
