"""The log-metric recipes of docs/dba.md ("Log metrics": create, defaults, latest, meta,
refresh, delete, inspect and tune) run as the guide prints them, in both modes (``db``),
and do what the guide says."""

from __future__ import annotations

from datetime import timedelta

from tests.support import guide
from tests.support.sql import Conn

SECTION = "## Log metrics"


def recipe(*words: str) -> str:
    return guide.recipe(SECTION, *words)


def ids(db: Conn) -> list[str]:
    return [str(r[0]) for r in db.execute("select id from vigil.log_metrics order by id")]


def test_every_recipe_runs_and_does_what_the_guide_says(db: Conn) -> None:
    db.execute(recipe("'api_5xx', 'requests', 'count'"))
    db.execute(recipe("'latency_p95', 'requests', 'p95'"))
    db.execute(recipe("'hdfs_bytes', 'journal', 'sum'"))
    created = {str(r[0]) for r in db.execute(recipe("log_metrics_create_defaults"))}
    assert created == {"log_lines", "log_errors", "totaltraffic", "http_5xx", "sshd_auth_failures"}
    assert db.execute(
        "select source, match_name, op, threshold from vigil.alert_rules"
        " where name = 'totaltraffic'"
    ).fetchone() == ("series", "totaltraffic", ">", 1000.0)
    assert db.execute(recipe("log_metric_latest('api_5xx', 10)")).fetchall() == []
    row = db.execute(recipe("log_metric_meta('api_5xx')")).fetchone()
    assert row is not None and isinstance(row[0], dict)
    assert row[0]["id"] == "api_5xx" and "sql" in row[0]
    assert db.execute(recipe("log_metric_refresh('api_5xx')")).fetchone() == (0,)
    assert db.execute(recipe("log_metric_delete('api_5xx')")).fetchone() == (True,)
    assert "api_5xx" not in ids(db)

    listed = db.execute(recipe("select id, source, stat")).fetchall()
    assert [r[0] for r in listed] == ids(db)
    assert db.execute(recipe("from vigil.log_metric_dirty group by 1")).fetchall() is not None
    db.execute(recipe("refresh_rate = '1 minute' where id = 'log_lines'"))
    db.execute(recipe("filters = '{\"priority\": 2}' where id = 'log_errors'"))
    assert db.execute(
        "select refresh_rate from vigil.log_metrics where id = 'log_lines'"
    ).fetchone() == (timedelta(minutes=1),)
    assert db.execute(
        "select filters from vigil.log_metrics where id = 'log_errors'"
    ).fetchone() == ({"priority": 2},)
    db.execute(recipe("next_refresh_at = '-infinity'"))
    db.execute(recipe("refresh_log_metrics(now()"))
    assert db.execute(
        "select count(*) from vigil.log_metrics"
        " where refreshed_at is null or last_error is not null"
    ).fetchone() == (0,)
