"""Uptime in both database modes: checks is a hypertable with a retention policy in
TimescaleDB mode, a plain table pruned by a portable job otherwise; the decisions are the same."""

from __future__ import annotations

from datetime import timedelta

from tests.support.timescale import is_hypertable, policy
from tests.support.uptime import Conn, add, events, outbox_texts


def test_flip_in_both_modes(db: Conn) -> None:
    sid = add(db, "web", "https://web.example/", retries=1)
    for seconds, status in ((0, 200), (15, 500), (20, 500), (35, 200)):
        db.execute(
            "select vigil.record_check(%s, now() - interval '1 hour' + %s, %s, 5.0, null, null)",
            (sid, timedelta(seconds=seconds), status),
        )
    assert events(db, "web") == [("uptime", False), ("downtime", False), ("uptime", True)]
    assert outbox_texts(db) == ["Alert: web - down (HTTP 500)", "OK again: web (down for 20s)"]


def test_retention_in_both_modes(db: Conn, mode: str) -> None:
    sid = add(db, "old", "https://old.example/")
    for age in (40, 0):
        db.execute(
            "select vigil.record_check(%s, now() - %s, 200, 1.0, null, null)",
            (sid, timedelta(days=age)),
        )
    if mode == "portable":
        job = db.execute(
            "select enabled, config ->> 'retention' from vigil.portable_jobs "
            "where job = 'prune_checks'"
        ).fetchone()
        assert job == (True, "30 days")
        assert db.execute("select vigil.prune_checks(now(), '{}')").fetchone() == (1,)
    else:
        assert is_hypertable(db, "checks")
        job_id, config = policy(db, "policy_retention", "checks")
        assert config["drop_after"] == "30 days"
        db.execute("call run_job(%s)", (job_id,))
        assert db.execute(
            "select enabled from vigil.portable_jobs where job = 'prune_checks'"
        ).fetchone() == (False,)
    assert db.execute("select count(*) from vigil.checks").fetchone() == (1,)
    # The all-time counters are kept on the service row, so retention does not change them.
    assert db.execute("select tick_count from vigil.services").fetchone() == (2,)
