"""Detection boundaries, no repeats, recovery and concurrency, in SQL with injected time."""

from __future__ import annotations

import threading

import psycopg
import pytest

from tests.sql.helpers import T0, Conn, detect, ingest, minutes, outbox_texts, state, transitions


@pytest.mark.parametrize(("age", "alerts"), [(6, True), (4, False), (5, True), (4.99, False)])
def test_ping_default_deadline_is_five_minutes(conn: Conn, age: float, alerts: bool) -> None:
    ingest(conn, "web-1", "cron", "ping", None, T0)
    assert detect(conn, T0 + minutes(age)) == int(alerts)
    assert state(conn, "web-1", "cron") == ("alert" if alerts else "ok")
    assert outbox_texts(conn) == (["Alert: web-1 - cron"] if alerts else [])


@pytest.mark.parametrize(("age", "alerts"), [(1445, True), (1439, False)])
def test_ping_value_is_the_deadline_in_minutes(conn: Conn, age: int, alerts: bool) -> None:
    ingest(conn, "db", "backup", "ping", "1440", T0)
    detect(conn, T0 + minutes(age))
    assert state(conn, "db", "backup") == ("alert" if alerts else "ok")
    assert outbox_texts(conn) == (["Alert: db - backup Value: 1440"] if alerts else [])


def test_default_deadline_is_tunable_in_rules(conn: Conn) -> None:
    conn.execute("update vigil.rules set default_deadline_minutes = 10 where type = 'ping'")
    ingest(conn, "web-1", "cron", "ping", "not-a-number", T0)
    assert detect(conn, T0 + minutes(9)) == 0
    assert detect(conn, T0 + minutes(11)) == 1


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
def test_disk_threshold_decided_at_ingest(conn: Conn, value: str | None, expected: str) -> None:
    assert ingest(conn, "web-1", "/", "disk", value, T0) == expected
    assert state(conn, "web-1", "/") == expected
    want = [] if expected == "ok" else ["Alert: web-1 - /" + (f" Value: {value}" if value else "")]
    assert outbox_texts(conn) == want


def test_no_repeat_while_in_alert(conn: Conn) -> None:
    ingest(conn, "h", "p", "ping", "1", T0)
    assert detect(conn, T0 + minutes(2)) == 1
    assert detect(conn, T0 + minutes(3)) == 0
    assert detect(conn, T0 + minutes(60)) == 0
    ingest(conn, "h", "d", "disk", "95", T0)
    ingest(conn, "h", "d", "disk", "99", T0 + minutes(1))
    ingest(conn, "h", "d", "disk", "abc", T0 + minutes(2))
    assert outbox_texts(conn) == ["Alert: h - p Value: 1", "Alert: h - d Value: 95"]


def test_recovery_and_second_alert(conn: Conn) -> None:
    ingest(conn, "h", "p", "ping", None, T0)
    detect(conn, T0 + minutes(6))
    ingest(conn, "h", "p", "ping", None, T0 + minutes(7))
    assert state(conn, "h", "p") == "ok"
    assert detect(conn, T0 + minutes(8)) == 0
    assert detect(conn, T0 + minutes(13)) == 1
    ingest(conn, "h", "d", "disk", "91", T0)
    ingest(conn, "h", "d", "disk", "90", T0 + minutes(1))
    assert outbox_texts(conn) == [
        "Alert: h - p",
        "OK again: h - p",
        "Alert: h - p",
        "Alert: h - d Value: 91",
        "OK again: h - d Value: 90",
    ]
    assert transitions(conn)[:2] == [("ok", "alert"), ("alert", "ok")]


def test_stale_ping_alerts_at_ingest(conn: Conn) -> None:
    assert ingest(conn, "h", "p", "ping", "5", T0, now=T0 + minutes(6)) == "alert"
    assert outbox_texts(conn) == ["Alert: h - p Value: 5"]


def test_new_post_updates_type_and_value_and_keeps_state(conn: Conn) -> None:
    ingest(conn, "h", "x", "disk", "95", T0)
    ingest(conn, "h", "x", "ping", "60", T0 + minutes(1))
    row = conn.execute("select type, value, state from vigil.metrics").fetchone()
    # A fresh ping on an alerting metric is a recovery.
    assert row == ("ping", "60", "ok")
    assert conn.execute("select count(*) from vigil.metric_history").fetchone() == (2,)


def test_unknown_type_is_rejected_with_a_hint(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        ingest(conn, "h", "x", "cpu", "1", T0)
    assert info.value.diag.message_primary == 'unknown metric type "cpu"'
    assert info.value.diag.message_hint == "type must be one of: disk, ping"


def test_detector_reads_only_due_rows(conn: Conn) -> None:
    conn.execute("set enable_seqscan = off")  # an empty table would be scanned otherwise
    plan = " ".join(
        str(r[0])
        for r in conn.execute(
            "explain select id from vigil.metrics where state = 'ok' and deadline is not null "
            "and deadline <= now() order by deadline"
        )
    )
    assert "metrics_open_deadline_idx" in plan


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
    """A run that holds its rows uncommitted: a second run skips them, adds nothing."""
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
        second.commit()
        assert done == [0]
        assert first.execute("select count(*) from vigil.outbox").fetchone() == (1,)


def test_detector_heartbeat_and_stall_alerts(conn: Conn) -> None:
    detect(conn, T0)
    row = conn.execute(
        "select runs, last_result from vigil.job_heartbeats where job = 'detect'"
    ).fetchone()
    assert row == (1, 0)
    assert conn.execute("select vigil.check_stalls(now() + interval '1 minute')").fetchone() == (0,)
    assert conn.execute("select vigil.check_stalls(now() + interval '3 minutes')").fetchone() == (
        1,
    )
    assert conn.execute("select vigil.check_stalls(now() + interval '4 minutes')").fetchone() == (
        0,
    )
    detect(conn, T0)
    assert conn.execute("select vigil.check_stalls(now())").fetchone() == (1,)
    texts = outbox_texts(conn)
    assert texts[0].startswith("Alert: Vigil job detect has not run since ")
    assert texts[1] == "OK again: Vigil job detect runs again"
