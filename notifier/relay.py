"""Outbox relay: claim due rows (committed before sending), deliver through the channel,
record the outcome. Retries with backoff, leases, dead letters and the channel's pause are
decided here, the same for every channel.

Order is the claim's (vigil.outbox_claim): per instance (a metric, a service) only the
oldest pending message is handed out, so however many notifiers run, the messages about
one instance go out one at a time, in the order they were written; one that fails holds up
only its own instance. A receiver's wait (429 retry_after) is recorded in the database
(vigil.channel_pauses) and no notifier claims a message for it before the wait is over.

Grouping: messages of alert rules with a group_wait carry a group_key and are due only
after that wait; a claimed message brings the other due heads of its group along
(vigil.outbox_claim_group) and they go out as one text, "N notifications:" and a line
each, so a host outage is one message, not thirty."""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta

from notifier import QUERIES
from notifier.channels import Channel, Delivered, Outcome, Permanent
from vigil.db import Conn
from vigil.settings import Settings

log = logging.getLogger("vigil.notifier")

NOT_CONFIGURED = "not delivered: Telegram not configured"
# One message per claim: each lease then covers one send (at most two with a chat
# migration), so a slow Telegram cannot outlast the lease of messages still waiting.
BATCH = 1
# At most this many messages of one group (vigil.outbox.group_key) go out as one text.
GROUP_LIMIT = 50
# Telegram's limit is 4096 characters per message; a group's text is split below it.
MESSAGE_LIMIT = 4000
# The shortest sleep before claiming again when a message is due but was not handed out
# (a concurrent claimer held it for a moment).
MIN_WAIT = 0.1


@dataclass(frozen=True)
class Claimed:
    """An outbox row this worker holds the lease of."""

    id: int
    text: str
    attempts: int


def backoff(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: a random delay in [d/2, d], d = base * 2^(n-1)."""
    delay = min(cap, base * 2 ** min(attempts - 1, 30))
    return random.uniform(delay / 2, delay)


class Relay:
    def __init__(self, settings: Settings, channel: Channel | None) -> None:
        self.settings = settings
        self.channel = channel
        # The random part keeps ids unique across container restarts (pid 1 every time).
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"

    def drain(self, conn: Conn) -> int:
        """Sends every due message; returns how many were settled or rescheduled.

        `conn` must be in autocommit mode: each claim is committed before the HTTP call,
        so a crash mid-send leaves the row to be claimed again when its lease passes.
        """
        handled = 0
        lease = timedelta(seconds=self.settings.lease_seconds)
        while True:
            rows = conn.execute(
                QUERIES["outbox_claim"], (self.worker, lease, BATCH, self.channel_key)
            ).fetchall()
            if not rows:
                return handled
            for outbox_id, text, attempts, group_key in rows:
                batch = [Claimed(int(outbox_id), str(text), int(attempts))]
                if group_key is not None:
                    batch += [
                        Claimed(int(i), str(t), int(a))
                        for i, t, a, _ in conn.execute(
                            QUERIES["outbox_claim_group"],
                            (self.worker, lease, group_key, GROUP_LIMIT - 1),
                        ).fetchall()
                    ]
                self._deliver(conn, batch)
                handled += len(batch)

    @property
    def channel_key(self) -> str | None:
        return self.channel.key if self.channel is not None else None

    def next_due(self, conn: Conn) -> float | None:
        """Seconds until a message can next be claimed (a retry or lease coming due, the
        channel's pause ending; at least MIN_WAIT), or None when nothing is pending."""
        row = conn.execute(QUERIES["outbox_next_due"], (self.channel_key,)).fetchone()
        if row is None or row[0] is None:
            return None
        return max(float(row[0]), MIN_WAIT)

    def _deliver(self, conn: Conn, batch: list[Claimed]) -> None:
        """Sends one message (or a group of them as one text) and settles every row."""
        ids = [c.id for c in batch]
        attempts = max(c.attempts for c in batch)
        if self.channel is None:
            log.info("outbox %s %s: %s", ids, NOT_CONFIGURED, batch[0].text)
            self._settle(conn, ids, "unconfigured", NOT_CONFIGURED)
            return
        outcome: Outcome = Delivered()
        for text in group_texts([c.text for c in batch]):
            outcome = self.channel.deliver(conn, text)
            if not isinstance(outcome, Delivered):
                break  # the whole group is retried (at-least-once: sent parts may repeat)
        if isinstance(outcome, Delivered):
            with conn.transaction():
                for outbox_id in ids:
                    conn.execute(QUERIES["outbox_delivered"], (outbox_id, self.worker))
            log.info("outbox %s delivered", ids)
        elif isinstance(outcome, Permanent):
            log.error("outbox %s dead letter: %s", ids, outcome.error)
            self._settle(conn, ids, "dead", outcome.error)
        else:
            if outcome.after is not None:
                # A wait the receiver asks for holds for every message to it, from every
                # notifier: recorded before anything else, so no claim sends into it.
                conn.execute(
                    QUERIES["channel_pause"],
                    (self.channel.key, timedelta(seconds=outcome.after), outcome.error),
                )
                log.warning(
                    "%s asked to wait %.1fs: nothing is sent to it before then",
                    self.channel.key,
                    outcome.after,
                )
            if attempts >= self.settings.max_attempts:
                log.error("outbox %s dead after %s attempts: %s", ids, attempts, outcome.error)
                self._settle(
                    conn, ids, "dead", f"gave up after {attempts} attempts: {outcome.error}"
                )
                return
            delay = (
                outcome.after
                if outcome.after is not None
                else backoff(
                    attempts, self.settings.retry_base_seconds, self.settings.retry_max_seconds
                )
            )
            log.warning(
                "outbox %s attempt %s failed (%s); retry in %.1fs",
                ids,
                attempts,
                outcome.error,
                delay,
            )
            # One transaction: the group is due again at one moment (now() is the same).
            with conn.transaction():
                for outbox_id in ids:
                    conn.execute(
                        QUERIES["outbox_retry"],
                        (outbox_id, self.worker, outcome.error, timedelta(seconds=delay)),
                    )

    def _settle(self, conn: Conn, ids: list[int], status: str, reason: str) -> None:
        with conn.transaction():
            for outbox_id in ids:
                conn.execute(QUERIES["outbox_settle"], (outbox_id, self.worker, status, reason))


def group_texts(texts: list[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """The texts of a group as few messages as the receiver's size limit allows: one text
    alone as it is; several under a header line, one per line, split at line boundaries."""
    if len(texts) == 1:
        return [texts[0]]
    lines = [t if len(t) <= limit - 40 else t[: limit - 41] + "…" for t in texts]
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if chunks[-1] and size + len(line) + 1 > limit - 40:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += len(line) + 1
    total = len(texts)
    out = []
    for n, chunk in enumerate(chunks, 1):
        part = f" (part {n} of {len(chunks)})" if len(chunks) > 1 else ""
        out.append(f"{total} notifications{part}:\n" + "\n".join(chunk))
    return out
