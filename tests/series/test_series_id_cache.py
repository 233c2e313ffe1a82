"""The API's series-id cache against a database that changed under it: dropped and recreated
under the same name (from the same template), or its series ids restarted (a restore). The
points of every write must belong to the series they were sent for."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from psycopg import sql

from api.series.store import SeriesIdCache
from tests.conftest import TEMPLATE, ApiServer, free_port, make_settings
from vigil import tokens
from vigil.cluster import Cluster

Conn = psycopg.Connection[Any]
NOW = datetime.now(UTC).replace(microsecond=0)


def send(api: ApiServer, token: str, value: float, seconds: int) -> None:
    """One batch of two points, series cached{host=a} and cached{host=b}; retried while the
    pool replaces connections that a dropped database closed."""
    at = (NOW - timedelta(seconds=seconds)).isoformat()
    body = [
        {"name": "cached", "labels": {"host": host}, "value": value, "timestamp": at}
        for host in ("a", "b")
    ]
    deadline = time.monotonic() + 10
    while True:
        r = httpx.post(
            f"{api.url}/v1/metrics/batch",
            json=body,
            headers={"authorization": f"Bearer {token}"},
        )
        if r.status_code < 500 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code < 300 and r.json()["accepted"] == 2, r.text


def points(conn: Conn) -> list[tuple[str, str, int, float]]:
    """(name, host, points, sum of values) per series, every series of the database."""
    rows = conn.execute(
        "select s.name, coalesce(s.labels->>'host', ''), count(p.value), coalesce(sum(p.value), 0)"
        "  from vigil.series s left join vigil.points p on p.series_id = s.id"
        " group by 1, 2 order by 1, 2"
    ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


@contextmanager
def recreatable(cluster: Cluster) -> Iterator[tuple[str, Any]]:
    """(DSN, recreate) of a database copied from the test template; recreate() drops it
    (closing its connections) and copies the template again under the same name."""
    name = "cache_" + uuid.uuid4().hex[:10]
    admin = cluster.dsn("postgres")

    def create() -> None:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(
                sql.SQL("create database {} template {}").format(
                    sql.Identifier(name), sql.Identifier(TEMPLATE)
                )
            )

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
            )

    def recreate() -> None:
        drop()
        create()

    create()
    try:
        yield cluster.dsn(name), recreate
    finally:
        drop()


def test_cache_forgets_a_database_recreated_under_the_same_name(pg_cluster: Cluster) -> None:
    """Dropped and copied again from the template: same name, same copied sequence values,
    series ids from 1 again; the series created first now own the ids the API cached."""
    with recreatable(pg_cluster) as (dsn, recreate):
        with psycopg.connect(dsn, autocommit=True) as conn:
            token = tokens.create(conn, "cache")
        with ApiServer(make_settings(dsn, VIGIL_PORT=str(free_port()))) as api:
            send(api, token, 1.0, 30)
            send(api, token, 2.0, 20)  # from the cache
            with psycopg.connect(dsn, autocommit=True) as conn:
                assert points(conn) == [("cached", "a", 2, 3.0), ("cached", "b", 2, 3.0)]
            recreate()
            with psycopg.connect(dsn, autocommit=True) as conn:
                token = tokens.create(conn, "cache")
                # More series than before, so the highest id did not fall: only the
                # database itself tells the two apart.
                conn.execute(
                    "select vigil.series_ids(array['other', 'other', 'other'],"
                    ' array[\'{"host": "a"}\', \'{"host": "b"}\', \'{"host": "c"}\']::jsonb[])'
                )
            send(api, token, 4.0, 10)
            with psycopg.connect(dsn, autocommit=True) as conn:
                assert points(conn) == [
                    ("cached", "a", 1, 4.0),
                    ("cached", "b", 1, 4.0),
                    ("other", "a", 0, 0.0),
                    ("other", "b", 0, 0.0),
                    ("other", "c", 0, 0.0),
                ]


def test_cache_forgets_series_ids_that_restarted(api: ApiServer, token: str, conn: Conn) -> None:
    """Series ids reissued from 1 without a delete being counted (a restore of an older
    dump, triggers off): the highest id issued fell, so the cache is dropped."""
    send(api, token, 1.0, 30)
    send(api, token, 2.0, 20)
    with conn.transaction():
        conn.execute("set local session_replication_role = replica")  # as pg_restore does
        conn.execute("delete from vigil.points")
        conn.execute("delete from vigil.series")
        conn.execute("select setval(pg_get_serial_sequence('vigil.series', 'id'), 1, false)")
    conn.execute("select vigil.series_ids(array['other'], array['{}']::jsonb[])")
    send(api, token, 4.0, 10)
    assert points(conn) == [("cached", "a", 1, 4.0), ("cached", "b", 1, 4.0), ("other", "", 0, 0)]


def test_each_install_starts_the_epoch_at_its_own_value(conn: Conn) -> None:
    """vigil.series_forgotten starts at a random value (below 2^52), so that a cluster or
    schema created again from scratch (same oids, ids from 1) differs from the one an API
    cached ids of."""
    row = conn.execute("select is_called, last_value from vigil.series_forgotten").fetchone()
    assert row is not None and row[0] and 1_000 < row[1] <= 2**52


def test_cache_validation_rules() -> None:
    cache = SeriesIdCache(limit=3)
    cache.validate("h:1/db", 7, 100, 2)
    cache.ids[("a", "{}")] = 1
    cache.validate("h:1/db", 7, 100, 5)  # more series: still valid
    assert cache.ids == {("a", "{}"): 1}
    cache.validate("h:1/db", 7, 101, 5)  # another database under the same name
    assert cache.ids == {}
    cache.ids[("a", "{}")] = 1
    cache.validate("h:1/db", 8, 101, 5)  # series deleted
    assert cache.ids == {}
    cache.ids[("a", "{}")] = 1
    cache.validate("h:1/db", 8, 101, 4)  # ids restarted
    assert cache.ids == {}
