"""The notifier process: LISTEN for outbox wake-ups, poll as a backstop, drain.

- its own autocommit LISTEN connection, plus a work connection;
- a drain at start and after every reconnect, on every wake-up, and at least every
  VIGIL_POLL_SECONDS (<= 5 s) as the backstop for missed notifications and due retries;
- in portable mode it is also the scheduler: every VIGIL_TICK_SECONDS it runs the
  detector (vigil.run_due_jobs for ALERT_JOBS), wakes exactly at the next ping deadline,
  and a maintenance thread with its own connection runs every other due job (retention,
  partitions, index builds, rollups), so a slow job never holds up an alert;
- in both modes it calls vigil.check_stalls() on the poll tick.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import psycopg

from notifier.relay import Relay
from notifier.telegram import TelegramClient
from vigil.db import mode
from vigil.logs import configure_logging
from vigil.settings import Settings

log = logging.getLogger("vigil.notifier")
CHANNEL = "vigil_outbox"
# Jobs run on the alert loop itself; every other portable job runs on the maintenance thread.
ALERT_JOBS = ["detect"]


class Notifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        transport = None
        if settings.telegram_configured:
            assert settings.telegram_token and settings.telegram_chat_id
            transport = TelegramClient(
                settings.telegram_api_base, settings.telegram_token, settings.telegram_timeout
            )
        else:
            log.warning(
                "TELEGRAM_TOKEN/TELEGRAM_CHAT_ID not set: messages are kept and marked "
                "'not delivered: Telegram not configured'"
            )
        self.relay = Relay(settings, transport)

    def run(self) -> None:
        maintenance = threading.Thread(target=self._maintain, name="maintenance", daemon=True)
        maintenance.start()
        try:
            self._alert_loop()
        finally:
            self.stop_event.set()
            maintenance.join(timeout=30)

    def _alert_loop(self) -> None:
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                self._serve()
            except psycopg.Error as exc:
                # A lost connection or any other database error: log, back off, start again
                # (the drain at start picks up whatever was pending).
                log.warning(
                    "database error (%s); reconnecting in %.0fs",
                    str(exc).strip().splitlines()[0] if str(exc) else exc,
                    delay,
                )
                self.stop_event.wait(delay)
                delay = min(delay * 2, 30.0)
            else:
                delay = 1.0

    def _serve(self) -> None:
        url = self.settings.require_database_url()
        with (
            psycopg.connect(url, autocommit=True) as listen,
            psycopg.connect(url, autocommit=True) as work,
        ):
            listen.execute(f"listen {CHANNEL}")
            active_mode, reason = mode(work)
            portable = active_mode == "portable"
            log.info("notifier connected: %s mode (%s)", active_mode, reason)
            self.relay.drain(work)
            next_tick = next_poll = time.monotonic()
            next_deadline: float | None = None
            while not self.stop_event.is_set():
                now = time.monotonic()
                if portable and now >= next_tick:
                    work.execute("select vigil.run_due_jobs(p_only => %s)", (ALERT_JOBS,))
                    next_deadline = self._next_deadline(work)
                    next_tick = now + self.settings.tick_seconds
                elif portable and next_deadline is not None and now >= next_deadline:
                    work.execute("select vigil.detect()")
                    next_deadline = self._next_deadline(work)
                if now >= next_poll:
                    work.execute("select vigil.check_stalls()")
                    self.relay.drain(work)
                    next_poll = now + self.settings.poll_seconds
                wakeups = [next_poll]
                if portable:
                    wakeups += [next_tick] if next_deadline is None else [next_tick, next_deadline]
                woken = False
                timeout = max(min(wakeups) - time.monotonic(), 0.0)
                for _ in listen.notifies(timeout=timeout, stop_after=1):
                    woken = True
                if woken:
                    self.relay.drain(work)

    @staticmethod
    def _next_deadline(work: psycopg.Connection[tuple[object, ...]]) -> float | None:
        """When (monotonic clock) the earliest open ping deadline passes, if any."""
        row = work.execute(
            "select extract(epoch from vigil.next_deadline() - clock_timestamp())::float8"
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return time.monotonic() + max(float(str(row[0])), 0.0) + 0.005

    def _maintain(self) -> None:
        """Portable mode: every due job except ALERT_JOBS, on a connection of its own."""
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                url = self.settings.require_database_url()
                with psycopg.connect(url, autocommit=True) as conn:
                    if mode(conn)[0] != "portable":
                        return  # TimescaleDB runs these as its own jobs and policies
                    delay = 1.0
                    while not self.stop_event.wait(self.settings.tick_seconds):
                        # One job per call, so each job is its own transaction.
                        while not self.stop_event.is_set():
                            row = conn.execute(
                                "select vigil.run_due_jobs(p_skip => %s, p_limit => 1)",
                                (ALERT_JOBS,),
                            ).fetchone()
                            if not row or not row[0]:
                                break
            except psycopg.Error as exc:
                log.warning(
                    "maintenance: database error (%s); retrying in %.0fs", type(exc).__name__, delay
                )
                self.stop_event.wait(delay)
                delay = min(delay * 2, 30.0)

    def stop(self, *_: object) -> None:
        self.stop_event.set()


def main(settings: Settings | None = None) -> None:
    configure_logging()
    notifier = Notifier(settings or Settings.from_env())

    def handle(_signum: int, _frame: FrameType | None) -> None:
        notifier.stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    notifier.run()
