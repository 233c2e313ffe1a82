"""Detection boundaries, no repeats, recovery and concurrency, in SQL with injected time.

Tests taking ``db`` run in both database modes (``[portable]`` on PostgreSQL,
``[timescale]`` on PGlite + TimescaleDB, see tests/support/timescale.py); the ones
that need several connections at once (``dsn``) are portable only: the TimescaleDB
test server takes one connection at a time."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import psycopg
import pytest

from tests.support.sql import (
    T0,
    Conn,
    db_now,
    detect,
    ingest,
    minutes,
    outbox_texts,
    run_scheduled_detector,
    state,
    transitions,
)

ZERO = timedelta(0)
US = timedelta(microseconds=1)
BOUNDARY_IDS = ["1us-before", "at-deadline", "1us-after"]


@pytest.mark.parametrize(("age", "alerts"), [(6, True), (4, False), (5, True), (4.99, False)])
def test_ping_default_deadline_is_five_minutes(db: Conn, age: float, alerts: bool) -> None:
    ingest(db, "web-1", "cron", "ping", None, T0)
    assert detect(db, T0 + minutes(age)) == int(alerts)
    assert state(db, "web-1", "cron") == ("alert" if alerts else "ok")
    assert outbox_texts(db) == (["Alert: web-1 - cron"] if alerts else [])


@pytest.mark.parametrize(("age", "alerts"), [(1445, True), (1439, False)])
def test_ping_value_is_the_deadline_in_minutes(db: Conn, age: int, alerts: bool) -> None:
    ingest(db, "db", "backup", "ping", "1440", T0)
    detect(db, T0 + minutes(age))
    assert state(db, "db", "backup") == ("alert" if alerts else "ok")
    assert outbox_texts(db) == (["Alert: db - backup Value: 1440"] if alerts else [])


def test_default_deadline_is_tunable_in_rules(db: Conn) -> None:
    db.execute("update vigil.rules set default_deadline_minutes = 10 where type = 'ping'")
    ingest(db, "web-1", "cron", "ping", "not-a-number", T0)
    assert detect(db, T0 + minutes(9)) == 0
    assert detect(db, T0 + minutes(11)) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("91", "alert"),
        ("90", "ok"),
        ("abc", "alert"),
        ("90.0001", "alert"),
        ("", "alert"),
        (None, "alert"),
        (" 12 ", "ok"),
        ("9" * 1000, "alert"),
        ("1e400", "alert"),
    ],
)
def test_disk_threshold_decided_at_ingest(db: Conn, value: str | None, expected: str) -> None:
    assert ingest(db, "web-1", "/", "disk", value, T0) == expected
    assert state(db, "web-1", "/") == expected
    want = [] if expected == "ok" else ["Alert: web-1 - /" + (f" Value: {value}" if value else "")]
    assert outbox_texts(db) == want


def test_no_repeat_while_in_alert(db: Conn) -> None:
    ingest(db, "h", "p", "ping", "1", T0)
    assert detect(db, T0 + minutes(2)) == 1
    assert detect(db, T0 + minutes(3)) == 0
    assert detect(db, T0 + minutes(60)) == 0
    ingest(db, "h", "d", "disk", "95", T0)
    ingest(db, "h", "d", "disk", "99", T0 + minutes(1))
    ingest(db, "h", "d", "disk", "abc", T0 + minutes(2))
    assert outbox_texts(db) == ["Alert: h - p Value: 1", "Alert: h - d Value: 95"]


def test_recovery_and_second_alert(db: Conn) -> None:
    ingest(db, "h", "p", "ping", None, T0)
    detect(db, T0 + minutes(6))
    ingest(db, "h", "p", "ping", None, T0 + minutes(7))
    assert state(db, "h", "p") == "ok"
    assert detect(db, T0 + minutes(8)) == 0
    assert detect(db, T0 + minutes(13)) == 1
    ingest(db, "h", "d", "disk", "91", T0)
    ingest(db, "h", "d", "disk", "90", T0 + minutes(1))
    assert outbox_texts(db) == [
        "Alert: h - p",
        "OK again: h - p",
        "Alert: h - p",
        "Alert: h - d Value: 91",
        "OK again: h - d Value: 90",
    ]
    assert transitions(db)[:2] == [("ok", "alert"), ("alert", "ok")]


def test_stale_ping_alerts_at_ingest(db: Conn) -> None:
    assert ingest(db, "h", "p", "ping", "5", T0, now=T0 + minutes(6)) == "alert"
    assert outbox_texts(db) == ["Alert: h - p Value: 5"]


# A ping with its own deadline (5 minutes), and one with the rule's default (5 minutes).
@pytest.mark.parametrize("value", ["5", None], ids=["value-5", "default"])
@pytest.mark.parametrize(
    ("offset", "expected"), [(-US, "ok"), (ZERO, "alert"), (US, "alert")], ids=BOUNDARY_IDS
)
def test_stale_ping_at_ingest_deadline_boundary(
    db: Conn, value: str | None, offset: timedelta, expected: str
) -> None:
    """A report that arrives with its deadline (at + value minutes) exactly at p_now is
    already late (``deadline <= p_now``); one microsecond earlier it is fresh."""
    deadline = T0 + minutes(5)
    assert ingest(db, "h", "p", "ping", value, T0, now=deadline + offset) == expected
    row = db.execute("select last_seen, deadline, state from vigil.metrics").fetchone()
    assert row == (T0, deadline, expected)
    reasons = db.execute("select from_state, to_state, reason, at from vigil.transitions")
    if expected == "alert":
        assert reasons.fetchall() == [
            ("ok", "alert", "ping older than its deadline", deadline + offset)
        ]
        assert outbox_texts(db) == ["Alert: h - p" + (f" Value: {value}" if value else "")]
    else:
        assert reasons.fetchall() == []
        assert outbox_texts(db) == []
    # The batch entry point (what the API calls) judges the same report the same way.
    batch = db.execute(
        "select ord, state, error from vigil.ingest_metrics(%s, %s, %s, %s, %s, %s)",
        (["h"], ["q"], ["ping"], [value], [T0], deadline + offset),
    ).fetchall()
    assert batch == [(1, expected, None)]


@pytest.mark.parametrize(("offset", "alerts"), [(-US, 0), (ZERO, 1), (US, 1)], ids=BOUNDARY_IDS)
def test_detect_deadline_boundary(db: Conn, offset: timedelta, alerts: int) -> None:
    """vigil.detect(p_now) alerts a ping whose deadline is exactly p_now, not one
    microsecond before it."""
    ingest(db, "h", "p", "ping", "5", T0)
    assert detect(db, T0 + minutes(5) + offset) == alerts
    assert state(db, "h", "p") == ("alert" if alerts else "ok")
    assert outbox_texts(db) == (["Alert: h - p Value: 5"] if alerts else [])


def test_new_post_updates_type_and_value_and_keeps_state(db: Conn) -> None:
    ingest(db, "h", "x", "disk", "95", T0)
    ingest(db, "h", "x", "ping", "60", T0 + minutes(1))
    row = db.execute("select type, value, state from vigil.metrics").fetchone()
    # A fresh ping on an alerting metric is a recovery.
    assert row == ("ping", "60", "ok")
    assert db.execute("select count(*) from vigil.metric_history").fetchone() == (2,)


def test_unknown_type_is_rejected_with_a_hint(db: Conn) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        ingest(db, "h", "x", "cpu", "1", T0)
    assert info.value.diag.message_primary == 'unknown metric type "cpu"'
    assert info.value.diag.message_hint == "type must be one of: disk, ping"


def test_detector_reads_only_due_rows(db: Conn) -> None:
    db.execute("set enable_seqscan = off")  # an empty table would be scanned otherwise
    plan = " ".join(
        str(r[0])
        for r in db.execute(
            "explain select id from vigil.metrics where state = 'ok' and deadline is not null "
            "and deadline <= now() order by deadline"
        )
    )
    assert "metrics_open_deadline_idx" in plan


def test_scheduled_detector_job_alerts_an_overdue_ping(db: Conn, mode: str) -> None:
    """The real scheduled job, not vigil.detect(p_now): CALL run_job(<detector job>) in
    TimescaleDB mode, a vigil.run_due_jobs tick in portable mode; both at now()."""
    seen = db_now(db) - minutes(10)
    ingest(db, "h", "p", "ping", None, seen)
    ingest(db, "h", "fresh", "ping", None, db_now(db))
    assert state(db, "h", "p") == "ok"
    run_scheduled_detector(db, mode)
    assert state(db, "h", "p") == "alert"
    assert state(db, "h", "fresh") == "ok"
    assert transitions(db) == [("ok", "alert")]
    assert outbox_texts(db) == ["Alert: h - p"]
    assert db.execute(
        "select runs, last_result from vigil.job_heartbeats where job = 'detect'"
    ).fetchone() == (1, 1)
    run_scheduled_detector(db, mode)  # no repeat while in alert
    assert outbox_texts(db) == ["Alert: h - p"]


def test_two_detector_runs_at_once_make_one_transition(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as setup:
        for i in range(300):
            ingest(setup, f"h{i}", "p", "ping", None, T0)
    barrier = threading.Barrier(4)
    results: list[int] = []

    def run() -> None:
        with psycopg.connect(dsn, autocommit=True) as c:
            barrier.wait()
            results.append(detect(c, T0 + minutes(10)))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 300
    with psycopg.connect(dsn) as c:
        assert c.execute("select count(*) from vigil.transitions").fetchone() == (300,)
        assert c.execute("select count(*), count(distinct text) from vigil.outbox").fetchone() == (
            300,
            300,
        )


def test_overlapping_runs_one_uncommitted(dsn: str) -> None:
    """A run that holds its rows uncommitted: a second run leaves them alone and adds
    nothing. (Two runs also serialise on the detector's heartbeat row, so this cannot tell
    skipping from waiting; test_detect_skips_a_locked_row_without_waiting does.)"""
    with psycopg.connect(dsn, autocommit=True) as setup:
        ingest(setup, "h", "p", "ping", None, T0)
    with psycopg.connect(dsn) as first, psycopg.connect(dsn) as second:
        assert detect(first, T0 + minutes(6)) == 1  # not committed yet
        done: list[int] = []
        t = threading.Thread(target=lambda: done.append(detect(second, T0 + minutes(6))))
        t.start()
        t.join(timeout=0.5)
        first.commit()
        t.join(timeout=10)
        assert not t.is_alive()
        second.commit()
        assert done == [0]
        assert first.execute("select count(*) from vigil.outbox").fetchone() == (1,)
        assert first.execute(
            "select runs, last_result from vigil.job_heartbeats where job = 'detect'"
        ).fetchone() == (2, 0)


def detect_beside_a_locked_row(dsn: str, lock_timeout: str) -> int | None:
    """Two overdue pings, "busy" and "free"; another transaction holds the row of "busy"
    (FOR UPDATE, as an ingest of that metric does until it commits). Runs detect() in a
    second session whose waits for a lock end after lock_timeout: its count of transitions,
    or None when it had to wait for the held row."""
    with psycopg.connect(dsn, autocommit=True) as setup:
        ingest(setup, "h", "busy", "ping", None, T0)
        ingest(setup, "h", "free", "ping", None, T0)
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as runner:
        held = holder.execute("select id from vigil.metrics where name = 'busy' for update")
        assert len(held.fetchall()) == 1
        runner.execute("select set_config('lock_timeout', %s, false)", (lock_timeout,))
        try:
            return detect(runner, T0 + minutes(6))
        except psycopg.errors.LockNotAvailable:
            return None
        finally:
            holder.rollback()


def test_detect_skips_a_locked_row_without_waiting(dsn: str) -> None:
    """SKIP LOCKED: a run does not wait for a metric row another transaction holds; it
    alerts the others at once and leaves that one to the next run."""
    transitions_made = detect_beside_a_locked_row(dsn, "5s")
    assert transitions_made is not None, "detect() waited for a row another session held"
    assert transitions_made == 1
    with psycopg.connect(dsn, autocommit=True) as c:
        assert (state(c, "h", "busy"), state(c, "h", "free")) == ("ok", "alert")
        assert detect(c, T0 + minutes(7)) == 1  # the row is free again: the next run takes it
        assert outbox_texts(c) == ["Alert: h - free", "Alert: h - busy"]


def test_mutation_guard_detect_without_skip_locked_waits(dsn: str) -> None:
    """The probe above can fail: the same vigil.detect without SKIP LOCKED (replaced in
    this test's own database only) waits for the held row until lock_timeout."""
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(
            "select pg_get_functiondef('vigil.detect(timestamptz)'::regprocedure)"
        ).fetchone()
        assert row is not None
        source = str(row[0])
        assert source.count("for update skip locked") == 1, "the detector's query changed"
        c.execute(source.replace("for update skip locked", "for update").encode())
    assert detect_beside_a_locked_row(dsn, "200ms") is None
    with psycopg.connect(dsn, autocommit=True) as c:
        assert outbox_texts(c) == []  # the waiting run was rolled back


def test_detector_heartbeat_and_stall_alerts(db: Conn) -> None:
    detect(db, T0)
    row = db.execute(
        "select runs, last_result from vigil.job_heartbeats where job = 'detect'"
    ).fetchone()
    assert row == (1, 0)
    assert db.execute("select vigil.check_stalls(now() + interval '1 minute')").fetchone() == (0,)
    assert db.execute("select vigil.check_stalls(now() + interval '3 minutes')").fetchone() == (1,)
    assert db.execute("select vigil.check_stalls(now() + interval '4 minutes')").fetchone() == (0,)
    detect(db, T0)
    assert db.execute("select vigil.check_stalls(now())").fetchone() == (1,)
    texts = outbox_texts(db)
    assert texts[0].startswith("Alert: Vigil job detect has not run since ")
    assert texts[1] == "OK again: Vigil job detect runs again"


def test_batch_ingest_equals_one_by_one(dsn: str) -> None:
    """vigil.ingest_metrics (what the API calls for grouped requests) makes exactly the
    transitions and messages that the same reports make one at a time, in order."""
    rng = random.Random(7)
    reports = []
    for i in range(300):
        name = f"m{rng.randrange(12)}"
        if rng.random() < 0.5:
            reports.append(
                (
                    "h",
                    name,
                    "disk",
                    rng.choice(["95", "50", "90", "abc", None]),
                    T0 + minutes(i / 10),
                )
            )
        else:
            reports.append(
                (
                    "h",
                    "p" + name,
                    "ping",
                    rng.choice(["1", "5", None]),
                    T0 + minutes(i / 10 - rng.choice([0, 7])),
                )
            )
    reports.append(("h", "x", "cpu", "1", T0))
    now = T0 + minutes(31)
    results = {}
    for mode in ("one", "batch"):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "truncate vigil.metrics, vigil.metric_history, vigil.transitions, "
                "vigil.outbox restart identity cascade"
            )
            if mode == "one":
                for host, name, type_, value, at in reports:
                    if type_ != "cpu":
                        ingest(conn, host, name, type_, value, at, now=now)
            else:
                for start in range(0, len(reports), 37):
                    chunk = reports[start : start + 37]
                    conn.execute(
                        "select * from vigil.ingest_metrics(%s, %s, %s, %s, %s, %s)",
                        (
                            [r[0] for r in chunk],
                            [r[1] for r in chunk],
                            [r[2] for r in chunk],
                            [r[3] for r in chunk],
                            [r[4] for r in chunk],
                            now,
                        ),
                    )
            results[mode] = (
                conn.execute(
                    "select m.name, t.from_state, t.to_state, t.value, t.reason "
                    "from vigil.transitions t join vigil.metrics m on m.id = t.metric_id "
                    "order by t.id"
                ).fetchall(),
                conn.execute("select text from vigil.outbox order by id").fetchall(),
                conn.execute(
                    "select host, name, type, value, last_seen, deadline, state "
                    "from vigil.metrics order by host, name"
                ).fetchall(),
                conn.execute("select count(*) from vigil.metric_history").fetchone(),
            )
    one, batch = results["one"], results["batch"]
    assert len(one[0]) > 20  # the sequence really flips states
    # Batches apply reports of different metrics grouped by metric; per metric the order
    # (and so every transition and message) is the same.
    assert sorted(one[0], key=lambda r: str(r[0])) == sorted(batch[0], key=lambda r: str(r[0]))
    assert sorted(one[1]) == sorted(batch[1])
    assert one[2:] == batch[2:]
    with psycopg.connect(dsn) as conn:
        rejected = conn.execute(
            "select ord, state, error from vigil.ingest_metrics(%s, %s, %s, %s, %s)",
            (["h", "h"], ["a", "b"], ["cpu", "disk"], ["1", "10"], [None, None]),
        ).fetchall()
    assert rejected == [
        (1, None, 'unknown metric type "cpu" (type must be one of: disk, ping)'),
        (2, "ok", None),
    ]
