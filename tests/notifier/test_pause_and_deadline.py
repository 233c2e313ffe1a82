"""A 429's retry_after pauses the whole chat, for every notifier; a reply that drips in is
cut at the total deadline (VIGIL_TELEGRAM_TIMEOUT), retried, and holds up nothing else."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from notifier.channels import Delivered, Outcome, Retry
from notifier.channels.telegram import SendOutcome, TelegramChannel, TelegramClient
from notifier.relay import Relay
from tests.notifier.relays import Conn, relay_for
from tests.support.fake_telegram import FakeTelegram
from tests.support.sql import T0, ingest


def alerts(conn: Conn, count: int, prefix: str = "h") -> None:
    for i in range(count):
        ingest(conn, f"{prefix}{i:02d}", "d", "disk", "95", T0)


def pending(conn: Conn) -> int:
    row = conn.execute("select count(*) from vigil.outbox where status = 'pending'").fetchone()
    assert row is not None
    return int(str(row[0]))


def drain_all(relay: Relay, conn: Conn, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pending(conn) and time.monotonic() < deadline:
        relay.drain(conn)
        time.sleep(0.05)
    assert pending(conn) == 0


def test_429_retry_after_pauses_every_message_to_the_chat(
    dsn: str, conn: Conn, telegram: FakeTelegram
) -> None:
    alerts(conn, 10)  # ten metrics: ten messages nothing else holds up
    telegram.rate_limit(3)
    relay = relay_for(dsn, telegram)
    relay.drain(conn)
    assert len(telegram.received) == 1  # the 429; nothing else is claimed
    row = conn.execute("select channel, reason, paused_until > now() from vigil.channel_pauses")
    assert row.fetchall() == [("telegram:42", "429 Too Many Requests: retry after 3", True)]
    due = relay.next_due(conn)
    assert due is not None and 2.5 < due <= 3.0  # the notifier sleeps until the pause ends
    drain_all(relay, conn, timeout=15)
    start, end = telegram.windows[0]
    assert telegram.requests_between(start, end) == []  # not one request in the window
    assert len(telegram.delivered) == 10
    resumed = min(r.at for r in telegram.received[1:])
    assert end <= resumed < end + 1.0
    print(f"429 retry_after=3: 0 requests in the window, resumed {resumed - end:.2f} s after it")


def test_429_pause_holds_across_notifiers(dsn: str, conn: Conn, telegram: FakeTelegram) -> None:
    """Three relays (threads, each its own connection): after the first 429 is recorded no
    relay sends into the window; only requests already under way when it was answered
    arrive in its first moments (and get their own 429)."""
    alerts(conn, 30)
    telegram.rate_limit(3)
    relays = [relay_for(dsn, telegram) for _ in range(3)]
    failures: list[Exception] = []

    def work(relay: Relay) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                drain_all(relay, c, timeout=20)
        except Exception as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    start, end = telegram.windows[0]
    in_flight = telegram.requests_between(start, start + 0.2)
    assert len(in_flight) <= 2  # at most one per other relay
    assert telegram.requests_between(start + 0.2, end) == []
    assert len(telegram.delivered) == 30
    print(f"3 relays, 429 retry_after=3: {len(in_flight)} request(s) already under way")


@pytest.mark.parametrize("timeout", [1.0, 2.0])
def test_a_dripping_reply_ends_at_the_deadline(telegram: FakeTelegram, timeout: float) -> None:
    telegram.drip(0.5)  # a byte every 0.5 s: no read ever waits long
    client = TelegramClient(telegram.base_url, telegram.token, timeout)
    started = time.monotonic()
    outcome = client.send("42", "slow")
    took = time.monotonic() - started
    assert outcome == Retry(f"timeout: no complete reply within {timeout:g} s")
    assert timeout <= took < timeout + 0.3
    assert telegram.delivered == []


def test_sends_from_a_thread_that_runs_an_event_loop(telegram: FakeTelegram) -> None:
    """The client is synchronous (no event loop of its own), so a caller that already runs
    one (async code; Playwright's sync API in this test session) is no obstacle."""
    client = TelegramClient(telegram.base_url, telegram.token, 2)

    async def inside() -> SendOutcome:
        return client.send("42", "from async code")

    with ThreadPoolExecutor(max_workers=1) as pool:  # whatever this thread runs already
        assert pool.submit(asyncio.run, inside()).result() == Delivered()
    assert telegram.texts() == ["from async code"]


def test_a_dripping_chat_is_retried_and_blocks_nothing_else(
    dsn: str, conn: Conn, telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply that never ends (a byte a second, forever) for one message: each attempt
    ends at the 2 s deadline, the message is retried, and the other messages, including
    one written while the slow one is being attempted, go out meanwhile."""
    telegram.drip(1.0, match="slow")
    ingest(conn, "slow", "d", "disk", "95", T0)
    ingest(conn, "fast", "d", "disk", "95", T0)
    relay = relay_for(dsn, telegram, VIGIL_TELEGRAM_TIMEOUT="2")
    channel = relay.channel
    assert isinstance(channel, TelegramChannel)
    attempts: list[tuple[str, float]] = []
    deliver = channel.deliver

    def timed(c: Conn, text: str) -> Outcome:
        started = time.monotonic()
        try:
            return deliver(c, text)
        finally:
            attempts.append((text.split(" - ")[0], time.monotonic() - started))

    monkeypatch.setattr(channel, "deliver", timed)
    relay.drain(conn)
    assert telegram.texts() == ["Alert: fast - d Value: 95"]
    written = time.monotonic()
    ingest(conn, "later", "d", "disk", "95", T0)  # written after the first slow attempt
    stop = time.monotonic() + 7
    while time.monotonic() < stop:
        relay.drain(conn)
        time.sleep(0.05)
    later = [r.at for r in telegram.delivered if "later" in str(r.body["text"])]
    assert later and later[0] - written < 2.5  # at most one slow attempt before it
    slow = [took for name, took in attempts if name == "Alert: slow"]
    assert len(slow) >= 3
    assert all(2.0 <= took < 2.3 for took in slow), slow
    row = conn.execute(
        "select status, attempts, last_error from vigil.outbox where text like '%slow%'"
    ).fetchone()
    assert row == ("pending", len(slow), "timeout: no complete reply within 2 s")
    deadline = time.monotonic() + 5
    while telegram.drips_open and time.monotonic() < deadline:
        time.sleep(0.1)
    assert telegram.drips_open == 0  # every cut request was hung up, none left dripping
    assert len(telegram.drips_ended) == len(slow)
    print(f"drip: {len(slow)} attempts of {min(slow):.2f}-{max(slow):.2f} s (deadline 2 s)")
