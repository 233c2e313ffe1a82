"""Delivery channels: where outbox messages go.

A channel delivers one message and says how it went: Delivered, Retry (transient; `after`
is the wait the receiver asked for, else the relay backs off) or Permanent (a dead letter:
resending cannot help). Retries, leases and dead letters are the relay's policy, the same
for every channel. A new channel (a webhook, e-mail) is one module here with a class that
has `deliver` and `close`, and a line in `notifier.service.channel_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from vigil.db import Conn


@dataclass(frozen=True)
class Delivered:
    pass


@dataclass(frozen=True)
class Retry:
    """Transient failure; `after` is the receiver's wait (e.g. 429 retry_after) or None."""

    error: str
    after: float | None = None


@dataclass(frozen=True)
class Permanent:
    error: str


Outcome = Delivered | Retry | Permanent


class Channel(Protocol):
    """A place messages are delivered to."""

    def deliver(self, conn: Conn, text: str) -> Outcome:
        """Sends one message; `conn` is for the channel's own bookkeeping (autocommit)."""
        ...

    def close(self) -> None: ...
