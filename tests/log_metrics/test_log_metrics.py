"""sql/62_log_metrics.sql in both lanes: every bucket and group of each log metric equals a
direct GROUP BY over the raw rows (the real loghub samples as journal lines, the real access
log as request records), after the first refresh, after late lines and a re-sent batch, and
through every read of the series (hot, packed or compressed points, rollups, aggregates)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import TEMPLATE, new_database
from tests.log_metrics.data import (
    Conn,
    Line,
    ingest_journal,
    ingest_requests,
    ip_network,
    loghub_lines,
    request_records,
)
from tests.support.timescale import BOTH_MODES, policy
from vigil.cluster import Cluster
from vigil.migrate import upgrade

LOGHUB = ("Linux", "OpenSSH", "HDFS", "Apache")
NET = ip_network()  # Googlebot's network in the real access log
B = "date_bin('{p}'::interval, at, '2000-01-01 00:00+00')"


@dataclass(frozen=True)
class Metric:
    """A log metric (the arguments of vigil.log_metric_create) and the direct query over the
    raw rows that must give the same (bucket, labels, value) rows."""

    id: str
    source: str
    stat: str
    field: str | None
    props: list[str]
    period: str
    filters: dict[str, Any]
    direct: str  # select <bucket>, <labels jsonb>, <value> ... ({b}: the bucket expression)
    regex: str | None = None


def jl(*pairs: str) -> str:
    """jsonb labels of (key, expression) pairs, nulls left out, as the metrics write them."""
    inner = ", ".join(f"'{k}', ({v})::text" for k, v in zip(pairs[::2], pairs[1::2], strict=True))
    return f"jsonb_strip_nulls(jsonb_build_object({inner}))" if pairs else "'{}'::jsonb"


REQ = "from vigil.requests"
ROUTE = "vigil.request_route(path)"
CLASS = "(status / 100) || 'xx'"
REQUEST_METRICS = [
    Metric(
        "req_total",
        "requests",
        "count",
        None,
        [],
        "1 minute",
        {},
        f"select {{b}}, {jl()}, count(*) {REQ} group by 1",
    ),
    Metric(
        "req_status",
        "requests",
        "count",
        None,
        ["status"],
        "5 minutes",
        {"status": [404, "5xx", "3xx"]},
        f"select {{b}}, {jl('status', 'status')}, count(*) {REQ}"
        " where status = 404 or status between 300 and 399 or status between 500 and 599"
        " group by 1, 2",
    ),
    Metric(
        "req_5xx_route",
        "requests",
        "count",
        None,
        ["route"],
        "1 minute",
        {"status": "5xx"},
        f"select {{b}}, {jl('route', ROUTE)}, count(*) {REQ}"
        " where status >= 500 and status < 600 group by 1, 2",
    ),
    Metric(
        "req_ipnet",
        "requests",
        "count",
        None,
        ["ip"],
        "1 hour",
        {"ip": NET},
        f"select {{b}}, {jl('ip', 'host(ip)')}, count(*) {REQ} where ip <<= '{NET}' group by 1, 2",
    ),
    Metric(
        "req_bytes_sum",
        "requests",
        "sum",
        "bytes",
        ["host"],
        "10 minutes",
        {},
        f"select {{b}}, {jl('host', 'host')}, sum(bytes) {REQ} where bytes is not null"
        " group by 1, 2",
    ),
    Metric(
        "req_bytes_avg",
        "requests",
        "avg",
        "bytes",
        ["host", "method"],
        "1 hour",
        {},
        f"select {{b}}, {jl('host', 'host', 'method', 'method')}, avg(bytes) {REQ}"
        " where bytes is not null group by 1, 2",
    ),
    Metric(
        "req_bytes_max",
        "requests",
        "max",
        "bytes",
        ["status_class"],
        "30 minutes",
        {},
        f"select {{b}}, {jl('status_class', CLASS)}, max(bytes) {REQ}"
        " where bytes is not null group by 1, 2",
    ),
    Metric(
        "req_bytes_min",
        "requests",
        "min",
        "bytes",
        [],
        "30 minutes",
        {"path_prefix": "/presentations/"},
        f"select {{b}}, {jl()}, min(bytes) {REQ}"
        " where bytes is not null and starts_with(path, '/presentations/') group by 1",
    ),
    Metric(
        "req_time_p95",
        "requests",
        "p95",
        "request_time",
        ["status_class"],
        "1 hour",
        {},
        f"select {{b}}, {jl('status_class', CLASS)},"
        f" percentile_cont(0.95) within group (order by request_time) {REQ}"
        " where request_time is not null group by 1, 2",
    ),
    Metric(
        "req_time_p50",
        "requests",
        "p50",
        "request_time",
        [],
        "15 minutes",
        {"method": "get"},
        f"select {{b}}, {jl()}, percentile_cont(0.5) within group (order by request_time)"
        f" {REQ} where request_time is not null and method = 'GET' group by 1",
    ),
    Metric(
        "req_error_rate",
        "requests",
        "avg",
        "error",
        ["host"],
        "30 minutes",
        {},
        f"select {{b}}, {jl('host', 'host')}, avg((status >= 500)::int) {REQ} group by 1, 2",
    ),
    Metric(
        "req_distinct_ip",
        "requests",
        "count_distinct",
        "ip",
        ["route"],
        "1 hour",
        {"path_prefix": "/blog/"},
        f"select {{b}}, {jl('route', ROUTE)}, count(distinct ip) {REQ}"
        " where starts_with(path, '/blog/') group by 1, 2",
    ),
    Metric(
        "req_png",
        "requests",
        "count",
        None,
        ["host"],
        "10 minutes",
        {"contains": ".png", "host": "web-*"},
        f"select {{b}}, {jl('host', 'host')}, count(*) {REQ}"
        " where position('.png' in path) > 0 and host like 'web-%' group by 1, 2",
    ),
    Metric(
        "req_assets",
        "requests",
        "count",
        None,
        ["vhost"],
        "1 hour",
        {"regex": "\\.(css|js|png)$"},
        f"select {{b}}, {jl('vhost', 'vhost')}, count(*) {REQ}"
        " where path ~ '\\.(css|js|png)$' group by 1, 2",
    ),
]

JOURNAL = "from vigil.journal"  # the view: every field put back together, independent SQL
IDENT = "fields ->> 'SYSLOG_IDENTIFIER'"
PORT = "port ([0-9]+)"
TRANSPORT = "fields ->> '_TRANSPORT'"
JOURNAL_METRICS = [
    Metric(
        "j_lines",
        "journal",
        "count",
        None,
        ["host"],
        "1 minute",
        {},
        f"select {{b}}, {jl('host', 'host')}, count(*) {JOURNAL} group by 1, 2",
    ),
    Metric(
        "j_errors",
        "journal",
        "count",
        None,
        ["unit"],
        "5 minutes",
        {"priority": 3},
        f"select {{b}}, {jl('unit', 'unit')}, count(*) {JOURNAL} where priority <= 3 group by 1, 2",
    ),
    Metric(
        "j_sshd_auth",
        "journal",
        "count",
        None,
        ["host"],
        "1 minute",
        {"contains": "authentication failure", "identifier": "sshd*"},
        f"select {{b}}, {jl('host', 'host')}, count(*) {JOURNAL}"
        f" where position('authentication failure' in message) > 0 and {IDENT} like 'sshd%'"
        " group by 1, 2",
    ),
    Metric(
        "j_hdfs",
        "journal",
        "count",
        None,
        ["identifier"],
        "10 minutes",
        {"unit": "hdfs*"},
        f"select {{b}}, {jl('identifier', IDENT)}, count(*) {JOURNAL}"
        " where unit like 'hdfs%' group by 1, 2",
    ),
    Metric(
        "j_failed_pw",
        "journal",
        "count",
        None,
        ["host", "priority"],
        "1 hour",
        {"regex": "Failed password for (invalid user )?[a-z]+"},
        f"select {{b}}, {jl('host', 'host', 'priority', 'priority')}, count(*) {JOURNAL}"
        " where message ~ 'Failed password for (invalid user )?[a-z]+' group by 1, 2",
    ),
    Metric(
        "j_port_max",
        "journal",
        "max",
        "captured",
        ["host"],
        "1 hour",
        {},
        f"select {{b}}, {jl('host', 'host')}, max((regexp_match(message, '{PORT}'))[1]::float8)"
        f" {JOURNAL} where message ~ '{PORT}' group by 1, 2",
        regex=PORT,
    ),
    Metric(
        "j_port_p95",
        "journal",
        "p95",
        "captured",
        [],
        "2 hours",
        {"host": "LabSZ"},
        f"select {{b}}, {jl()}, percentile_cont(0.95) within group"
        f" (order by (regexp_match(message, '{PORT}'))[1]::float8)"
        f" {JOURNAL} where message ~ '{PORT}' and host = 'LabSZ' group by 1",
        regex=PORT,
    ),
    Metric(
        "j_block_size",
        "journal",
        "sum",
        "captured",
        ["identifier"],
        "1 hour",
        {},
        f"select {{b}}, {jl('identifier', IDENT)},"
        f" sum((regexp_match(message, 'size ([0-9]+)'))[1]::float8) {JOURNAL}"
        " where message ~ 'size ([0-9]+)' group by 1, 2",
        regex="size ([0-9]+)",
    ),
    Metric(
        "j_idents",
        "journal",
        "count_distinct",
        "identifier",
        ["host"],
        "1 hour",
        {},
        f"select {{b}}, {jl('host', 'host')}, count(distinct {IDENT}) {JOURNAL}"
        f" where {IDENT} is not null group by 1, 2",
    ),
    Metric(
        "j_su",
        "journal",
        "count",
        None,
        ["_TRANSPORT"],
        "30 minutes",
        {"fields": {"SYSLOG_IDENTIFIER": "su(pam_unix)"}},
        f"select {{b}}, {jl('_TRANSPORT', TRANSPORT)}, count(*) {JOURNAL}"
        f" where {IDENT} = 'su(pam_unix)' group by 1, 2",
    ),
    Metric(
        "j_pids",
        "journal",
        "count_distinct",
        "SYSLOG_PID",
        ["host"],
        "1 hour",
        {"fields": {"_TRANSPORT": "syslog"}},
        f"select {{b}}, {jl('host', 'host')}, count(distinct fields ->> 'SYSLOG_PID')"
        f" {JOURNAL} where fields ->> 'SYSLOG_PID' is not null group by 1, 2",
    ),
    Metric(
        "j_prio_avg",
        "journal",
        "avg",
        "priority",
        ["unit"],
        "1 hour",
        {},
        f"select {{b}}, {jl('unit', 'unit')}, avg(priority) {JOURNAL}"
        " where priority is not null group by 1, 2",
    ),
]
METRICS = REQUEST_METRICS + JOURNAL_METRICS  # fmt: skip


@dataclass
class Lane:
    mode: str
    conn: Conn
    dsn: str
    now: datetime
    lines: list[Line]
    per_file: int
    requests: int


def create(conn: Conn, m: Metric) -> None:
    conn.execute(
        "select vigil.log_metric_create(%s, %s, %s, %s, %s, %s::interval, '5 seconds',"
        " %s::jsonb, %s)",
        (m.id, m.source, m.stat, m.field, m.props, m.period, json.dumps(m.filters), m.regex),
    )


def refresh_job(lane: Lane) -> None:
    """The job as its scheduler runs it: run_job (TimescaleDB) or a portable tick."""
    c = lane.conn
    if lane.mode == "timescale":
        row = c.execute(
            "select job_id from timescaledb_information.jobs"
            " where proc_name = 'refresh_log_metrics_job'"
        ).fetchone()
        assert row is not None
        c.execute("update vigil.log_metrics set next_refresh_at = '-infinity'")
        c.execute("call run_job(%s)", (row[0],))
    else:
        c.execute("update vigil.log_metrics set next_refresh_at = '-infinity'")
        c.execute(
            "update vigil.portable_jobs set next_run_at = '-infinity'"
            " where job = 'refresh_log_metrics'"
        )
        assert c.execute(
            "select vigil.run_due_jobs(now(), array['refresh_log_metrics'])"
        ).fetchone() == (1,)
        row = c.execute(
            "select last_error from vigil.portable_jobs where job = 'refresh_log_metrics'"
        ).fetchone()
        assert row == (None,)
    errors = c.execute(
        "select id, last_error from vigil.log_metrics where last_error is not null"
    ).fetchall()
    assert errors == []


Key = tuple[datetime, str]


def rows_of(cur: psycopg.Cursor[tuple[object, ...]]) -> dict[Key, float]:
    out: dict[Key, float] = {}
    for bucket, labels, value in cur:
        assert isinstance(bucket, datetime)
        key = (bucket, json.dumps(labels, sort_keys=True))
        assert key not in out, f"two values for {key}"
        out[key] = float(str(value))
    return out


def direct(conn: Conn, m: Metric) -> dict[Key, float]:
    return rows_of(conn.execute(m.direct.replace("{b}", B.format(p=m.period)).encode()))


def stored(conn: Conn, metric_id: str) -> dict[Key, float]:
    """The metric's points through the view of every raw point (hot and packed)."""
    return rows_of(
        conn.execute(
            "select p.at, s.labels, p.value from vigil.series s"
            " join vigil.points_all p on p.series_id = s.id where s.name = %s",
            (metric_id,),
        )
    )


def assert_exact(conn: Conn, metrics: list[Metric] = METRICS) -> None:
    for m in metrics:
        want = direct(conn, m)
        assert want, f"{m.id}: the data has no row for it"
        got = stored(conn, m.id)
        assert got.keys() == want.keys(), m.id
        for k, v in want.items():
            assert got[k] == pytest.approx(v, rel=1e-9), (m.id, k)


@pytest.fixture(scope="module", params=BOTH_MODES)
def lane(request: pytest.FixtureRequest, pg_cluster: Cluster) -> Iterator[Lane]:
    """A database of the lane with the logs ingested and every metric created and refreshed
    once (its history: the rows stored before it existed). Small data in the slow lane."""
    mode = str(request.param)
    per_file, requests = (300, 5000) if mode == "portable" else (40, 250)
    if mode == "portable":
        with (
            new_database(pg_cluster, TEMPLATE) as url,
            psycopg.connect(url, autocommit=True) as c,
        ):
            yield from _setup(mode, c, url, per_file, requests)
    else:
        pglite = request.getfixturevalue("pglite")
        pglite.reset()
        upgrade(pglite.url)
        with psycopg.connect(pglite.dsn, autocommit=True) as c:
            yield from _setup(mode, c, pglite.dsn, per_file, requests)


def _setup(mode: str, c: Conn, dsn: str, per_file: int, requests: int) -> Iterator[Lane]:
    row = c.execute("select now()").fetchone()
    assert row is not None and isinstance(row[0], datetime)
    now = row[0]
    lines = loghub_lines(LOGHUB, per_file, now)
    assert ingest_journal(c, lines)[0] > 0.9 * len(lines)
    records = request_records(requests, now)
    assert ingest_requests(c, records)[0] == len(records)
    for m in METRICS:
        create(c, m)
    lane = Lane(mode, c, dsn, now, lines, per_file, requests)
    refresh_job(lane)
    yield lane


def test_first_refresh_computes_the_history_exactly(lane: Lane) -> None:
    assert_exact(lane.conn)
    # Every dirty range was consumed; the refresh recorded itself.
    c = lane.conn
    assert c.execute("select count(*) from vigil.log_metric_dirty").fetchone() == (0,)
    row = c.execute(
        "select count(*), min(last_buckets), bool_and(last_duration is not null"
        " and refreshed_at is not null and next_refresh_at > refreshed_at)"
        " from vigil.log_metrics"
    ).fetchone()
    assert row is not None and row[0] == len(METRICS) and int(str(row[1])) > 0 and row[2]


def test_late_lines_and_a_resent_batch(lane: Lane) -> None:
    c = lane.conn
    before = stored(c, "req_total")
    # Lines of later parts of the files, stamped into buckets refreshed already (late).
    more = loghub_lines(LOGHUB, 2 * lane.per_file, lane.now)[lane.per_file :: 2]
    assert ingest_journal(c, more, salt=b"late")[0] > 0
    records = request_records(lane.requests, lane.now)
    late = [(r[0], r[1] ^ 1, "web-3") for r in records[:: max(1, lane.requests // 50)]]
    assert ingest_requests(c, late)[0] == len(late)
    # The first batches sent again: dedupe stores nothing, so nothing is counted twice.
    assert ingest_requests(c, records)[0] == 0
    assert ingest_journal(c, lane.lines)[0] == 0
    dirty = c.execute("select count(distinct metric_id) from vigil.log_metric_dirty").fetchone()
    assert dirty == (len(METRICS),)
    refresh_job(lane)
    assert_exact(c)
    after = stored(c, "req_total")
    assert sum(after.values()) == sum(before.values()) + len(late)


def test_refresh_skips_a_metric_being_refreshed_and_a_bad_one_stops_no_other(
    lane: Lane,
) -> None:
    c = lane.conn
    if lane.mode == "timescale":
        pytest.skip("the TimescaleDB test server takes one connection at a time")
    records = request_records(lane.requests, lane.now)
    # A batch whose transaction commits after a refresh ran: counted by the next one.
    with psycopg.connect(lane.dsn) as slow, psycopg.connect(lane.dsn) as locker:
        ingest_requests(slow, [(r[0], r[1] ^ 2, "web-4") for r in records[:40]])  # open
        locker.execute("select from vigil.log_metrics where id = 'req_status' for update")
        assert c.execute("select vigil.log_metric_refresh('req_status')").fetchone() == (0,)
        # The job: req_status skipped (locked), the others refreshed.
        c.execute("select vigil.refresh_log_metrics(now() + interval '1 day', '{}')")
        locker.rollback()
        slow.commit()
    assert c.execute(
        "select count(*) from vigil.log_metric_dirty where metric_id = 'req_total'"
    ).fetchone() != (0,)  # the late commit's range, waiting
    # One metric that fails (a definition broken behind the trigger's back).
    c.execute("set session_replication_role = replica")
    c.execute("update vigil.log_metrics set filters = '{\"nope\": 1}' where id = 'req_ipnet'")
    c.execute("set session_replication_role = default")
    c.execute("update vigil.log_metrics set next_refresh_at = '-infinity'")
    c.execute("select vigil.refresh_log_metrics(now(), '{}')")
    row = c.execute("select last_error from vigil.log_metrics where id = 'req_ipnet'").fetchone()
    assert row is not None and "unknown filter nope" in str(row[0])
    assert_exact(c, [m for m in METRICS if m.id != "req_ipnet"])
    c.execute(
        "update vigil.log_metrics set filters = %s::jsonb where id = 'req_ipnet'",
        (json.dumps(REQUEST_METRICS[3].filters),),
    )  # the trigger recomputes it from scratch
    refresh_job(lane)
    assert_exact(c)


def read_paths(c: Conn, metric_id: str, lo: datetime, hi: datetime) -> dict[str, Any]:
    """What each read of the series says about one metric in [lo, hi)."""
    series = c.execute(
        "select id, labels from vigil.series where name = %s order by id", (metric_id,)
    ).fetchall()
    points: dict[str, Any] = {}
    minutes: dict[str, Any] = {}
    hours: dict[str, Any] = {}
    last: dict[str, Any] = {}
    for sid, labels in series:
        key = json.dumps(labels, sort_keys=True)
        pts = c.execute(
            "select at, value from vigil.series_points(%s, %s, %s) order by at", (sid, lo, hi)
        ).fetchall()
        if not pts:
            continue
        points[key] = pts
        assert len({p[0] for p in pts}) == len(pts), "a bucket with two points"
        minutes[key] = c.execute(
            "select bucket, avg, n from vigil.series_averages(%s, %s::jsonb, 'minute', %s, %s)"
            " where n > 0 order by bucket",
            (metric_id, json.dumps(labels), lo, hi),
        ).fetchall()
        hours[key] = c.execute(
            "select bucket, avg, n from vigil.series_averages(%s, %s::jsonb, 'hour', %s, %s)"
            " where n > 0 and bucket >= %s order by bucket",
            (metric_id, json.dumps(labels), lo, hi, lo),
        ).fetchall()
        last[key] = c.execute(
            "select value, at from vigil._series_last(%s, %s)", (sid, hi)
        ).fetchall()
    return {"points": points, "minutes": minutes, "hours": hours, "last": last}


def expected_paths(c: Conn, m: Metric, lo: datetime, hi: datetime) -> dict[str, Any]:
    want = direct(c, m)
    points: dict[str, list[tuple[datetime, float]]] = {}
    for (bucket, key), value in sorted(want.items()):
        if lo <= bucket < hi:
            points.setdefault(key, []).append((bucket, value))
    hours: dict[str, list[tuple[datetime, float, int]]] = {}
    for key, pts in points.items():
        per_hour: dict[datetime, list[float]] = {}
        for at, v in pts:
            per_hour.setdefault(
                at.astimezone(UTC).replace(minute=0, second=0, microsecond=0), []
            ).append(v)
        hours[key] = [(h, sum(vs) / len(vs), len(vs)) for h, vs in sorted(per_hour.items())]
    return {
        "points": points,
        "minutes": {k: [(at, v, 1) for at, v in p] for k, p in points.items()},
        "hours": hours,
        "last": {k: [p[-1][::-1]] for k, p in points.items()},
    }


def test_recomputed_buckets_in_packed_or_compressed_days_read_exactly(lane: Lane) -> None:
    """Late lines into days whose points were packed (portable) or compressed and
    aggregated (TimescaleDB): every read of the series shows the new value, once."""
    c = lane.conn
    m = next(x for x in METRICS if x.id == "j_lines")
    if lane.mode == "portable":
        c.execute("select vigil.refresh_series_rollups(now(), '{}')")
        assert c.execute("select vigil.pack_series_points(now(), '{}')").fetchone() != (0,)
    else:
        job, _ = policy(c, "policy_compression", "points_data")
        c.execute("call run_job(%s)", (job,))
        assert c.execute(
            "select count(*) from timescaledb_information.chunks"
            " where hypertable_name = 'points_data' and is_compressed"
        ).fetchone() != (0,)
        job, _ = policy(c, "policy_refresh_continuous_aggregate", "points_hour")
        c.execute("call run_job(%s)", (job,))
    lo = lane.now - timedelta(days=3)
    hi = lane.now + timedelta(minutes=1)
    # The oldest lines of each file again (another sender), into the packed/compressed days.
    oldest = sorted(lane.lines, key=lambda x: x.at)[: max(20, len(lane.lines) // 10)]
    assert ingest_journal(c, oldest, salt=b"packed")[0] == len(oldest)
    refresh_job(lane)
    assert read_paths(c, m.id, lo, hi) == expected_paths(c, m, lo, hi)
    assert_exact(c)
    if lane.mode == "portable":
        # Packed again by the next run: still one exact value per bucket.
        c.execute("select vigil.pack_series_points(now(), '{}')")
        assert c.execute(
            "select count(*) from vigil.points p join vigil.series s on s.id = p.series_id"
            " where s.name = %s and p.at < (select until from vigil.points_packed_until)",
            (m.id,),
        ).fetchone() == (0,)
        assert read_paths(c, m.id, lo, hi) == expected_paths(c, m, lo, hi)
        c.execute("select vigil.refresh_series_rollups(now(), '{}')")
        assert read_paths(c, m.id, lo, hi) == expected_paths(c, m, lo, hi)
