"""sql/55_requests.sql in both modes: ingest and dedupe, search filters and keyset paging,
retention (portable job and partitions; TimescaleDB policies), compression, and the API's
store (COPY, or a JSON array where the server has no COPY: the TimescaleDB lane)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from api.requests.store import Origin, Store, dedupe_key, json_row
from tests.support.timescale import is_hypertable, policy
from vigil.accesslog import Record, parse_line

Conn = psycopg.Connection[tuple[object, ...]]
NOW = datetime.now(UTC).replace(microsecond=0)


def clf(at: datetime, ip: str = "10.0.0.1", path: str = "/", status: int = 200) -> bytes:
    return (
        f'{ip} - - [{at:%d/%b/%Y:%H:%M:%S} +0000] "GET {path} HTTP/1.1" {status} 10 "-" "t"'
    ).encode()


def ingest(conn: Conn, lines: list[bytes], host: str = "web-1", offsets: bool = True) -> Any:
    rows = [
        json_row(
            parse_line(line),
            dedupe_key(line, Origin(host, "f1" if offsets else None, i if offsets else None)),
            host,
        )
        for i, line in enumerate(lines)
    ]
    return conn.execute(
        "select * from vigil.requests_ingest(%s::jsonb)", (json.dumps(rows),)
    ).fetchone()


def search(conn: Conn, **kw: Any) -> list[tuple[Any, ...]]:
    args = sql.SQL(", ").join(
        sql.SQL("{} => {}").format(sql.Identifier(f"p_{k}"), sql.Placeholder(k)) for k in kw
    )
    query = sql.SQL("select at, key, path, status, host(ip) from vigil.requests_search({})").format(
        args
    )
    return conn.execute(query, kw).fetchall()


def test_ingest_dedupes_but_keeps_distinct_identical_lines(db: Conn) -> None:
    same = clf(NOW - timedelta(minutes=1), path="/health")
    lines = [same, same, same, clf(NOW, path="/other")]
    # three identical health checks in one second at different offsets: all kept
    assert ingest(db, lines) == (4, 0, 0, 0)
    # the batch sent again: nothing stored twice
    assert ingest(db, lines) == (0, 4, 0, 0)
    # without a position, identical lines are one request
    assert ingest(db, [same, same], host="web-2", offsets=False) == (1, 1, 0, 0)
    # too old, too new
    assert ingest(db, [clf(NOW - timedelta(days=20)), clf(NOW + timedelta(days=3))]) == (
        0, 0, 1, 1
    )  # fmt: skip
    assert db.execute("select count(*) from vigil.requests").fetchone() == (5,)


def test_search_filters_and_keyset_paging(db: Conn) -> None:
    lines = [
        clf(NOW - timedelta(seconds=i), ip=f"10.0.{i % 3}.{i}", path=f"/api/{i}",
            status=(200, 404, 503)[i % 3])
        for i in range(30)
    ] + [clf(NOW, ip="2001:db8::5", path="/static/x.css")]  # fmt: skip
    assert ingest(db, lines)[0] == 31
    assert len(search(db, status_min=500, status_max=599)) == 10
    assert {r[3] for r in search(db, status_min=404, status_max=404)} == {404}
    assert {r[4] for r in search(db, ip="10.0.1.0/24")} == {f"10.0.1.{i}" for i in range(1, 30, 3)}
    assert [r[4] for r in search(db, ip="2001:db8::/32")] == ["2001:db8::5"]
    assert [r[4] for r in search(db, ip="10.0.2.5/32")] == ["10.0.2.5"]
    assert [r[2] for r in search(db, path="/static/")] == ["/static/x.css"]
    assert search(db, path="/api/1_") == []  # the prefix is literal, not a LIKE pattern
    assert search(db, host="web-1", path="/api/2", to=NOW - timedelta(seconds=20)) != []
    assert search(db, host="nobody") == []
    # keyset paging walks every row once, newest first
    seen: list[tuple[Any, ...]] = []
    after: dict[str, Any] = {}
    while page := search(db, limit=7, **after):
        seen += page
        after = {"after_at": page[-1][0], "after_key": page[-1][1]}
    assert len(seen) == 31 and len({(r[0], r[1]) for r in seen}) == 31
    assert seen == sorted(seen, key=lambda r: (r[0], r[1]), reverse=True)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="limit"):
        search(db, limit=0)


def test_indexes_for_filters_and_id_lookups(db: Conn) -> None:
    names = {
        str(r[0])
        for r in db.execute(
            "select indexname from pg_indexes where schemaname = 'vigil' and tablename = 'requests'"
        )
    }
    assert {
        "requests_host_at_idx", "requests_status_at_idx", "requests_ip_at_idx",
        "requests_request_id_idx", "requests_trace_id_idx",
    } <= names  # fmt: skip


def test_portable_retention_job(conn: Conn) -> None:
    def parts() -> list[str]:
        return [
            str(r[0])
            for r in conn.execute(
                "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid"
                " where i.inhparent = 'vigil.requests'::regclass order by 1"
            )
        ]

    today = NOW.date()
    assert f"requests_p{today:%Y%m%d}" in parts()
    assert ingest(conn, [clf(NOW - timedelta(days=13))]) == (1, 0, 0, 0)
    # the job as `vigil jobs run` runs it, 10 days later: day -13 is past 14 days
    assert conn.execute(
        "select job from vigil.maintenance_jobs() where job = 'requests_maintenance'"
    ).fetchone() == ("requests_maintenance",)
    later = NOW + timedelta(days=10)
    assert conn.execute(
        "select vigil.run_maintenance_job('requests_maintenance', %s)", (later,)
    ).fetchone() == (None,)
    assert conn.execute("select count(*) from vigil.requests").fetchone() == (0,)
    assert parts()[0] == f"requests_p{(later - timedelta(days=14)).date():%Y%m%d}"
    assert parts()[-1] == f"requests_p{(later + timedelta(days=3)).date():%Y%m%d}"
    # tuned in SQL: ingest follows
    conn.execute(
        'update vigil.portable_jobs set config = config || \'{"retention": "30 days"}\''
        " where job = 'requests_maintenance'"
    )
    assert conn.execute("select vigil.requests_retention()").fetchone() == (timedelta(days=30),)
    assert ingest(conn, [clf(NOW - timedelta(days=20))]) == (1, 0, 0, 0)


@pytest.mark.timescale
def test_timescale_hypertable_compression_retention(ts_conn: Conn) -> None:
    assert is_hypertable(ts_conn, "requests")
    settings = ts_conn.execute(
        "select segmentby, orderby from timescaledb_information.hypertable_compression_settings"
        " where hypertable = 'vigil.requests'::regclass"
    ).fetchone()
    assert settings is not None and settings[0] == "host"
    assert ts_conn.execute(
        "select enabled from vigil.portable_jobs where job = 'requests_maintenance'"
    ).fetchone() == (False,)
    assert ingest(ts_conn, [clf(NOW - timedelta(days=5, seconds=i)) for i in range(5)]) == (
        5, 0, 0, 0
    )  # fmt: skip
    assert ingest(ts_conn, [clf(NOW)], host="web-2") == (1, 0, 0, 0)
    ts_conn.execute("call run_job(%s)", (policy(ts_conn, "policy_compression", "requests")[0],))
    compressed = ts_conn.execute(
        "select count(*) filter (where is_compressed), count(*) from timescaledb_information.chunks"
        " where hypertable_schema = 'vigil' and hypertable_name = 'requests'"
    ).fetchone()
    assert compressed == (1, 2)
    # compressed records are still found and still deduplicated
    assert len(search(ts_conn, host="web-1")) == 5
    assert ingest(ts_conn, [clf(NOW - timedelta(days=5, seconds=i)) for i in range(5)]) == (
        0, 5, 0, 0
    )  # fmt: skip
    # retention: 14 days by default, tunable with plain SQL
    assert ts_conn.execute("select vigil.requests_retention()").fetchone() == (timedelta(days=14),)
    ts_conn.execute("select remove_retention_policy('vigil.requests')")
    ts_conn.execute("select add_retention_policy('vigil.requests', interval '3 days')")
    ts_conn.execute("call run_job(%s)", (policy(ts_conn, "policy_retention", "requests")[0],))
    assert ts_conn.execute("select count(*) from vigil.requests").fetchone() == (1,)
    assert ingest(ts_conn, [clf(NOW - timedelta(days=4))]) == (0, 0, 1, 0)


def _store_twice(dsn: str, lines: list[bytes]) -> tuple[Any, Any, bool]:
    records: list[tuple[Record, int, str | None]] = [
        (parse_line(line), dedupe_key(line, Origin("h", "f", i)), "h")
        for i, line in enumerate(lines)
    ]

    async def run() -> tuple[Any, Any, bool]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as c:
            store = Store(c)
            first = await store.insert(records)
            again = await store.insert(records)
            return first, again, store.copy_supported

    # its own thread: a Playwright test may own this thread's event loop
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def test_store_copies_every_column(dsn: str, conn: Conn) -> None:
    line = (
        b'shop:443 2001:db8::9 - bob [30/Nov/2026:08:00:01 +0000] "POST /p?q=1 HTTP/2.0" 502 7 '
        b'"http://r/" "ua" rt=0.5 urt=0.25 request_id=rid '
        b"traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    ).replace(b"30/Nov/2026:08:00:01", f"{NOW:%d/%b/%Y:%H:%M:%S}".encode())
    first, again, copied = _store_twice(dsn, [line, clf(NOW)])
    assert (first, again, copied) == ((2, 0, 0, 0), (0, 2, 0, 0), True)
    row = conn.execute(
        "select at, host, vhost, host(ip), method, path, query, protocol, status, bytes,"
        " referrer, user_agent, remote_user, request, request_time, upstream_time, request_id,"
        " trace_id from vigil.requests where method = 'POST'"
    ).fetchone()
    assert row == (
        NOW, "h", "shop", "2001:db8::9", "POST", "/p", "q=1", "HTTP/2.0", 502, 7, "http://r/",
        "ua", "bob", None, 0.5, 0.25, "rid", "4bf92f3577b34da6a3ce929d0e0e4736",
    )  # fmt: skip


@pytest.mark.timescale
def test_store_without_copy(ts_dsn: str) -> None:
    first, again, copied = _store_twice(ts_dsn, [clf(NOW), clf(NOW)])
    assert (first, again, copied) == ((2, 0, 0, 0), (0, 2, 0, 0), False)
