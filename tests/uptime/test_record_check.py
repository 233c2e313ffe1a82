"""The decisions in SQL, with injected times: retries, flips, events, outbox texts,
counters, time-weighted uptime, claims."""

from __future__ import annotations

import re
from datetime import timedelta

import psycopg
import pytest

from tests.support.sql import T0
from tests.support.uptime import Conn, add, events, outbox_texts, state


def record(
    conn: Conn,
    sid: int,
    seconds: float,
    status: int | None = 200,
    ms: float | None = 10.0,
    error: str | None = None,
    body: bool | None = None,
) -> str:
    row = conn.execute(
        "select vigil.record_check(%s, %s, %s, %s, %s, %s)",
        (sid, T0 + timedelta(seconds=seconds), status, ms, error, body),
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_retries_then_down_then_ok_again_with_duration(conn: Conn) -> None:
    sid = add(conn, "shop", "https://shop.example/health", retries=2)
    assert state(conn, "shop") == "unknown"
    assert record(conn, sid, 0) == "up"
    assert events(conn, "shop") == [("uptime", True)]
    assert outbox_texts(conn) == []  # unknown -> up is not news
    # Two failures are retried: still up, no message, re-checked sooner.
    assert record(conn, sid, 15, 500) == "up"
    assert record(conn, sid, 20, None, None, "timeout after 15s") == "up"
    nxt = conn.execute("select next_check_at from vigil.services").fetchone()
    assert nxt == (T0 + timedelta(seconds=25),)  # retry_interval 5 s
    assert outbox_texts(conn) == []
    # The third consecutive failure declares it down.
    assert record(conn, sid, 25, 503) == "down"
    assert outbox_texts(conn) == ["Alert: shop - down (HTTP 503)"]
    rows = conn.execute(
        "select event, date_started, date_ended, reason from vigil.service_events order by id"
    ).fetchall()
    # The downtime started at the first failure of the streak; the uptime ended there.
    assert rows == [
        ("uptime", T0, T0 + timedelta(seconds=15), None),
        ("downtime", T0 + timedelta(seconds=15), None, "HTTP 503"),
    ]
    assert record(conn, sid, 40, 500) == "down"  # no second alert
    assert record(conn, sid, 15 + 192, 200) == "up"
    assert outbox_texts(conn)[1:] == ["OK again: shop (down for 3m 12s)"]
    assert events(conn, "shop") == [("uptime", False), ("downtime", False), ("uptime", True)]
    ids = conn.execute(
        "select count(*) from vigil.outbox where service_event_id is not null"
    ).fetchone()
    assert ids == (2,)


def test_a_success_resets_the_retry_count(conn: Conn) -> None:
    sid = add(conn, "api", "http://api.example/", retries=1)
    record(conn, sid, 0)
    record(conn, sid, 10, 500)
    record(conn, sid, 20, 200)
    assert record(conn, sid, 30, 500) == "up"
    assert record(conn, sid, 40, 500) == "down"


def test_new_service_that_fails_alerts(conn: Conn) -> None:
    sid = add(conn, "new", "http://new.example/", retries=0)
    assert record(conn, sid, 0, None, None, "connection failed: refused") == "down"
    assert outbox_texts(conn) == ["Alert: new - down (connection failed: refused)"]
    assert events(conn, "new") == [("downtime", True)]


@pytest.mark.parametrize(
    ("expected", "body", "status", "ok", "reason"),
    [
        (None, None, 399, True, None),
        (None, None, 400, False, "HTTP 400"),
        (204, None, 200, False, "HTTP 200, expected 204"),
        (418, None, 418, True, None),
        (None, "ready", 200, False, 'body does not contain "ready"'),
    ],
)
def test_what_counts_as_ok(
    conn: Conn, expected: int | None, body: str | None, status: int, ok: bool, reason: str | None
) -> None:
    sid = add(conn, "s", "http://s.example/", expected_status=expected, body_contains=body)
    record(conn, sid, 0, status, 5.0, None, False if body else None)
    assert conn.execute("select ok, error from vigil.checks").fetchone() == (ok, reason)


def test_counters_mean_and_uptime(conn: Conn) -> None:
    sid = add(conn, "m", "http://m.example/", retries=0)
    record(conn, sid, 0, 200, 10.0)
    record(conn, sid, 60, 200, 30.0)
    record(conn, sid, 120, 500, 20.0)  # down at 120
    record(conn, sid, 180, None, None, "timeout after 2s")  # no response time
    record(conn, sid, 240, 200, 40.0)  # up again at 240
    row = conn.execute(
        "select tick_count, up_count, down_count, uptime_percent, average_response_time_ms "
        "from vigil.service_status"
    ).fetchone()
    assert row == (5, 3, 2, 60.0, 25.0)  # mean of 10, 30, 20, 40
    # Time-weighted over the 300 s up to T0+300: up 0-120 and 240-300, down 120-240.
    uptime = conn.execute(
        "select vigil.service_uptime(%s, interval '1 hour', %s)", (sid, T0 + timedelta(seconds=300))
    ).fetchone()
    assert uptime == (60.0,)
    window = conn.execute(
        "select vigil.service_uptime(%s, interval '100 seconds', %s)",
        (sid, T0 + timedelta(seconds=300)),
    ).fetchone()
    assert window is not None and window[0] == pytest.approx(60.0)  # 200-240 down, 240-300 up


def test_claims_do_not_overlap(dsn: str, conn: Conn) -> None:
    for i in range(10):
        add(conn, f"s{i}", f"http://s{i}.example/")
    with psycopg.connect(dsn) as a, psycopg.connect(dsn) as b:
        first = [r[0] for r in a.execute("select id from vigil.claim_checks(6)").fetchall()]
        # a's transaction is still open: b skips its locked rows instead of waiting.
        second = [r[0] for r in b.execute("select id from vigil.claim_checks(6)").fetchall()]
        assert len(first) == 6 and len(second) == 4 and not set(first) & set(second)
        a.commit()
        b.commit()
    assert conn.execute("select count(*) from vigil.claim_checks(100)").fetchone() == (0,)
    lag = conn.execute("select vigil.check_lag(now() + interval '1 minute')").fetchone()
    # Leases pass: due again (for another prober) after timeout + 30 s.
    assert lag is not None and isinstance(lag[0], timedelta) and lag[0] > timedelta(0)


def test_removed_while_checking_is_ignored(conn: Conn) -> None:
    sid = add(conn, "gone", "http://gone.example/")
    conn.execute("select vigil.service_remove('gone')")
    row = conn.execute(
        "select vigil.record_check(%s, now(), 200, 1.0, null, null)", (sid,)
    ).fetchone()
    assert row == (None,)


@pytest.mark.parametrize(
    ("url", "interval", "message"),
    [
        ("ftp://files.example/", 15, "is not an http(s) URL"),
        ("http://ok.example/", 0.5, "out of range"),
    ],
)
def test_bad_services_are_refused_with_a_reason(
    conn: Conn, url: str, interval: float, message: str
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=re.escape(message)) as err:
        add(conn, "bad", url, interval=interval)
    assert err.value.diag.message_hint


def test_duplicate_name(conn: Conn) -> None:
    add(conn, "dup", "http://a.example/")
    with pytest.raises(psycopg.errors.UniqueViolation, match="exists already"):
        add(conn, "dup", "http://b.example/")


def test_config_update_bumps_updated_at_but_checks_do_not(conn: Conn) -> None:
    sid = add(conn, "u", "http://u.example/")
    conn.execute("update vigil.services set updated_at = '2020-01-01'")
    record(conn, sid, 0)
    assert conn.execute("select updated_at::date::text from vigil.services").fetchone() == (
        "2020-01-01",
    )
    conn.execute("update vigil.services set check_interval = interval '30 seconds'")
    assert conn.execute("select updated_at > '2020-01-02' from vigil.services").fetchone() == (
        True,
    )
