"""The SQL recipes of docs/dba.md work as written, in both modes (``db``)."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import ANY

from psycopg.types.string import TextLoader

from tests.support.sql import (
    T0,
    Conn,
    db_now,
    detect,
    detect_job_id,
    ingest,
    minutes,
    outbox_texts,
    state,
)
from vigil.db import one_row


def test_mode_view_explains_itself(db: Conn, mode: str) -> None:
    row = one_row(db, "select mode, reason, server_version from vigil.mode")
    assert row[0] == ("timescaledb" if mode == "timescale" else "portable")
    assert len(str(row[1])) > 40 and row[2]


def test_tune_the_detector_interval(db: Conn, mode: str) -> None:
    """List, retune, pause and run the detector job as docs/dba.md shows; each recipe does
    what its comment says."""
    overdue = db_now(db) - minutes(10)
    ingest(db, "h", "p", "ping", None, overdue)
    if mode == "timescale":
        job_id = detect_job_id(db)
        listed = db.execute(
            "select job_id, proc_schema, proc_name, schedule_interval, scheduled, config"
            "  from timescaledb_information.jobs"
            " where proc_schema = 'vigil' or hypertable_schema = 'vigil'"
        ).fetchall()
        assert (job_id, "vigil", "detect_job", timedelta(seconds=5), True, None) in listed
        policies = [r[5] for r in listed if r[2] == "policy_retention"]
        assert {"drop_after": "90 days", "hypertable_id": ANY} in policies  # metric_history
        db.execute(
            "select alter_job(job_id, schedule_interval => interval '10 seconds') "
            "from timescaledb_information.jobs "
            "where proc_schema = 'vigil' and proc_name = 'detect_job'"
        )
        db.execute(
            "select alter_job(job_id, scheduled => false) from timescaledb_information.jobs "
            "where proc_schema = 'vigil' and proc_name = 'detect_job'"
        )
        row = db.execute(
            "select schedule_interval, enabled from vigil.jobs where call = 'vigil.detect_job'"
        ).fetchone()
        assert row == (timedelta(seconds=10), False)
        assert state(db, "h", "p") == "ok"
        db.execute("call run_job(%s)", (job_id,))  # runs even while paused
        assert state(db, "h", "p") == "alert"
        # job_stats says -infinity for "never run by the scheduler": read the times as text.
        stats = db.cursor()
        stats.adapters.register_loader("timestamptz", TextLoader)
        assert stats.execute(
            "select job_id, last_run_started_at, last_run_status, next_start, total_runs,"
            "       total_failures"
            "  from timescaledb_information.job_stats where job_id = %s",
            (job_id,),
        ).fetchall() == [(job_id, "-infinity", None, ANY, 0, 0)]
        history = db.execute(
            "select job_id, succeeded, start_time, finish_time, err_message"
            "  from timescaledb_information.job_history where job_id = %s"
            " order by start_time desc limit 20",
            (job_id,),
        ).fetchall()
        assert [r for r in history if not r[1]] == []  # no failed run
        errors = "select * from timescaledb_information.job_errors where job_id = %s"
        assert db.execute(errors, (job_id,)).fetchall() == []
    else:
        jobs = db.execute(
            "select job, call, schedule_interval, enabled, next_run_at, last_error, config"
            "  from vigil.portable_jobs"
        ).fetchall()
        assert ("detect", "vigil._job_detect", True, None) in [
            (j[0], j[1], j[3], j[5]) for j in jobs
        ]
        db.execute(
            "update vigil.portable_jobs set schedule_interval = interval '10 seconds' "
            "where job = 'detect'"
        )
        db.execute("update vigil.portable_jobs set enabled = false where job = 'detect'")
        row = db.execute(
            "select schedule_interval, enabled from vigil.jobs where call = 'vigil._job_detect'"
        ).fetchone()
        assert row == (timedelta(seconds=10), False)
        ran = db.execute("select vigil.run_due_jobs()").fetchone()  # one tick now
        assert ran is not None and int(str(ran[0])) > 0  # the other due jobs ran ...
        assert state(db, "h", "p") == "ok"  # ... but not the paused detector
        db.execute("update vigil.portable_jobs set enabled = true where job = 'detect'")
        db.execute("select vigil.run_due_jobs()")
        assert state(db, "h", "p") == "alert"
    assert outbox_texts(db) == ["Alert: h - p"]


def test_requeue_a_dead_letter(db: Conn) -> None:
    ingest(db, "h", "d", "disk", "99", T0)
    row = one_row(db, "select id from vigil.outbox_claim('w', interval '1 minute', 10)")
    db.execute("select vigil.outbox_settle(%s, 'w', 'dead', 'Forbidden: bot was kicked')", row)
    assert db.execute("select delivery from vigil.outbox_status").fetchone() == (
        "dead letter: Forbidden: bot was kicked",
    )
    requeued = db.execute(
        "update vigil.outbox set status = 'pending', attempts = 0, next_attempt_at = now(), "
        "claimed_by = null, claimed_until = null where id = %s and status = 'dead'",
        row,
    ).rowcount
    db.execute("listen vigil_outbox")  # as the notifier does
    db.execute("select pg_notify('vigil_outbox', '')")
    assert [n.channel for n in db.notifies(timeout=5, stop_after=1)] == ["vigil_outbox"]
    assert requeued == 1
    assert db.execute("select delivery from vigil.outbox_status").fetchone() == ("queued",)
    claimed = db.execute("select id from vigil.outbox_claim('w2', interval '1 minute', 10)")
    assert claimed.fetchall() == [row]


def test_stall_after_is_tunable(db: Conn) -> None:
    detect(db, T0)
    db.execute(
        "update vigil.job_heartbeats set stall_after = interval '5 minutes' where job = 'detect'"
    )
    assert db.execute("select vigil.check_stalls(now() + interval '3 minutes')").fetchone() == (0,)
    assert db.execute("select vigil.check_stalls(now() + interval '6 minutes')").fetchone() == (1,)


def test_change_retention(db: Conn, mode: str) -> None:
    """A report older than the new retention is dropped by the recipe; a fresh one stays."""
    now = db_now(db)
    ingest(db, "h", "p", "ping", None, now - timedelta(days=40), now=now)
    ingest(db, "h", "p", "ping", None, now)
    if mode == "timescale":
        db.execute("select remove_retention_policy('vigil.metric_history')")
        db.execute("select add_retention_policy('vigil.metric_history', interval '30 days')")
        row = one_row(
            db,
            "select job_id, schedule_interval, config from timescaledb_information.jobs "
            "where proc_name = 'policy_retention' and hypertable_name = 'metric_history'",
        )
        assert row[1:] == (timedelta(days=1), {"drop_after": "30 days", "hypertable_id": ANY})
        chunks = "select show_chunks('vigil.metric_history')"  # chunks and their ranges
        assert len(db.execute(chunks).fetchall()) == 2  # 7-day chunks, 40 days apart
        size = db.execute("select * from hypertable_detailed_size('vigil.metric_history')")
        assert [c.name for c in size.description or []][:4] == [
            "table_bytes",
            "index_bytes",
            "toast_bytes",
            "total_bytes",
        ]
        sizes = size.fetchall()
        assert len(sizes) == 1 and int(str(sizes[0][3])) > 0
        db.execute("call run_job(%s)", (row[0],))  # what the scheduler does daily
        assert len(db.execute(chunks).fetchall()) == 1
    else:
        db.execute(
            "update vigil.portable_jobs set config = jsonb_set(config, '{retention}', "
            "'\"30 days\"') where job = 'prune_metric_history'"
        )
        assert db.execute(
            "select config ->> 'retention' from vigil.portable_jobs "
            "where job = 'prune_metric_history'"
        ).fetchone() == ("30 days",)
        assert db.execute(
            "select vigil.prune_metric_history(%s, config) from vigil.portable_jobs "
            "where job = 'prune_metric_history'",
            (now,),
        ).fetchone() == (1,)
        by_hand = 'select vigil.prune_metric_history(now(), \'{"retention": "30 days"}\')'
        assert db.execute(by_hand).fetchone() == (0,)  # nothing older is left
    assert db.execute("select at from vigil.metric_history").fetchall() == [(now,)]


def test_rules_are_tunable(db: Conn) -> None:
    db.execute("update vigil.rules set threshold = 95 where type = 'disk'")
    assert ingest(db, "h", "/", "disk", "94", T0) == "ok"
    assert ingest(db, "h", "/", "disk", "96", T0 + minutes(1)) == "alert"
    assert outbox_texts(db) == ["Alert: h - / Value: 96"]
