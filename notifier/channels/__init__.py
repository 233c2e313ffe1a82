"""Delivery channels: where outbox messages go.

A channel delivers one message and says how it went: Delivered, Retry (transient; `after`
is the wait the receiver asked for, else the relay backs off) or Permanent (a dead letter:
resending cannot help). Retries, leases, dead letters, the order of messages and the pause
a receiver asks for (`after`: nothing is sent to the channel's `key` until it passes, from
any notifier) are the relay's policy, the same for every channel. A new channel (a webhook,
e-mail) is one module here with a class that has `key`, `deliver` and `close`, and a line in
`notifier.service.channel_for`. `deliver` must end by a deadline of its own (a reply that
never completes is a Retry), so that a send never outlasts the lease of its message.
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
    """Transient failure; `after` is the receiver's wait (e.g. 429 retry_after) or None.

    A wait the receiver asks for applies to every message to it, not just this one.
    """

    error: str
    after: float | None = None


@dataclass(frozen=True)
class Permanent:
    error: str


Outcome = Delivered | Retry | Permanent


class Channel(Protocol):
    """A place messages are delivered to."""

    @property
    def key(self) -> str:
        """The receiver, e.g. telegram:<chat id>: the name of its pause (vigil.channel_pauses)."""
        ...

    def deliver(self, conn: Conn, text: str) -> Outcome:
        """Sends one message; `conn` is for the channel's own bookkeeping (autocommit)."""
        ...

    def close(self) -> None: ...
