"""The reconnect loop shared by the long-running processes (notifier loops, prober).

A loop body gets a fresh database connection each time; when it fails with a database
error the loop logs one line (never the DSN), waits (1 s doubling to 30 s, reset after a
connection succeeds) and starts again, until it is told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable

import psycopg

FIRST_DELAY = 1.0
MAX_DELAY = 30.0


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (psycopg's messages carry context lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Backoff:
    """The delays between attempts: FIRST_DELAY, doubling up to MAX_DELAY."""

    def __init__(self, first: float = FIRST_DELAY, cap: float = MAX_DELAY) -> None:
        self.first, self.cap = first, cap
        self.delay = first

    def reset(self) -> None:
        self.delay = self.first

    def next(self) -> float:
        """The delay to wait now; the following one doubles."""
        delay = self.delay
        self.delay = min(self.delay * 2, self.cap)
        return delay


def run_sync(
    name: str,
    log: logging.Logger,
    stop: threading.Event,
    body: Callable[[Callable[[], None]], None],
) -> None:
    """Runs `body(connected)` until it returns or `stop` is set, again after each
    psycopg.Error; the body calls `connected()` once its connection works."""
    backoff = Backoff()
    while not stop.is_set():
        try:
            body(backoff.reset)
            return
        except psycopg.Error as exc:
            delay = backoff.next()
            log.warning("%s: database error (%s); again in %.0fs", name, first_line(exc), delay)
            stop.wait(delay)


async def run_async(
    name: str,
    log: logging.Logger,
    stop: asyncio.Event,
    body: Callable[[Callable[[], None]], Awaitable[None]],
) -> None:
    """run_sync for asyncio: `await body(connected)` until it returns or `stop` is set."""
    backoff = Backoff()
    while not stop.is_set():
        try:
            await body(backoff.reset)
            return
        except psycopg.Error as exc:
            delay = backoff.next()
            log.warning("%s: database error (%s); again in %.0fs", name, first_line(exc), delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
