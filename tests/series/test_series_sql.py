"""Series aggregates in portable mode: the shared cases, late points, jobs and retention."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

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


def test_jobs_registered_and_retention_per_tier(conn: Conn) -> None:
    jobs = dict(
        conn.execute(
            "select job, config from vigil.portable_jobs"
            " where job in ('refresh_series_rollups', 'prune_series')"
        ).fetchall()
    )
    assert set(jobs) == {"refresh_series_rollups", "prune_series"}
    assert jobs["prune_series"]["hour"] == "2 years"
    now: datetime = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    old = [(now - timedelta(days=d), float(d)) for d in (400, 100, 1)]
    cases.insert_points(conn, "x", {}, old)
    assert conn.execute("select vigil.run_due_jobs(%s)", (now + timedelta(hours=2),)).fetchone()
    assert conn.execute("select count(*) from vigil.points_hour").fetchone() == (3,)
    conn.execute(
        "select vigil.prune_series(%s, %s)",
        (now, '{"points": "30 days", "minute": "30 days", "hour": "200 days", "day": "2 years"}'),
    )
    counts = conn.execute(
        "select (select count(*) from vigil.points), (select count(*) from vigil.points_minute),"
        " (select count(*) from vigil.points_hour), (select count(*) from vigil.points_day)"
    ).fetchone()
    assert counts == (1, 1, 2, 3)


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
