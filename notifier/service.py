"""The notifier process: delivers the outbox and, in portable mode, schedules the jobs.

Three loops, each with its own connection and the shared reconnect with backoff
(vigil.reconnect), so that none can hold up another:
- delivery (main thread): a LISTEN connection for outbox wake-ups and a work connection;
  a drain at start and after every reconnect, on every wake-up, when the next message
  comes due (a retry, a passed lease, the end of the channel's pause: vigil.outbox_next_due)
  and at least every VIGIL_POLL_SECONDS (<= 5 s) as the backstop for missed notifications;
  vigil.check_stalls() on the poll tick (both modes). A slow or unreachable channel delays
  only this loop, each attempt by at most VIGIL_TELEGRAM_TIMEOUT per request;
- detection and maintenance (portable mode only): notifier.scheduler.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

import psycopg

from notifier import QUERIES
from notifier.channels import Channel
from notifier.channels.telegram import TelegramChannel
from notifier.relay import Relay
from notifier.scheduler import PortableScheduler
from vigil.db import Conn, mode
from vigil.reconnect import run_sync
from vigil.settings import Settings

log = logging.getLogger("vigil.notifier")


def channel_for(settings: Settings) -> Channel | None:
    """The configured delivery channel, or None: messages are then kept and marked."""
    if settings.telegram_configured:
        return TelegramChannel(settings)
    log.warning(
        "TELEGRAM_TOKEN/TELEGRAM_CHAT_ID not set: messages are kept and marked "
        "'not delivered: Telegram not configured'"
    )
    return None


class Notifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        self.relay = Relay(settings, channel_for(settings))
        self.scheduler = PortableScheduler(settings, self.stop_event)

    def run(self) -> None:
        threads = [
            threading.Thread(target=self._supervise, args=(name, loop), name=name, daemon=True)
            for name, loop in (
                ("detection", self.scheduler.detect),
                ("maintenance", self.scheduler.maintain),
            )
        ]
        for thread in threads:
            thread.start()
        try:
            self._supervise("delivery", self._deliver)
        finally:
            self.stop_event.set()
            for thread in threads:
                thread.join(timeout=30)
            if self.relay.channel is not None:
                self.relay.channel.close()

    def _supervise(self, name: str, loop: Callable[[Conn], None]) -> None:
        """Runs `loop` on a fresh autocommit connection until stopped (vigil.reconnect)."""

        def body(connected: Callable[[], None]) -> None:
            with psycopg.connect(self.settings.require_database_url(), autocommit=True) as conn:
                connected()
                loop(conn)

        run_sync(name, log, self.stop_event, body)

    def _deliver(self, work: Conn) -> None:
        with psycopg.connect(self.settings.require_database_url(), autocommit=True) as listen:
            listen.execute(QUERIES["listen_outbox"])
            active_mode, reason = mode(work)
            log.info("notifier connected: %s mode (%s)", active_mode, reason)
            next_poll = next_drain = time.monotonic()
            while not self.stop_event.is_set():
                if time.monotonic() >= next_poll:
                    work.execute(QUERIES["check_stalls"])
                    next_poll = time.monotonic() + self.settings.poll_seconds
                    next_drain = time.monotonic()  # the backstop: drain on every poll tick
                if time.monotonic() >= next_drain:
                    next_drain = self._drain(work)
                timeout = max(min(next_poll, next_drain) - time.monotonic(), 0.0)
                if any(True for _ in listen.notifies(timeout=timeout, stop_after=1)):
                    next_drain = time.monotonic()

    def _drain(self, work: Conn) -> float:
        """Delivers what is due; returns when (time.monotonic()) the next message comes due."""
        self.relay.drain(work)
        due = self.relay.next_due(work)
        return time.monotonic() + due if due is not None else float("inf")

    def stop(self, *_: object) -> None:
        self.stop_event.set()


def main(settings: Settings) -> None:
    notifier = Notifier(settings)

    def handle(_signum: int, _frame: FrameType | None) -> None:
        notifier.stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    notifier.run()
