"""Revision 0007 stores two gaps for a regular packed day instead of one per point. Days
packed before it (one gap per point) stay as they are and read the same; a late point into
such a day is merged by the next pack, and every read stays exact."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from alembic import command

from tests.conftest import new_database
from tests.migration.test_series_storage_migration import assert_same_reads, reads
from tests.series import cases
from vigil.cluster import Cluster
from vigil.migrate import alembic_config

Conn = psycopg.Connection[Any]


@pytest.fixture
def empty_url(pg_cluster: Cluster) -> Iterator[str]:
    with new_database(pg_cluster) as url:
        yield url


def one_gap_per_point(c: Conn) -> tuple[int, int]:
    """(packed days with raw points, of them those with one gap per point)."""
    row = c.execute(
        "select count(*), count(*) filter (where cardinality(gaps) = n)"
        "  from vigil.points_packed where gaps is not null"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_days_packed_before_read_the_same_and_repack_compact(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "0006")
    with psycopg.connect(empty_url, autocommit=True) as c:
        now = c.execute("select now()").fetchone()[0]  # type: ignore[index]
        end = now - timedelta(minutes=10)
        rds = cases.shifted(cases.nab_series("rds_cpu_utilization_cc0c53.csv"), end)
        ec2 = cases.shifted(cases.nab_series("ec2_cpu_utilization_825cc2.csv"), end)
        a = cases.insert_points(c, "cpu", {"host": "db-1"}, rds)
        b = cases.insert_points(c, "cpu", {"host": "web-1"}, ec2)
        c.execute("select vigil.refresh_series_rollups(%s, '{}')", (now,))
        c.execute("select vigil.pack_series_points(%s, '{}')", (now,))
        days, old_form = one_gap_per_point(c)
        assert days > 10 and old_form == days
        lo, hi = rds[0][0] - timedelta(days=1), now + timedelta(hours=1)
        before = reads(c, lo, hi)
        raw = {sid: cases.raw_points(c, sid) for sid in (a, b)}

    command.upgrade(alembic_config(empty_url), "head")
    with psycopg.connect(empty_url, autocommit=True) as c:
        assert one_gap_per_point(c) == (days, days)  # not rewritten
        assert_same_reads(reads(c, lo, hi), before)
        assert {sid: cases.raw_points(c, sid) for sid in (a, b)} == raw
        # A late point into an old-form day: merged by the next pack.
        late = (rds[100][0] + timedelta(seconds=1), -1.0)
        cases.insert_points(c, "cpu", {"host": "db-1"}, [late])
        c.execute("select vigil.pack_series_points(%s, '{}')", (now,))
        assert c.execute(
            "select count(*) from vigil.points"
            " where at < (select until from vigil.points_packed_until)"
        ).fetchone() == (0,)
        assert cases.raw_points(c, a) == sorted([*raw[a], late])
        assert cases.raw_points(c, b) == raw[b]
        for g in cases.GRANULARITIES:
            for labels in (None, {"host": "db-1"}):
                cases.assert_same(
                    cases.averages(c, "cpu", labels, g, lo, hi),
                    cases.reference(c, "cpu", labels, g, lo, hi),
                )
