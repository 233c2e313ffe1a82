"""TimescaleDB mode on PGlite + TimescaleDB: the health query, the metric_history hypertable
and its retention, the detector job and its tuning. (Migrating from an empty database in this
mode: tests/migration/test_migrations_timescale.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.core.health import HEALTH_SQL
from tests.support.sql import Conn, db_now, detect_job_id, ingest, minutes, state

pytestmark = pytest.mark.timescale


def test_health_query_reports_the_mode_and_why(ts_conn: Conn) -> None:
    row = ts_conn.execute(HEALTH_SQL).fetchone()
    assert row is not None
    assert row[0] == "timescaledb"
    assert str(row[1]).startswith("timescaledb 2.")
    assert row[2:] == (None, 0, 0)  # detector never ran yet, empty outbox


def test_metric_history_is_a_hypertable_with_retention(ts_conn: Conn) -> None:
    rows = ts_conn.execute(
        "select hypertable_schema, hypertable_name from timescaledb_information.hypertables"
    ).fetchall()
    assert ("vigil", "metric_history") in rows
    dim = ts_conn.execute(
        "select column_name, time_interval from timescaledb_information.dimensions "
        "where hypertable_name = 'metric_history'"
    ).fetchone()
    assert dim == ("at", timedelta(days=7))
    now = db_now(ts_conn)
    ingest(ts_conn, "h", "p", "ping", None, now - timedelta(days=100))
    ingest(ts_conn, "h", "p", "ping", None, now)
    chunks = ts_conn.execute(
        "select count(*) from timescaledb_information.chunks "
        "where hypertable_name = 'metric_history'"
    ).fetchone()
    assert chunks == (2,)
    job = ts_conn.execute(
        "select job_id, config ->> 'drop_after' from timescaledb_information.jobs "
        "where proc_name = 'policy_retention' and hypertable_schema = 'vigil' "
        "and hypertable_name = 'metric_history'"
    ).fetchone()
    assert job is not None and job[1] == "90 days"
    ts_conn.execute("call run_job(%s)", (job[0],))  # the retention policy drops old chunks
    kept = ts_conn.execute(
        "select count(*), min(at) > now() - interval '1 day' from vigil.metric_history"
    ).fetchone()
    assert kept == (1, True)


def test_detector_is_a_timescaledb_job_that_alter_job_tunes(ts_conn: Conn) -> None:
    job_id = detect_job_id(ts_conn)
    row = ts_conn.execute(
        "select schedule_interval, scheduled from timescaledb_information.jobs where job_id = %s",
        (job_id,),
    ).fetchone()
    assert row == (timedelta(seconds=5), True)
    ts_conn.execute("select alter_job(%s, schedule_interval => interval '10 seconds')", (job_id,))
    assert ts_conn.execute(
        "select schedule_interval from timescaledb_information.jobs where job_id = %s", (job_id,)
    ).fetchone() == (timedelta(seconds=10),)
    jobs = {
        (str(r[1]), r[6]): r
        for r in ts_conn.execute(
            "select scheduler, call, schedule_interval, enabled, last_status, last_run_at, "
            "hypertable from vigil.jobs"
        )
    }
    assert jobs["vigil.detect_job", None] == (
        "timescaledb",
        "vigil.detect_job",
        timedelta(seconds=10),
        True,
        None,
        None,
        None,
    )
    assert ("_timescaledb_functions.policy_retention", "metric_history") in jobs
    # The portable scheduler stands down for the detector and metric retention.
    enabled = ts_conn.execute(
        "select job from vigil.portable_jobs where enabled "
        "and job in ('detect', 'prune_metric_history')"
    ).fetchall()
    assert enabled == []


def test_run_job_of_the_detector_alerts_and_beats(ts_conn: Conn) -> None:
    now = db_now(ts_conn)
    ingest(ts_conn, "web-1", "cron", "ping", "2", now - minutes(3))
    ts_conn.execute("call run_job(%s)", (detect_job_id(ts_conn),))
    assert state(ts_conn, "web-1", "cron") == "alert"
    row = ts_conn.execute(
        "select t.from_state, t.to_state, t.reason, o.text, o.status from vigil.transitions t "
        "join vigil.outbox o on o.transition_id = t.id"
    ).fetchall()
    assert row == [
        ("ok", "alert", "no ping before its deadline", "Alert: web-1 - cron Value: 2", "pending")
    ]
    beat = ts_conn.execute(
        "select runs, last_result, last_finished_at > now() - interval '1 minute' "
        "from vigil.job_heartbeats where job = 'detect'"
    ).fetchone()
    assert beat == (1, 1, True)
