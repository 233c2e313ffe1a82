"""Helpers of the notifier tests: a relay on the fake Telegram, the outbox as rows."""

from __future__ import annotations

import time

import psycopg

from notifier.channels.telegram import TelegramChannel
from notifier.relay import Relay
from tests.conftest import make_settings
from tests.support.fake_telegram import FakeTelegram

Conn = psycopg.Connection[tuple[object, ...]]


def relay_for(dsn: str, telegram: FakeTelegram | None, **env: str) -> Relay:
    extra = {"VIGIL_RETRY_BASE_SECONDS": "0.2", "VIGIL_RETRY_MAX_SECONDS": "0.4"}
    if telegram is not None:
        extra.update(
            TELEGRAM_TOKEN=telegram.token,
            TELEGRAM_CHAT_ID="42",
            TELEGRAM_API_BASE=telegram.base_url,
            VIGIL_TELEGRAM_TIMEOUT="1",
        )
    extra.update(env)
    settings = make_settings(dsn, **extra)
    return Relay(settings, TelegramChannel(settings) if telegram is not None else None)


def outbox(conn: Conn) -> list[tuple[object, ...]]:
    return conn.execute(
        "select status, attempts, last_error, delivered_at is not null "
        "from vigil.outbox order by id"
    ).fetchall()


def drain_until(relay: Relay, conn: Conn, done: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        relay.drain(conn)
        if conn.execute(
            "select count(*) from vigil.outbox where status = 'pending'"
        ).fetchone() == (0,):
            return
        time.sleep(0.05)
    raise AssertionError(f"outbox not settled: {outbox(conn)}")
