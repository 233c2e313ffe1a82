"""Portable mode's job scheduler: with no in-database scheduler (TimescaleDB's), the
notifier process drives the due jobs of vigil.jobs itself.

Two loops, each on its own connection, so that slow maintenance never delays an alert:
- detection: every VIGIL_TICK_SECONDS vigil.run_due_jobs for the alert jobs listed by
  vigil._alert_jobs() (the ping detector and the alert-rule evaluator), and a wake-up
  exactly at the next ping deadline (vigil.next_deadline);
- maintenance: every other due job (retention, partitions, index builds, rollups), one
  job per transaction.
In TimescaleDB mode both loops return at once: the database schedules these itself.
"""

from __future__ import annotations

import threading
import time

from notifier import QUERIES
from vigil.db import Conn, mode
from vigil.settings import Settings


class PortableScheduler:
    def __init__(self, settings: Settings, stop: threading.Event) -> None:
        self.settings = settings
        self.stop = stop

    def detect(self, conn: Conn) -> None:
        """The detector on its tick and exactly at the next ping deadline."""
        if mode(conn)[0] != "portable":
            return
        next_tick = time.monotonic()
        next_deadline: float | None = None
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_tick:
                conn.execute(QUERIES["run_alert_jobs"])
                next_tick = now + self.settings.tick_seconds
            elif next_deadline is not None and now >= next_deadline:
                conn.execute(QUERIES["detect"])
            next_deadline = self._next_deadline(conn)
            wake = next_tick if next_deadline is None else min(next_tick, next_deadline)
            self.stop.wait(max(wake - time.monotonic(), 0.0))

    @staticmethod
    def _next_deadline(conn: Conn) -> float | None:
        """When (monotonic clock) the earliest open ping deadline passes, if any."""
        row = conn.execute(QUERIES["next_deadline_seconds"]).fetchone()
        if row is None or row[0] is None:
            return None
        return time.monotonic() + max(float(row[0]), 0.0) + 0.005

    def maintain(self, conn: Conn) -> None:
        """Every due job except the alert jobs (vigil._alert_jobs()), one job per transaction."""
        if mode(conn)[0] != "portable":
            return
        while not self.stop.wait(self.settings.tick_seconds):
            while not self.stop.is_set():
                row = conn.execute(QUERIES["run_maintenance_job"]).fetchone()
                if not row or not row[0]:
                    break
