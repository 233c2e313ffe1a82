"""The SQL recipes of docs/dba.md work as written, in both modes (``db``)."""

from __future__ import annotations

from datetime import timedelta

from tests.support.sql import T0, Conn, detect, ingest, minutes, outbox_texts


def test_mode_view_explains_itself(db: Conn, mode: str) -> None:
    row = db.execute("select mode, reason, server_version from vigil.mode").fetchone()
    assert row is not None
    assert row[0] == ("timescaledb" if mode == "timescale" else "portable")
    assert len(str(row[1])) > 40 and row[2]


def test_tune_the_detector_interval(db: Conn, mode: str) -> None:
    if mode == "timescale":
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
        assert (
            db.execute("select count(*) from timescaledb_information.job_history").fetchone()
            is not None
        )
    else:
        db.execute(
            "update vigil.portable_jobs set schedule_interval = interval '10 seconds' "
            "where job = 'detect'"
        )
        db.execute("update vigil.portable_jobs set enabled = false where job = 'detect'")
        row = db.execute(
            "select schedule_interval, enabled from vigil.jobs where call = 'vigil._job_detect'"
        ).fetchone()
    assert row == (timedelta(seconds=10), False)


def test_requeue_a_dead_letter(db: Conn) -> None:
    ingest(db, "h", "d", "disk", "99", T0)
    row = db.execute("select id from vigil.outbox_claim('w', interval '1 minute', 10)").fetchone()
    assert row is not None
    db.execute("select vigil.outbox_settle(%s, 'w', 'dead', 'Forbidden: bot was kicked')", row)
    assert db.execute("select delivery from vigil.outbox_status").fetchone() == (
        "dead letter: Forbidden: bot was kicked",
    )
    requeued = db.execute(
        "update vigil.outbox set status = 'pending', attempts = 0, next_attempt_at = now(), "
        "claimed_by = null, claimed_until = null where id = %s and status = 'dead'",
        row,
    ).rowcount
    db.execute("select pg_notify('vigil_outbox', '')")
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
    if mode == "timescale":
        db.execute("select remove_retention_policy('vigil.metric_history')")
        db.execute("select add_retention_policy('vigil.metric_history', interval '30 days')")
        row = db.execute(
            "select config ->> 'drop_after' from timescaledb_information.jobs "
            "where proc_name = 'policy_retention' and hypertable_name = 'metric_history'"
        ).fetchone()
        assert row == ("30 days",)
        db.execute("select show_chunks('vigil.metric_history')")
        db.execute("select * from hypertable_detailed_size('vigil.metric_history')")
    else:
        db.execute(
            "update vigil.portable_jobs set config = jsonb_set(config, '{retention}', "
            "'\"30 days\"') where job = 'prune_metric_history'"
        )
        ingest(db, "h", "p", "ping", None, T0 - timedelta(days=31), now=T0)
        ingest(db, "h", "p", "ping", None, T0)
        assert db.execute(
            "select vigil.prune_metric_history(%s, config) from vigil.portable_jobs "
            "where job = 'prune_metric_history'",
            (T0,),
        ).fetchone() == (1,)


def test_rules_are_tunable(db: Conn) -> None:
    db.execute("update vigil.rules set threshold = 95 where type = 'disk'")
    assert ingest(db, "h", "/", "disk", "94", T0) == "ok"
    assert ingest(db, "h", "/", "disk", "96", T0 + minutes(1)) == "alert"
    assert outbox_texts(db) == ["Alert: h - / Value: 96"]
