"""The prober against local HTTP targets: 200, 500, timeouts, redirects, body checks,
and alerts through the fake Telegram. Local targets are on 127.0.0.1, so these services
have allow_internal (the SSRF guard is tested in test_ssrf.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifier.channels.telegram import TelegramChannel
from notifier.relay import Relay
from tests.conftest import make_settings
from tests.support.fake_telegram import FakeTelegram
from tests.support.targets import Target
from tests.support.uptime import (
    Conn,
    add,
    events,
    last_check,
    later,
    outbox_texts,
    run_checks,
    state,
)


@pytest.fixture
def target() -> Iterator[Target]:
    with Target() as t:
        yield t


def test_up_with_response_time(dsn: str, conn: Conn, target: Target) -> None:
    add(conn, "ok", target.base + "/ok", body_contains="hello")
    assert run_checks(dsn) == 1
    ok, status, ms, error = last_check(conn, "ok")
    assert (ok, status, error) == (True, 200, None)
    assert isinstance(ms, float) and 0 < ms < 2000
    assert state(conn, "ok") == "up"
    assert run_checks(dsn) == 0  # not due again before its interval


def test_500_is_down_and_body_mismatch_fails(dsn: str, conn: Conn, target: Target) -> None:
    add(conn, "fail", target.base + "/fail")
    add(conn, "body", target.base + "/ok", body_contains="goodbye")
    add(conn, "tea", target.base + "/teapot", expected_status=418)
    assert run_checks(dsn) == 3
    assert last_check(conn, "fail")[::3] == (False, "HTTP 500")
    assert last_check(conn, "body")[::3] == (False, 'body does not contain "goodbye"')
    assert last_check(conn, "tea")[0] is True
    assert (state(conn, "fail"), state(conn, "body"), state(conn, "tea")) == ("down", "down", "up")


def test_slow_target_times_out(dsn: str, conn: Conn, target: Target) -> None:
    target.slow_seconds = 3
    add(conn, "slow", target.base + "/slow", timeout=0.5)
    run_checks(dsn)
    ok, status, ms, error = last_check(conn, "slow")
    assert (ok, status, ms, error) == (False, None, None, "timeout after 0.5s")


def test_connection_refused(dsn: str, conn: Conn) -> None:
    with Target() as t:
        url = t.base + "/ok"
    add(conn, "closed", url)  # the port is closed now
    run_checks(dsn)
    error = last_check(conn, "closed")[3]
    assert str(error).startswith("connection failed")


def test_invalid_url_is_a_failed_check(dsn: str, conn: Conn) -> None:
    add(conn, "port", "http://127.0.0.1:99999/")
    assert run_checks(dsn) == 1
    assert last_check(conn, "port")[3] == "connection failed: invalid port 99999"
    assert run_checks(dsn) == 0  # recorded and rescheduled, not left leased


def test_redirects_are_followed(dsn: str, conn: Conn, target: Target) -> None:
    add(conn, "hop", target.base + "/redirect?to=/redirect%3Fto%3D/fail")
    run_checks(dsn)
    assert last_check(conn, "hop")[::3] == (False, "HTTP 500")
    assert target.requests == ["/redirect", "/redirect", "/fail"]


def test_retries_flips_events_and_telegram(
    dsn: str, conn: Conn, target: Target, telegram: FakeTelegram
) -> None:
    add(conn, "web", target.base + "/switch", retries=1)
    run_checks(dsn)
    assert state(conn, "web") == "up"
    target.switch_ok = False
    run_checks(dsn, now=later(conn, 15))
    assert state(conn, "web") == "up"  # one failure is retried
    run_checks(dsn, now=later(conn, 30))
    assert state(conn, "web") == "down"
    assert events(conn, "web") == [("uptime", False), ("downtime", True)]
    target.switch_ok = True
    run_checks(dsn, now=later(conn, 45))
    assert events(conn, "web") == [("uptime", False), ("downtime", False), ("uptime", True)]

    settings = make_settings(
        dsn,
        **telegram.env(),
        VIGIL_TELEGRAM_TIMEOUT="2",
    )
    assert settings.telegram_token
    relay = Relay(settings, TelegramChannel(settings))
    assert relay.drain(conn) == 2
    texts = telegram.texts()
    assert texts[0] == "Alert: web - down (HTTP 500)"
    assert texts[1].startswith("OK again: web (down for ") and texts[1].endswith("s)")
    assert outbox_texts(conn) == texts
