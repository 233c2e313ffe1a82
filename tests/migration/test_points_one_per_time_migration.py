"""Revision 0008 gives the raw points one row per series and time (a unique index): points a
sender stored twice before (a retried batch) become one, in both modes, compressed chunks
included, and every other point stays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from alembic import command

from tests.conftest import new_database
from tests.support.timescale import PGlite
from vigil.cluster import Cluster
from vigil.migrate import alembic_config

Conn = psycopg.Connection[Any]
AT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


@pytest.fixture
def empty_url(pg_cluster: Cluster) -> Iterator[str]:
    with new_database(pg_cluster) as url:
        yield url


def twice(c: Conn) -> list[tuple[Any, ...]]:
    """Stores 100 points of two series, 10 of them twice (same value), one three times."""
    sids = [
        r[0]
        for r in c.execute("select id from vigil.series_ids('{a,b}', %s::jsonb[])", (["{}", "{}"],))
    ]
    points = [(sids[i % 2], AT + timedelta(seconds=10 * i), i / 4) for i in range(100)]
    again = points[:10] + points[:1]
    c.execute(
        "insert into vigil.points (series_id, at, value)"
        " select * from unnest(%s::bigint[], %s::timestamptz[], %s::float8[])",
        tuple(map(list, zip(*(points + again), strict=True))),
    )
    return sorted(points)


def after(c: Conn) -> list[tuple[Any, ...]]:
    return c.execute("select series_id, at, value from vigil.points order by 1, 2").fetchall()


def test_portable_twins_become_one(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "0007")
    with psycopg.connect(empty_url, autocommit=True) as c:
        points = twice(c)
        assert c.execute("select count(*) from vigil.points").fetchone() == (111,)
    command.upgrade(alembic_config(empty_url), "head")
    with psycopg.connect(empty_url, autocommit=True) as c:
        assert after(c) == points
        indexes = c.execute(
            "select indexname from pg_indexes where schemaname = 'vigil' and tablename = 'points'"
        ).fetchall()
        assert indexes == [("points_series_at_key",)]


@pytest.mark.timescale
def test_timescale_twins_become_one_also_compressed(ts_empty: PGlite) -> None:
    command.upgrade(alembic_config(ts_empty.url), "0007")
    with psycopg.connect(ts_empty.dsn, autocommit=True) as c:
        points = twice(c)
        c.execute("select compress_chunk(c) from show_chunks('vigil.points_data') c")
        # A twin written after compression lands beside the compressed batch.
        c.execute("insert into vigil.points (series_id, at, value) values (%s, %s, %s)", points[-1])
        assert c.execute("select count(*) from vigil.points").fetchone() == (112,)
    command.upgrade(alembic_config(ts_empty.url), "head")
    with psycopg.connect(ts_empty.dsn, autocommit=True) as c:
        assert after(c) == points
        indexes = c.execute(
            "select indexdef from pg_indexes where schemaname = 'vigil'"
            " and tablename = 'points_data' and indexname like 'points_data_series%%'"
        ).fetchall()
        assert indexes == [
            ("CREATE UNIQUE INDEX points_data_series_at_key ON vigil.points_data"
             " USING btree (series_id, at)",)
        ]  # fmt: skip
