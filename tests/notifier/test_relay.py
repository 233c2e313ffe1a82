"""Delivery through the fake Telegram: success, 429, 403, chat not found, outage,
migration, not configured, leases, escaping and length."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from notifier.channels.telegram import format_html
from notifier.relay import NOT_CONFIGURED
from tests.notifier.relays import Conn, drain_until, outbox, relay_for
from tests.support.fake_telegram import FakeTelegram
from tests.support.sql import T0, ingest


def test_delivered_with_html_escaping(dsn: str, conn: Conn, telegram: FakeTelegram) -> None:
    ingest(conn, "web<1>", "a & b", "disk", "95", T0)
    relay = relay_for(dsn, telegram)
    assert relay.drain(conn) == 1
    assert telegram.texts() == ["Alert: web&lt;1&gt; - a &amp; b Value: 95"]
    body = telegram.delivered[0].body
    assert body["parse_mode"] == "HTML"
    assert body["chat_id"] == "42"
    assert outbox(conn) == [("delivered", 1, None, True)]
    assert relay.drain(conn) == 0  # never sent twice


def test_429_waits_retry_after_then_succeeds(dsn: str, conn: Conn, telegram: FakeTelegram) -> None:
    telegram.respond(telegram.error(429, "Too Many Requests: retry after 1", retry_after=1))
    ingest(conn, "h", "d", "disk", "95", T0)
    relay = relay_for(dsn, telegram)
    relay.drain(conn)
    status, attempts, error, _ = outbox(conn)[0]
    assert (status, attempts) == ("pending", 1)
    assert str(error).startswith("429")
    wait = conn.execute(
        "select extract(epoch from next_attempt_at - now()) from vigil.outbox"
    ).fetchone()
    assert wait is not None and 0.5 < float(str(wait[0])) <= 1.0
    assert relay.drain(conn) == 0  # not before retry_after
    first = telegram.received[-1].at
    drain_until(relay, conn, None)
    assert telegram.received[-1].at - first >= 0.9
    assert telegram.texts() == ["Alert: h - d Value: 95"]
    assert outbox(conn) == [("delivered", 2, None, True)]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((403, "Forbidden: bot was kicked from the group chat"), "403 Forbidden: bot was kicked"),
        ((400, "Bad Request: chat not found"), "400 Bad Request: chat not found"),
    ],
)
def test_permanent_errors_are_dead_letters(
    dsn: str, conn: Conn, telegram: FakeTelegram, answer: tuple[int, str], reason: str
) -> None:
    telegram.respond(telegram.error(*answer))
    ingest(conn, "h", "d", "disk", "95", T0)
    relay_for(dsn, telegram).drain(conn)
    status, attempts, error, delivered = outbox(conn)[0]
    assert (status, attempts, delivered) == ("dead", 1, False)
    assert str(error).startswith(reason)
    assert relay_for(dsn, telegram).drain(conn) == 0
    assert len(telegram.received) == 1
    shown = conn.execute("select delivery from vigil.outbox_status").fetchone()
    assert shown is not None and str(shown[0]).startswith("dead letter: " + reason)


def test_unknown_chat_is_permanent(dsn: str, conn: Conn, telegram: FakeTelegram) -> None:
    ingest(conn, "h", "d", "disk", "95", T0)
    relay_for(dsn, telegram, TELEGRAM_CHAT_ID="777").drain(conn)
    assert outbox(conn)[0][:2] == ("dead", 1)


def test_telegram_down_then_up_is_delivered_once(
    dsn: str, conn: Conn, telegram: FakeTelegram
) -> None:
    ingest(conn, "h", "d", "disk", "95", T0)
    relay = relay_for(dsn, telegram)
    telegram.down()
    relay.drain(conn)
    time.sleep(0.5)
    relay.drain(conn)
    status, attempts, error, _ = outbox(conn)[0]
    assert status == "pending" and int(str(attempts)) >= 2
    assert "connection error" in str(error)
    telegram.up()
    telegram.respond(telegram.error(502, "Bad Gateway"))  # still flaky once up
    drain_until(relay, conn, None)
    assert telegram.texts() == ["Alert: h - d Value: 95"]
    assert outbox(conn)[0][0] == "delivered"


def test_timeout_is_retried(dsn: str, conn: Conn, telegram: FakeTelegram) -> None:
    telegram.delay = 1.5
    ingest(conn, "h", "d", "disk", "95", T0)
    relay = relay_for(dsn, telegram)
    relay.drain(conn)
    assert outbox(conn)[0][:3] == ("pending", 1, "timeout: no complete reply within 1 s")
    telegram.delay = 0
    drain_until(relay, conn, None)
    assert outbox(conn)[0][0] == "delivered"


def test_chat_migration_is_followed(dsn: str, conn: Conn, telegram: FakeTelegram) -> None:
    telegram.migrations["42"] = "-100500"
    telegram.chats.add("-100500")
    ingest(conn, "h", "d", "disk", "95", T0)
    relay = relay_for(dsn, telegram)
    relay.drain(conn)
    assert [r.body["chat_id"] for r in telegram.received] == ["42", "-100500"]
    assert outbox(conn)[0][0] == "delivered"
    assert conn.execute(
        "select old_chat_id, new_chat_id from vigil.chat_migrations"
    ).fetchall() == [("42", "-100500")]
    ingest(conn, "h", "d", "disk", "50", T0)
    relay.drain(conn)
    assert telegram.received[-1].body["chat_id"] == "-100500"
    assert len(telegram.received) == 3


def test_without_telegram_messages_are_kept_as_not_configured(dsn: str, conn: Conn) -> None:
    ingest(conn, "h", "d", "disk", "95", T0)
    relay_for(dsn, None).drain(conn)
    assert outbox(conn) == [("unconfigured", 1, NOT_CONFIGURED, False)]
    row = conn.execute("select text, delivery from vigil.outbox_status").fetchone()
    assert row == ("Alert: h - d Value: 95", "not delivered: Telegram not configured")


def test_claimed_row_of_a_dead_worker_is_delivered_after_its_lease(
    dsn: str, conn: Conn, telegram: FakeTelegram
) -> None:
    ingest(conn, "h", "d", "disk", "95", T0)
    claimed = conn.execute(
        "select id from vigil.outbox_claim('crashed', '1 second', 10)"
    ).fetchall()
    assert len(claimed) == 1
    relay = relay_for(dsn, telegram)
    assert relay.drain(conn) == 0  # leased to the crashed worker
    time.sleep(1.1)
    assert relay.drain(conn) == 1
    assert telegram.texts() == ["Alert: h - d Value: 95"]
    # The crashed worker cannot settle a row it no longer holds.
    assert conn.execute(
        "select vigil.outbox_delivered(%s, 'crashed')", (claimed[0][0],)
    ).fetchone() == (None,)


def test_gives_up_after_max_attempts(dsn: str, conn: Conn, telegram: FakeTelegram) -> None:
    telegram.respond(*[telegram.error(500, "Internal Server Error")] * 3)
    ingest(conn, "h", "d", "disk", "95", T0)
    relay = relay_for(dsn, telegram, VIGIL_MAX_ATTEMPTS="3")
    drain_until(relay, conn, None)
    status, attempts, error, _ = outbox(conn)[0]
    assert (status, attempts) == ("dead", 3)
    assert str(error) == "gave up after 3 attempts: 500 Internal Server Error"


def test_long_text_fits_telegram_limit() -> None:
    text = "<&>" * 3000
    html = format_html(text)
    assert len(html) <= 4096
    assert html.endswith("…")
    assert html.startswith("&lt;&amp;&gt;")
    assert "&" not in html.rsplit(";", 1)[-1].rstrip("…")  # no entity cut in half
    assert format_html("short <b>") == "short &lt;b&gt;"


def test_long_message_is_accepted_by_telegram(dsn: str, conn: Conn, telegram: FakeTelegram) -> None:
    ingest(
        conn,
        "h" * 200,
        "<x>" * 20,
        "disk",
        "9" * 1000,
        datetime.fromisoformat("2026-11-22T10:00:00+00:00"),
    )
    conn.execute("update vigil.outbox set text = repeat('<&>', 5000)")
    relay_for(dsn, telegram).drain(conn)
    assert outbox(conn)[0][0] == "delivered"
