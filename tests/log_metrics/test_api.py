"""The SQL API of log metrics (sql/62_log_metrics.sql): what create refuses and why, delete,
the defaults and their alert rule, latest and meta, a definition changed with UPDATE, the
job's registration, ingest without metrics, and a comment on every object."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from tests.conftest import TEMPLATE, ApiServer, new_database
from tests.log_metrics.data import Conn, ingest_requests, request_records
from tests.sql.test_comments import UNCOMMENTED_SQL
from vigil.cluster import Cluster


@pytest.fixture(scope="module")
def live(pg_cluster: Cluster) -> Iterator[Conn]:
    """One database for the module, with the live sql/."""
    with new_database(pg_cluster, TEMPLATE) as url, psycopg.connect(url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def c(live: Conn) -> Conn:
    """The module's database without metrics, series, rules of theirs or requests."""
    live.execute("delete from vigil.log_metrics")
    live.execute("select vigil.delete_series(id) from vigil.series")
    live.execute("delete from vigil.alert_rules where name = 'totaltraffic'")
    live.execute("truncate vigil.requests")
    return live


def create(c: Conn, metric_id: str, source: str = "requests", stat: str = "count",
           field: str | None = None, props: list[str] | None = None, period: str = "1 minute",
           filters: object = None, regex: str | None = None) -> dict[str, object]:  # fmt: skip
    cur = c.execute(
        "select to_jsonb(m) from vigil.log_metric_create(%s, %s, %s, %s, %s, %s::interval,"
        " null, %s::jsonb, %s, 'a test', 'tester') m",
        (
            metric_id,
            source,
            stat,
            field,
            props or [],
            period,
            None if filters is None else json.dumps(filters),
            regex,
        ),
    )
    row = cur.fetchone()
    assert row is not None and isinstance(row[0], dict)
    return row[0]


BAD = [
    ({"metric_id": "Bad-Id"}, "metric id must match"),
    ({"metric_id": "m", "source": "syslog"}, "source must be journal or requests"),
    ({"metric_id": "m", "stat": "median"}, "stat must be count"),
    ({"metric_id": "m", "stat": "sum"}, "sum needs a field"),
    ({"metric_id": "m", "stat": "sum", "field": "nope"}, "unknown field nope"),
    (
        {"metric_id": "m", "stat": "sum", "field": "captured", "source": "journal"},
        "field captured needs a value_regex",
    ),
    ({"metric_id": "m", "props": ["unit"]}, "unknown property unit for requests"),
    ({"metric_id": "m", "props": ["host", "host"]}, "a property is repeated"),
    ({"metric_id": "m", "source": "journal", "props": ["bad name"]}, "unknown property"),
    ({"metric_id": "m", "period": "1 month"}, "period must be between"),
    ({"metric_id": "m", "period": "0 seconds"}, "period must be between"),
    ({"metric_id": "m", "filters": {"unit": "x"}}, "filter unit does not apply"),
    ({"metric_id": "m", "filters": {"status": "5x"}}, "filter status"),
    ({"metric_id": "m", "filters": {"ip": "10.0.0.300"}}, "filter ip"),
    ({"metric_id": "m", "filters": {"regex": "(["}}, "filter regex"),
    ({"metric_id": "m", "filters": {"frobnicate": 1}}, "unknown filter frobnicate"),
    ({"metric_id": "m", "filters": []}, "filters must be a JSON object"),
    ({"metric_id": "m", "source": "journal", "filters": {"priority": 9}}, "priority"),
    ({"metric_id": "m", "regex": "x(y)"}, "value_regex applies to journal metrics"),
    ({"metric_id": "m", "source": "journal", "regex": "(("}, "value_regex"),
]


def test_create_refuses_bad_input(c: Conn) -> None:
    for args, message in BAD:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
            create(c, **args)  # type: ignore[arg-type]
    assert c.execute("select count(*) from vigil.log_metrics").fetchone() == (0,)


def test_create_refuses_an_id_in_use_and_delete_removes_the_series(c: Conn) -> None:
    c.execute("select vigil.add_point('cpu_idle', 1.0)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="a series named cpu_idle"):
        create(c, "cpu_idle")
    row = create(c, "hits", props=["status_class"], filters={"method": "get"})
    assert row["refresh_rate"] == "00:01:00" and row["created_by"] == "tester"
    assert row["stat"] == "count" and row["field"] is None
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="log metric hits exists"):
        create(c, "hits")
    now = datetime.now().astimezone()
    ingest_requests(c, request_records(100, now))
    assert int(str(c.execute("select vigil.log_metric_refresh('hits')").fetchone()[0])) > 0  # type: ignore[index]
    assert c.execute("select count(*) from vigil.series where name = 'hits'").fetchone() != (0,)
    assert c.execute("select vigil.log_metric_delete('hits')").fetchone() == (True,)
    assert c.execute("select vigil.log_metric_delete('hits')").fetchone() == (False,)
    assert c.execute("select count(*) from vigil.series where name = 'hits'").fetchone() == (0,)
    assert c.execute("select count(*) from vigil.log_metric_dirty").fetchone() == (0,)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no log metric hits"):
        c.execute("select vigil.log_metric_refresh('hits')")


def test_defaults_are_idempotent_and_add_the_totaltraffic_rule(c: Conn) -> None:
    ids = [str(r[0]) for r in c.execute("select vigil.log_metrics_create_defaults('ops')")]
    assert ids == ["log_lines", "log_errors", "totaltraffic", "http_5xx", "sshd_auth_failures"]
    assert c.execute("select vigil.log_metrics_create_defaults('ops')").fetchall() == []
    assert c.execute(
        "select count(*) from vigil.log_metrics where is_default and created_by = 'ops'"
    ).fetchone() == (5,)
    rule = c.execute(
        "select source, match_name, agg, agg_window, op, threshold from vigil.alert_rules"
        " where name = 'totaltraffic'"
    ).fetchone()
    assert rule == ("series", "totaltraffic", "max", timedelta(minutes=2), ">", 1000.0)
    # A deleted default comes back; a series of that name blocks it.
    c.execute("select vigil.log_metric_delete('http_5xx'), vigil.log_metric_delete('log_errors')")
    c.execute("select vigil.add_point('log_errors', 1.0)")
    assert c.execute("select vigil.log_metrics_create_defaults()").fetchall() == [("http_5xx",)]


def test_latest_meta_and_a_changed_definition(c: Conn) -> None:
    now = datetime.now().astimezone()
    records = request_records(200, now)
    ingest_requests(c, records)
    create(c, "by_status", props=["status"], period="1 hour")
    assert c.execute("select vigil.refresh_log_metrics(now(), '{}')").fetchone() != (0,)
    latest = [
        (str(at), dict(groups), float(str(value)))  # type: ignore[call-overload]
        for at, groups, value in c.execute(
            "select at, groups, value from vigil.log_metric_latest('by_status', 3)"
        )
    ]
    assert len(latest) == 3 and latest == sorted(latest, key=lambda r: r[0], reverse=True)
    assert all(set(r[1]) == {"status"} and r[2] >= 1 for r in latest)
    meta = c.execute("select vigil.log_metric_meta('by_status')").fetchone()
    assert meta is not None and isinstance(meta[0], dict)
    m = meta[0]
    assert m["sql"].startswith("select date_bin(") and "r.status" in m["sql"]
    assert m["series"] >= 2 and m["dirty_ranges"] == 0 and m["lag"] is None
    assert m["last_error"] is None and m["last_duration_ms"] > 0
    # Counted per status; an UPDATE of the definition recomputes it from the raw rows.
    total = c.execute(
        "select sum(p.value) from vigil.points p join vigil.series s on s.id = p.series_id"
        " where s.name = 'by_status'"
    ).fetchone()
    assert total == (float(len(records)),)
    c.execute(
        "update vigil.log_metrics set props = '{}', filters = '{\"status\": [304]}'"
        " where id = 'by_status'"
    )
    c.execute("select vigil.refresh_log_metrics(now(), '{}')")
    rows = c.execute(
        "select s.labels, sum(p.value) from vigil.points p join vigil.series s"
        " on s.id = p.series_id where s.name = 'by_status' group by 1"
    ).fetchall()
    assert rows == [({}, float(sum(1 for r in records if r[0].status == 304)))]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="cannot be renamed"):
        c.execute("update vigil.log_metrics set id = 'other' where id = 'by_status'")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no log metric nope"):
        c.execute("select * from vigil.log_metric_latest('nope')")


def test_ingest_without_metrics_writes_nothing_and_the_job_is_registered(c: Conn) -> None:
    ingest_requests(c, request_records(50, datetime.now().astimezone()))
    assert c.execute("select count(*) from vigil.log_metric_dirty").fetchone() == (0,)
    job = c.execute(
        "select call, schedule_interval, enabled from vigil.portable_jobs"
        " where job = 'refresh_log_metrics'"
    ).fetchone()
    assert job == ("vigil.refresh_log_metrics", timedelta(seconds=5), True)
    # With a metric: one dirty row per metric and hour of the batch, consumed by the refresh.
    create(c, "t1")
    c.execute("select vigil.log_metric_refresh('t1')")
    again = [(r, k ^ 5, h) for r, k, h in request_records(50, datetime.now().astimezone())]
    ingest_requests(c, again)
    hours = {r.at.replace(minute=0, second=0, microsecond=0) for r, _, _ in again}
    assert c.execute("select count(*) from vigil.log_metric_dirty").fetchone() == (len(hours),)
    touch = "select vigil.log_metrics_touch(%s, array[now(), now()], array[now(), now()])"
    assert c.execute(touch, ("requests",)).fetchone() == (2,)
    assert c.execute(touch, ("journal",)).fetchone() == (0,)


def test_every_log_metric_object_is_commented(c: Conn) -> None:
    missing = [str(r[0]) for r in c.execute(UNCOMMENTED_SQL) if "log_metric" in str(r[0])]
    assert missing == []
    names = {str(r[0]) for r in c.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'vigil' and p.proname like '%log_metric%'")}  # fmt: skip
    assert {"log_metric_create", "log_metric_delete", "log_metrics_create_defaults",
            "log_metric_latest", "log_metric_meta", "log_metric_refresh",
            "refresh_log_metrics", "_log_metrics_touch"} <= names  # fmt: skip


def test_lines_sent_to_the_api_are_counted(api: ApiServer, token: str, conn: Conn) -> None:
    """Both ingest endpoints, as senders use them: the request records (always staged) and
    journal lines (the direct COPY when a batch is new and within bounds)."""
    create(conn, "api_requests")
    create(conn, "api_journal", source="journal", props=["host"])
    conn.execute("select vigil.refresh_log_metrics(now(), '{}')")
    at = datetime.now(UTC) - timedelta(minutes=2)
    stamp = f"{at:%d/%b/%Y:%H:%M:%S} +0000"
    body = b"".join(
        f'10.0.0.{i} - - [{stamp}] "GET /x/{i} HTTP/1.1" 200 5 "-" "t"\n'.encode() for i in range(7)
    )
    r = httpx.post(
        api.url + "/v1/requests",
        content=body,
        params={"format": "combined", "host": "web-1"},
        headers={"authorization": f"Bearer {token}", "content-type": "text/plain"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    us = int(at.timestamp() * 1_000_000)
    logs = "\n".join(
        json.dumps(
            {
                "__REALTIME_TIMESTAMP": str(us + i),
                "_HOSTNAME": "web-1",
                "PRIORITY": "6",
                "MESSAGE": f"line {i}",
            }
        )
        for i in range(5)
    )
    r = httpx.post(
        api.url + "/journal",
        json={"logs": logs},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code < 300, r.text
    conn.execute("update vigil.log_metrics set next_refresh_at = '-infinity'")
    conn.execute("select vigil.refresh_log_metrics(now(), '{}')")
    totals = {
        str(name): float(str(total))
        for name, total in conn.execute(
            "select s.name, sum(p.value) from vigil.series s join vigil.points p"
            " on p.series_id = s.id group by 1"
        )
    }
    # the journal's direct COPY marks its ranges in its own transaction (store.hour_ranges)
    assert totals.get("api_requests") == 7.0
    assert totals.get("api_journal") == 5.0
    # a series like any other: in the metrics-server reads
    h = {"authorization": f"Bearer {token}"}
    assert '"api_requests"' in httpx.get(api.url + "/v1/metrics/", headers=h, timeout=30).text
    days = f"{at:%Y-%m-%d}/{datetime.now(UTC) + timedelta(days=1):%Y-%m-%d}"  # to 00:00 of the end
    r = httpx.get(f"{api.url}/v1/metrics/api_requests/minute/{days}", headers=h, timeout=30)
    assert r.status_code == 200, r.text
    assert [d["avg"] for d in r.json()["data"]] == [7.0]


def test_a_metric_created_during_an_ingest_counts_its_rows(c: Conn) -> None:
    """A batch being stored when a metric is created, which did not see the metric: the
    creation waits for its commit, so the metric's history includes its rows."""
    create(c, "other")  # the source has a metric: ingest takes the path that marks ranges
    records = request_records(60, datetime.now().astimezone())
    with psycopg.connect(c.info.dsn) as slow, psycopg.connect(c.info.dsn) as maker:
        ingest_requests(slow, records)  # not committed
        done = threading.Event()

        def make() -> None:
            create(maker, "late_seen")
            maker.commit()
            done.set()

        thread = threading.Thread(target=make)
        thread.start()
        assert not done.wait(0.5), "the creation must wait for the open batch"
        slow.commit()
        thread.join(10)
        assert done.is_set()
    c.execute("select vigil.log_metric_refresh('late_seen')")
    total = c.execute(
        "select sum(p.value) from vigil.points p join vigil.series s on s.id = p.series_id"
        " where s.name = 'late_seen'"
    ).fetchone()
    assert total == (float(len(records)),)
