"""Revision 0005 packs the series points a database holds in the layout before it (every point
in vigil.points): the points of past days move into vigil.points_packed, and every read
returns what it returned before the upgrade."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from alembic import command

from tests.conftest import new_database
from tests.series import cases
from tests.support.timescale import PGlite
from vigil.cluster import Cluster
from vigil.migrate import alembic_config


@pytest.fixture
def empty_url(pg_cluster: Cluster) -> Iterator[str]:
    with new_database(pg_cluster) as url:
        yield url


def reads(c: psycopg.Connection[Any], lo: Any, hi: Any) -> dict[str, list[tuple[Any, ...]]]:
    out = {
        f"{g} {labels}": cases.averages(c, "cpu", labels, g, lo, hi)
        for g in cases.GRANULARITIES
        for labels in (None, {"host": "db-1"}, {"host": "web-1"})
    }
    out["search"] = c.execute(
        "select name, labels, last_at from vigil.series_search('')"
    ).fetchall()
    return out


def assert_same_reads(
    after: dict[str, list[tuple[Any, ...]]], before: dict[str, list[tuple[Any, ...]]]
) -> None:
    """Every read of `before` (each with rows enough to matter) reads the same after."""
    for key, rows in before.items():
        if key == "search":
            assert after[key] == rows
            continue
        assert len(rows) > 10, key
        cases.assert_same(after[key], rows)


def test_old_layout_points_are_packed_and_read_the_same(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "0004")
    with psycopg.connect(empty_url, autocommit=True) as c:
        now = c.execute("select now()").fetchone()[0]  # type: ignore[index]
        end = now - timedelta(minutes=10)
        rds = cases.shifted(cases.nab_series("rds_cpu_utilization_cc0c53.csv"), end)
        ec2 = cases.shifted(cases.nab_series("ec2_cpu_utilization_825cc2.csv"), end)
        a = cases.insert_points(c, "cpu", {"host": "db-1"}, rds)
        b = cases.insert_points(c, "cpu", {"host": "web-1"}, ec2)
        c.execute("select vigil.refresh_series_rollups(%s, '{}')", (now,))
        # Late points in an old, already rolled-up hour (read raw until the next refresh).
        cases.insert_points(c, "cpu", {"host": "db-1"}, [(rds[50][0], -1.0)])
        lo, hi = rds[0][0] - timedelta(days=1), now + timedelta(hours=1)
        before = reads(c, lo, hi)
        raw = {
            sid: c.execute(
                "select at, value from vigil.points where series_id = %s order by at, value",
                (sid,),
            ).fetchall()
            for sid in (a, b)
        }

    command.upgrade(alembic_config(empty_url), "head")
    with psycopg.connect(empty_url, autocommit=True) as c:
        until = c.execute("select until from vigil.points_packed_until").fetchone()[0]  # type: ignore[index]
        assert until >= now - timedelta(days=1, hours=2)
        assert c.execute(
            "select count(*) from vigil.points where at < %s", (until,)
        ).fetchone() == (0,)
        packed = c.execute("select count(*), sum(n) from vigil.points_packed").fetchone()
        assert packed is not None and packed[0] >= 2 * 13 and packed[1] > 7000
        for sid in (a, b):
            assert [tuple(r) for r in cases.raw_points(c, sid)] == raw[sid]
        after = reads(c, lo, hi)
        assert after.keys() == before.keys()
        assert_same_reads(after, before)


@pytest.mark.timescale
def test_timescale_old_points_are_compressed_and_read_the_same(ts_empty: PGlite) -> None:
    """TimescaleDB mode: the upgrade turns compression on for the existing hypertable and
    aggregates; once its policies ran, the old chunks are compressed and every read is the
    same."""
    command.upgrade(alembic_config(ts_empty.url), "0004")
    with psycopg.connect(ts_empty.dsn, autocommit=True) as c:
        now = c.execute("select now()").fetchone()[0]  # type: ignore[index]
        end = now - timedelta(minutes=10)
        rds = cases.shifted(cases.nab_series("rds_cpu_utilization_cc0c53.csv"), end)
        ec2 = cases.shifted(cases.nab_series("ec2_cpu_utilization_825cc2.csv"), end)
        cases.insert_points(c, "cpu", {"host": "db-1"}, rds)
        cases.insert_points(c, "cpu", {"host": "web-1"}, ec2)
        for tier in cases.GRANULARITIES:
            c.execute(
                f"call refresh_continuous_aggregate('vigil.points_{tier}', null,"
                f" date_trunc('{tier}', now(), 'UTC'))"
            )
        lo, hi = rds[0][0] - timedelta(days=1), now + timedelta(hours=1)
        before = reads(c, lo, hi)

    command.upgrade(alembic_config(ts_empty.url), "head")
    with psycopg.connect(ts_empty.dsn, autocommit=True) as c:
        jobs = c.execute(
            "select job_id from timescaledb_information.jobs"
            " where proc_name = 'policy_compression' and hypertable_schema = 'vigil'"
            "   and hypertable_name like 'points%' order by job_id"
        ).fetchall()
        assert len(jobs) == 3  # raw points, hours, days (minutes are read from raw points)
        for (job,) in jobs:
            c.execute("call run_job(%s)", (job,))
        compressed = c.execute(
            "select count(*) from timescaledb_information.chunks"
            " where hypertable_schema = 'vigil' and hypertable_name = 'points_data'"
            "   and is_compressed"
        ).fetchone()
        assert compressed is not None and compressed[0] >= 13
        after = reads(c, lo, hi)
        assert_same_reads(after, before)
