"""sql/56_routes.sql: route normalisation on the real access log (ids collapse, static files
keep their names, the same result as the rules applied one by one in Python), tuning by rows
(insert, disable, delete, a bad pattern refused), re-applying the file, speed; the TimescaleDB
lane runs the same function and the overview's queries."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from api.requests import QUERIES
from api.requests.store import json_row
from tests.requests.data import access_lines, access_lines_are_real
from vigil import SQL_DIR
from vigil.accesslog import parse_line

Conn = psycopg.Connection[tuple[object, ...]]
SAMPLES = {
    "/": "/",
    "/orders/42": "/orders/:id",
    "/orders/42/items/7": "/orders/:id/items/:id",
    "/a/1/2/3": "/a/:id/:id/:id",
    "/api/v2/users/3f2a1b9c-1234-4abc-8def-0123456789AB/avatar": "/api/v2/users/:id/avatar",
    "/users/ann.lee+x@example.co.uk/prefs": "/users/:email/prefs",
    "/users/ann%40example.org": "/users/:email",
    "/reports/2026-11-30/summary": "/reports/:date/summary",
    "/git/commit/9fceb02d0ae598e95dc970b74767f19372d61af8": "/git/commit/:id",
    "/assets/app.0123456789abcdef.js": "/assets/app.:id.js",
    "/orders/42.json": "/orders/:id.json",
    "/v1/health": "/v1/health",
    "/images/jordan-80.png": "/images/jordan-80.png",
    "/style2.css": "/style2.css",
    "/item-42/x": "/item-42/x",
    "/deadbeef/cafe": "/deadbeef/cafe",  # 8 hex digits: a word, not a hash
    "": "",
}


@pytest.fixture(scope="module")
def paths() -> list[str]:
    """The paths of the real log (5,000 lines; query strings are not part of a path)."""
    out = [parse_line(line).path for line in access_lines()]
    return [p for p in out if p is not None]


@pytest.fixture
def rdb(conn: Conn) -> Iterator[Conn]:
    yield conn


def routes(conn: Conn, paths: list[str]) -> list[str | None]:
    rows = conn.execute(
        "select vigil.request_route(p) from unnest(%s::text[]) with ordinality u(p, n) order by n",
        (paths,),
    ).fetchall()
    return [r[0] for r in rows]  # type: ignore[misc]


def python_routes(conn: Conn, paths: list[str]) -> list[str]:
    """The enabled rules applied one by one with Python's re (the same syntax for these)."""
    rules = conn.execute(
        "select pattern, replacement from vigil.route_rules where enabled order by position"
    ).fetchall()
    compiled = [(re.compile(str(p)), str(r)) for p, r in rules]
    out = []
    for path in paths:
        for pattern, replacement in compiled:
            path = pattern.sub(replacement, path)
        out.append(path)
    return out


def test_real_log_ids_collapse_and_static_files_stay(rdb: Conn, paths: list[str]) -> None:
    assert len(paths) == 5000
    got = routes(rdb, paths)
    assert got == python_routes(rdb, paths)
    by_path = dict(zip(paths, got, strict=True))
    # numeric ids collapse ...
    numeric = [p for p in by_path if re.search(r"/[0-9]+(/|$)", p)]
    assert len(numeric) >= 20, numeric
    for path in numeric:
        assert not re.search(r"/[0-9]+(/|$)", str(by_path[path])), (path, by_path[path])
        assert ":id" in str(by_path[path])
    if access_lines_are_real():  # facts of the real log (not of the generated stand-in)
        assert by_path["/blog/geekery/101.html"] == "/blog/geekery/:id.html"
        assert by_path["/files/blogposts/20070618/xdo.c"] == "/files/blogposts/:id/xdo.c"
        assert by_path["/blog/2007/Jan/27"] == "/blog/:id/Jan/:id"
        assert len(set(got)) < len(set(paths))
    # ... while static files and paths without ids keep their names
    for path in ("/style2.css", "/favicon.ico", "/images/jordan-80.png", "/robots.txt", "/"):
        if path in by_path:
            assert by_path[path] == path
    for path, route in by_path.items():
        if not re.search(r"[0-9@]", path):
            assert route == path, path
    assert routes(rdb, list(SAMPLES)) == list(SAMPLES.values())
    assert routes(rdb, [None]) == [None]  # type: ignore[list-item]


def test_speed_on_the_real_log(rdb: Conn, paths: list[str]) -> None:
    rdb.execute("create temp table p (path text)")
    with rdb.cursor().copy("copy p (path) from stdin") as copy:
        for path in paths:
            copy.write_row((path,))
    rdb.execute("select count(vigil.request_route(path)) from p")  # regexes compiled
    start = time.perf_counter()
    row = rdb.execute("select count(vigil.request_route(path)) from p").fetchone()
    took = time.perf_counter() - start
    assert row == (len(paths),)
    print(f"\nrequest_route over {len(paths)} real paths: {took * 1000:.1f} ms")
    assert took < 1.0  # ~25 ms here: a few µs per path
    # inlined: the plan has the regexp_replace calls, not a function call per row
    plan = rdb.execute("explain verbose select vigil.request_route(path) from p").fetchall()
    assert "regexp_replace" in str(plan) and "request_route" not in str(plan)


def test_tuning_by_rows(rdb: Conn) -> None:
    with rdb.transaction(force_rollback=True):
        rdb.execute(
            "insert into vigil.route_rules (position, pattern, replacement, comment) "
            "values (50, '^/blog/tags/[^/]+', '/blog/tags/:tag', 'one route for every tag')"
        )
        assert routes(rdb, ["/blog/tags/puppet", "/blog/tags/X11", "/orders/1"]) == [
            "/blog/tags/:tag",
            "/blog/tags/:tag",
            "/orders/:id",
        ]
        rdb.execute("update vigil.route_rules set enabled = false where position = 500")
        assert routes(rdb, ["/orders/1", "/orders/1.json"]) == ["/orders/1", "/orders/:id.json"]
        with pytest.raises(psycopg.errors.InvalidParameterValue) as err, rdb.transaction():
            rdb.execute(
                "insert into vigil.route_rules (position, pattern, replacement) "
                "values (60, '/(x', 'y')"
            )
        assert "not a valid regular expression" in str(err.value)
        rdb.execute("delete from vigil.route_rules")
        assert routes(rdb, ["/orders/1", "/a/b"]) == ["/orders/1", "/a/b"]
    assert routes(rdb, ["/blog/tags/puppet", "/orders/1"]) == ["/blog/tags/puppet", "/orders/:id"]


def test_reapplying_the_file_keeps_tuned_rules(rdb: Conn) -> None:
    rdb.execute("delete from vigil.route_rules where position = 600")
    rdb.execute(
        "insert into vigil.route_rules (position, pattern, replacement) "
        "values (700, '^/shop/[^/]+/p/', '/shop/:slug/p/')"
    )
    rdb.execute((SQL_DIR / "56_routes.sql").read_text().encode())
    positions = [r[0] for r in rdb.execute("select position from vigil.route_rules order by 1")]
    assert positions == [100, 200, 300, 400, 500, 700]  # the deleted default stays deleted
    assert routes(rdb, ["/shop/blue-mug/p/7", "/orders/7.json"]) == [
        "/shop/:slug/p/:id",
        "/orders/7.json",
    ]
    comments = rdb.execute(
        "select count(*) filter (where obj_description(p.oid) is null) from pg_proc p "
        "where p.proname in ('request_route', 'route_rules_compile', '_route_rules_check', "
        "'_route_rules_changed')"
    ).fetchone()
    assert comments == (0,)


def test_search_by_route_and_agent(rdb: Conn) -> None:
    """vigil.requests_search_route: the route and exact user agent filters, with the others and
    keyset paging; without them it is vigil.requests_search."""
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        {"at": (now - timedelta(seconds=i)).isoformat(), "key": i, "host": "web-1",
         "ip": f"10.0.0.{i % 4}", "method": "GET", "path": f"/orders/{i}", "status": 200,
         "user_agent": "curl/8.5" if i % 2 else "Mozilla/5.0"}
        for i in range(12)
    ] + [
        {"at": now.isoformat(), "key": 99, "host": "web-1", "ip": "10.0.0.9", "method": "GET",
         "path": "/orders/7/items", "status": 503, "user_agent": None},
    ]  # fmt: skip
    assert rdb.execute(
        "select accepted from vigil.requests_ingest(%s::jsonb)", (json.dumps(rows),)
    ).fetchone() == (13,)

    def keys(**kw: Any) -> list[int]:
        args = sql.SQL(", ").join(
            sql.SQL("{} => {}").format(sql.Identifier(f"p_{k}"), sql.Placeholder(k)) for k in kw
        )
        query = sql.SQL("select key from vigil.requests_search_route({})").format(args)
        return [int(str(r[0])) for r in rdb.execute(query, kw)]

    assert keys(route="/orders/:id") == list(range(12))  # newest first
    assert keys(route="/orders/:id/items") == [99]
    assert keys(route="/orders/:id", user_agent="curl/8.5") == [1, 3, 5, 7, 9, 11]
    assert keys(route="/orders/:id", ip="10.0.0.1") == [1, 5, 9]
    assert keys(route="/nope") == []
    page = keys(route="/orders/:id", limit=5)
    after = rdb.execute("select at from vigil.requests where key = 4").fetchone()
    assert after is not None
    assert page == [0, 1, 2, 3, 4]
    assert keys(route="/orders/:id", after_at=after[0], after_key=4, limit=5) == [5, 6, 7, 8, 9]
    assert len(keys(status_min=500)) == 1  # no route or agent: vigil.requests_search


def test_overview_queries_in_both_lanes(db: Conn) -> None:
    """The overview's panel queries (api/requests/queries.sql) on a partitioned table and on a
    hypertable: the same numbers as direct counts over 300 real lines; the routes too."""
    assert routes(db, list(SAMPLES)) == list(SAMPLES.values())
    db.execute(
        "insert into vigil.route_rules (position, pattern, replacement) "
        "values (50, '^/blog/tags/[^/]+', '/blog/tags/:tag')"
    )
    assert routes(db, ["/blog/tags/puppet/7"]) == ["/blog/tags/:tag/:id"]
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    for i, line in enumerate(access_lines()[:300]):
        r = parse_line(line)
        row = json_row(r, i, "web-1" if i % 3 else "web-2")
        row["at"] = (now - timedelta(seconds=10 * i)).isoformat()
        row["request_time"] = (i % 17) / 10 if i % 2 else None
        row["trace_id"] = f"{i:032x}" if i % 50 == 1 else None
        rows.append(row)
    assert db.execute(
        "select accepted from vigil.requests_ingest(%s::jsonb)", (json.dumps(rows),)
    ).fetchone() == (300,)
    params = {
        "from": now - timedelta(hours=1),
        "to": now + timedelta(seconds=1),
        "host": "web-1",
        "step": timedelta(minutes=5),
        "limit": 10,
    }
    where = " from vigil.requests where host = 'web-1'"
    traffic = db.execute(QUERIES["overview_traffic"], params).fetchall()
    assert sum(int(str(r[1])) for r in traffic) == 200
    assert sum(int(str(r[2])) for r in traffic) == one(
        db, "select count(*)" + where + " and status >= 500"
    )
    statuses = db.execute(QUERIES["overview_statuses"], params).fetchall()
    assert [(r[0], r[1]) for r in statuses] == db.execute(
        "select status, count(*)" + where + " group by 1 order by 1"
    ).fetchall()
    top = db.execute(QUERIES["overview_routes"], params).fetchall()
    direct = db.execute(
        "select vigil.request_route(path), count(*), count(request_time),"
        " percentile_cont(array[0.5, 0.95, 0.99]) within group (order by request_time)"
        + where
        + " group by 1 order by 2 desc, 1 limit 10"
    ).fetchall()
    assert [(r[0], r[1], r[5], r[6]) for r in top] == direct
    traced = [str(r[7]) for r in top if r[7]]
    assert traced and all(len(t) == 32 for t in traced)
    ips = db.execute(QUERIES["overview_ips"], params).fetchall()
    assert [(str(r[0]), r[1]) for r in ips] == [
        (str(r[0]), r[1])
        for r in db.execute(
            "select ip, count(*)" + where + " group by 1 order by 2 desc, 1 limit 10"
        )
    ]
    agents = db.execute(QUERIES["overview_agents"], params).fetchall()
    assert sum(int(str(r[1])) for r in agents) <= 200 and agents[0][1] == one(
        db, "select count(*)" + where + " group by user_agent order by 1 desc limit 1"
    )


def one(db: Conn, query: str) -> int:
    row = db.execute(query.encode()).fetchone()
    assert row is not None
    return int(str(row[0]))
