"""The notifier process: delivers the outbox and, in portable mode, schedules the jobs.

Three loops, each with its own connection and its own reconnect with backoff, so that
none can hold up another:
- delivery (main thread): a LISTEN connection for outbox wake-ups and a work connection;
  a drain at start and after every reconnect, on every wake-up, and at least every
  VIGIL_POLL_SECONDS (<= 5 s) as the backstop for missed notifications and due retries;
  vigil.check_stalls() on the same poll tick (both modes). A slow or unreachable
  Telegram delays only this loop;
- detection (portable mode): every VIGIL_TICK_SECONDS vigil.run_due_jobs for ALERT_JOBS,
  and a wake-up exactly at the next ping deadline (vigil.next_deadline);
- maintenance (portable mode): every other due portable job (retention, partitions, index
  builds, rollups), one job per transaction.
In TimescaleDB mode the database schedules detection and maintenance itself.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

import psycopg

from notifier.channels.telegram import TelegramClient
from notifier.relay import Relay
from vigil.db import Conn, mode
from vigil.logs import configure_logging
from vigil.settings import Settings

log = logging.getLogger("vigil.notifier")
CHANNEL = "vigil_outbox"
# Jobs the detection loop runs; every other portable job runs on the maintenance loop.
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
        threads = [
            threading.Thread(target=self._supervise, args=(name, loop), name=name, daemon=True)
            for name, loop in (("detection", self._detect), ("maintenance", self._maintain))
        ]
        for thread in threads:
            thread.start()
        try:
            self._supervise("delivery", self._deliver)
        finally:
            self.stop_event.set()
            for thread in threads:
                thread.join(timeout=30)

    def _supervise(self, name: str, loop: Callable[[Conn], None]) -> None:
        """Runs `loop` on a fresh autocommit connection until stopped; on any database
        error logs it, backs off (1 s doubling to 30 s) and starts again."""
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                with psycopg.connect(self.settings.require_database_url(), autocommit=True) as conn:
                    delay = 1.0
                    loop(conn)
                    return
            except psycopg.Error as exc:
                first_line = str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__
                log.warning("%s: database error (%s); again in %.0fs", name, first_line, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 30.0)

    def _deliver(self, work: Conn) -> None:
        with psycopg.connect(self.settings.require_database_url(), autocommit=True) as listen:
            listen.execute(f"listen {CHANNEL}")
            active_mode, reason = mode(work)
            log.info("notifier connected: %s mode (%s)", active_mode, reason)
            self.relay.drain(work)
            next_poll = time.monotonic()
            while not self.stop_event.is_set():
                if time.monotonic() >= next_poll:
                    work.execute("select vigil.check_stalls()")
                    self.relay.drain(work)
                    next_poll = time.monotonic() + self.settings.poll_seconds
                timeout = max(next_poll - time.monotonic(), 0.0)
                if any(True for _ in listen.notifies(timeout=timeout, stop_after=1)):
                    self.relay.drain(work)

    def _detect(self, conn: Conn) -> None:
        """Portable mode: the detector on its tick and exactly at the next ping deadline."""
        if mode(conn)[0] != "portable":
            return  # a TimescaleDB job runs the detector
        next_tick = time.monotonic()
        next_deadline: float | None = None
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now >= next_tick:
                conn.execute("select vigil.run_due_jobs(p_only => %s)", (ALERT_JOBS,))
                next_tick = now + self.settings.tick_seconds
            elif next_deadline is not None and now >= next_deadline:
                conn.execute("select vigil.detect()")
            next_deadline = self._next_deadline(conn)
            wake = next_tick if next_deadline is None else min(next_tick, next_deadline)
            self.stop_event.wait(max(wake - time.monotonic(), 0.0))

    @staticmethod
    def _next_deadline(conn: Conn) -> float | None:
        """When (monotonic clock) the earliest open ping deadline passes, if any."""
        row = conn.execute(
            "select extract(epoch from vigil.next_deadline() - clock_timestamp())::float8"
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return time.monotonic() + max(float(row[0]), 0.0) + 0.005

    def _maintain(self, conn: Conn) -> None:
        """Portable mode: every due job except ALERT_JOBS, one job per transaction."""
        if mode(conn)[0] != "portable":
            return  # TimescaleDB runs these as its own jobs and policies
        while not self.stop_event.wait(self.settings.tick_seconds):
            while not self.stop_event.is_set():
                row = conn.execute(
                    "select vigil.run_due_jobs(p_skip => %s, p_limit => 1)", (ALERT_JOBS,)
                ).fetchone()
                if not row or not row[0]:
                    break

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
