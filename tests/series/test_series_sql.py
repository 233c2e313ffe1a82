"""Series aggregates in portable mode: the shared cases, late points, jobs and retention."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.series import cases

Conn = psycopg.Connection[Any]


def portable_refresh(conn: Conn) -> cases.Refresh:
    def refresh(now: datetime) -> None:
        conn.execute("select vigil.refresh_series_rollups(%s, '{}')", (now,))

    return refresh


def test_nab_averages_equal_raw_avg(conn: Conn) -> None:
    cases.case_nab_averages_equal_raw_avg(conn, portable_refresh(conn))


def test_sub_range_and_empty(conn: Conn) -> None:
    cases.case_sub_range_and_empty(conn, portable_refresh(conn))


def test_backfill_is_read_at_once_and_folded_in_by_the_next_refresh(conn: Conn) -> None:
    cases.case_backfill_is_read_at_once(conn, portable_refresh(conn))
    assert conn.execute("select count(*) from vigil.points_invalidations").fetchone() == (0,)


def portable_pack(conn: Conn) -> cases.Pack:
    """The pack job, with hour sums from 200 points a day (the 5-minute NAB series get them,
    the 30-minute taxi series is read from its raw points)."""

    def pack(now: datetime) -> None:
        config = '{"after": "1 hour", "hour_summary_from": 200}'
        conn.execute("select vigil.pack_series_points(%s, %s)", (now, config))

    return pack


def test_packed_reads_equal_raw(conn: Conn) -> None:
    cases.case_packed_reads_equal_raw(conn, portable_refresh(conn), portable_pack(conn))
    hot, packed, hourly = conn.execute(
        "select (select count(*) from vigil.points),"
        " (select count(*) from vigil.points_packed),"
        " (select count(*) from vigil.points_packed where hour_n is not null)"
    ).fetchone()  # type: ignore[misc]
    assert packed >= 2 * 13 and hourly >= 13 and hot < 2 * 400


def test_late_points_in_packed_days(conn: Conn) -> None:
    cases.case_late_points_in_packed_days(conn, portable_refresh(conn), portable_pack(conn))
    # Merged by the second pack: nothing before the boundary is left in the hot table.
    assert conn.execute(
        "select count(*) from vigil.points where at < (select until from vigil.points_packed_until)"
    ).fetchone() == (0,)


def test_pack_boundary_and_rollups(conn: Conn) -> None:
    """The pack moves whole UTC days ended over `after` ago, leaves the rollups only after
    the boundary, and the refresh never writes buckets before it."""
    now = datetime(2026, 3, 10, 0, 30, tzinfo=UTC)
    pts = [(now - timedelta(minutes=m), float(m)) for m in range(0, 3 * 24 * 60, 10)]
    cases.insert_points(conn, "b", {}, pts)
    conn.execute("select vigil.refresh_series_rollups(%s, '{}')", (now,))
    # Half past midnight: yesterday ended 30 minutes ago, so it stays hot (after = 1 hour).
    assert conn.execute("select vigil.pack_series_points(%s, '{}')", (now,)).fetchone() == (2,)
    until = conn.execute("select until from vigil.points_packed_until").fetchone()
    assert until == (datetime(2026, 3, 9, tzinfo=UTC),)
    assert conn.execute(
        "select count(*) from vigil.points where at < '2026-03-09Z'"
    ).fetchone() == (0,)
    assert conn.execute("select min(bucket) from vigil.points_minute").fetchone() == (
        datetime(2026, 3, 9, tzinfo=UTC),
    )
    conn.execute("select vigil.refresh_series_rollups(%s, '{}')", (now + timedelta(hours=1),))
    assert conn.execute(
        "select (select count(*) from vigil.points_minute where bucket < '2026-03-09Z'),"
        " (select count(*) from vigil.points_hour where bucket < '2026-03-09Z'),"
        " (select count(*) from vigil.points_day where bucket < '2026-03-09Z')"
    ).fetchone() == (0, 0, 0)
    lo, hi = now - timedelta(days=4), now
    for g in cases.GRANULARITIES:
        cases.assert_same(
            cases.averages(conn, "b", {}, g, lo, hi), cases.reference(conn, "b", {}, g, lo, hi)
        )
    # Deleting the series removes its hot and packed points alike, and counts both.
    deleted = conn.execute("select vigil.delete_series(id) from vigil.series where name = 'b'")
    assert deleted.fetchone() == (len(pts),)
    assert conn.execute("select count(*) from vigil.points_all").fetchone() == (0,)


def test_jobs_registered_and_retention_per_tier(conn: Conn) -> None:
    jobs = dict(
        conn.execute(
            "select job, config from vigil.portable_jobs"
            " where job in ('refresh_series_rollups', 'prune_series', 'pack_series_points')"
        ).fetchall()
    )
    assert set(jobs) == {"refresh_series_rollups", "prune_series", "pack_series_points"}
    assert jobs["prune_series"]["hour"] == "2 years"
    assert jobs["pack_series_points"]["after"] == "1 hour"
    now: datetime = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    old = [(now - timedelta(days=d), float(d)) for d in (400, 100, 1)]
    sid = cases.insert_points(conn, "x", {}, old)
    assert conn.execute(
        "select vigil.run_due_jobs(%s, array['refresh_series_rollups', 'pack_series_points'])",
        (now + timedelta(hours=2),),
    ).fetchone() == (2,)
    # The pack job packed the three days (each a row of one point).
    assert conn.execute("select count(*) from vigil.points").fetchone() == (0,)
    assert conn.execute("select count(*) from vigil.points_packed").fetchone() == (3,)
    conn.execute(
        "select vigil.prune_series(%s, %s)",
        (now, '{"points": "30 days", "minute": "30 days", "hour": "200 days", "day": "2 years"}'),
    )
    counts = conn.execute(
        "select count(*) filter (where gaps is not null),"
        " count(*) filter (where hour_n is not null), count(*) from vigil.points_packed"
    ).fetchone()
    assert counts == (1, 1, 3)
    lo, hi = now - timedelta(days=500), now + timedelta(days=1)

    def values(g: str) -> list[float]:
        return sorted(r[1] for r in cases.averages(conn, "x", {}, g, lo, hi))

    assert values("minute") == [1.0]  # raw points: 30 days
    assert values("hour") == [1.0, 100.0]  # hour sums: 200 days
    assert values("day") == [1.0, 100.0, 400.0]  # day sums: 2 years
    assert [v for _, v in cases.raw_points(conn, sid)] == [1.0]


def test_series_identity_and_delete(conn: Conn) -> None:
    a = cases.insert_points(conn, "m", {"b": "2", "a": "1"}, [(datetime.now().astimezone(), 1.0)])
    b = cases.insert_points(conn, "m", {"a": "1", "b": "2"}, [(datetime.now().astimezone(), 2.0)])
    c = cases.insert_points(conn, "m", {}, [(datetime.now().astimezone(), 3.0)])
    assert a == b != c
    assert conn.execute("select vigil.delete_series(%s)", (a,)).fetchone() == (2,)
    assert conn.execute("select count(*) from vigil.series").fetchone() == (1,)


def test_series_search_terms(conn: Conn) -> None:
    now = datetime.now().astimezone()
    cases.insert_points(conn, "cpu", {"host": "web-1"}, [(now, 1.0)])
    cases.insert_points(conn, "cpu", {"host": "db-1"}, [(now, 1.0)])
    cases.insert_points(conn, "load", {"host": "web-1"}, [(now, 1.0)])

    def search(q: str) -> list[tuple[str, str]]:
        rows = conn.execute("select name, labels from vigil.series_search(%s)", (q,)).fetchall()
        return [(r[0], r[1]["host"]) for r in rows]

    assert search("") == [("cpu", "db-1"), ("cpu", "web-1"), ("load", "web-1")]
    assert search("cpu host=web") == [("cpu", "web-1")]
    assert search("  WEB-1 ") == [("cpu", "web-1"), ("load", "web-1")]
    assert search("nothing") == []


def test_rule_observations_read_across_the_packed_boundary(conn: Conn) -> None:
    """Alert rules whose window reaches into packed days see the packed points: each
    aggregate equals the direct one over every raw point, and 'last' finds a packed point."""
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    taxi = cases.shifted(cases.nab_series("nyc_taxi.csv"), now - timedelta(minutes=1))[-200:]
    cases.insert_points(conn, "taxi", {}, taxi)
    old = cases.shifted(
        cases.nab_series("ec2_cpu_utilization_825cc2.csv")[:50], now - timedelta(days=3)
    )
    cases.insert_points(conn, "quiet", {}, old)  # stopped sending three days ago
    conn.execute("select vigil.refresh_series_rollups(%s, '{}')", (now,))
    conn.execute("select vigil.pack_series_points(%s, '{}')", (now,))
    assert conn.execute("select count(*) from vigil.points where series_id = 2").fetchone() == (0,)
    window = timedelta(days=2, hours=5)
    for agg in ("avg", "min", "max", "sum", "count", "rate", "last"):
        for name in ("taxi", "quiet"):
            conn.execute(
                "insert into vigil.alert_rules (name, source, match_name, agg, agg_window, op,"
                " threshold) values (%s, 'series', %s, %s, %s, '>', 1e12)",
                (f"{name}-{agg}", name, agg, window),
            )
    rows = conn.execute(
        "select r.name, o.value, o.last_at from vigil.alert_rules r,"
        " vigil.rule_observations(r, %s) o where r.source = 'series'",
        (now,),
    ).fetchall()
    got = {str(r[0]): (r[1], r[2]) for r in rows}
    inside = [(at, v) for at, v in taxi if now - window < at <= now]
    values = [v for _, v in inside]
    span = (inside[-1][0] - inside[0][0]).total_seconds()
    increase = sum(b - a if b >= a else b for a, b in itertools.pairwise(values))
    want = {
        "avg": sum(values) / len(values),
        "min": min(values),
        "max": max(values),
        "sum": sum(values),
        "count": float(len(values)),
        "rate": increase / span,
        "last": taxi[-1][1],
    }
    assert len(inside) > 48 * 2  # more than the two days packed before the boundary
    for agg, value in want.items():
        assert got[f"taxi-{agg}"][0] == pytest.approx(value, rel=1e-9), agg
        assert got[f"taxi-{agg}"][1] == taxi[-1][0], agg
    # The quiet series: nothing in the window, but its last point (packed) is known.
    assert got["quiet-avg"] == (None, old[-1][0])
    assert got["quiet-count"] == (0.0, old[-1][0])
    assert got["quiet-last"] == (None, old[-1][0])
