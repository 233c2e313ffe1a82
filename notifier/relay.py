"""Outbox relay: claim due rows (committed before sending), send, record the outcome."""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
from datetime import timedelta
from typing import Protocol

from notifier.channels.telegram import Delivered, Migrated, Outcome, Permanent, Retry
from vigil.db import Conn
from vigil.settings import Settings

log = logging.getLogger("vigil.notifier")

NOT_CONFIGURED = "not delivered: Telegram not configured"
# One message per claim: each lease then covers one send (at most two with a chat
# migration), so a slow Telegram cannot outlast the lease of messages still waiting.
BATCH = 1


class Transport(Protocol):
    def send(self, chat_id: str, text: str) -> Outcome: ...


def backoff(attempts: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: a random delay in [d/2, d], d = base * 2^(n-1)."""
    delay = min(cap, base * 2 ** min(attempts - 1, 30))
    return random.uniform(delay / 2, delay)


class Relay:
    def __init__(self, settings: Settings, transport: Transport | None) -> None:
        self.settings = settings
        self.transport = transport
        # The random part keeps ids unique across container restarts (pid 1 every time).
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"

    def chat_id(self, conn: Conn) -> str:
        chat = self.settings.telegram_chat_id or ""
        # Follow recorded migrations (a chain is possible, but short).
        for _ in range(5):
            row = conn.execute(
                "select new_chat_id from vigil.chat_migrations where old_chat_id = %s", (chat,)
            ).fetchone()
            if row is None:
                break
            chat = str(row[0])
        return chat

    def drain(self, conn: Conn) -> int:
        """Sends every due message; returns how many were settled or rescheduled.

        `conn` must be in autocommit mode: each claim is committed before the HTTP call,
        so a crash mid-send leaves the row to be claimed again when its lease passes.
        """
        handled = 0
        while True:
            rows = conn.execute(
                "select id, text, attempts from vigil.outbox_claim(%s, %s, %s)",
                (self.worker, timedelta(seconds=self.settings.lease_seconds), BATCH),
            ).fetchall()
            if not rows:
                return handled
            for outbox_id, text, attempts in rows:
                self._deliver(conn, int(outbox_id), str(text), int(attempts))
                handled += 1

    def _deliver(self, conn: Conn, outbox_id: int, text: str, attempts: int) -> None:
        if self.transport is None:
            log.info("outbox %s %s: %s", outbox_id, NOT_CONFIGURED, text)
            self._settle(conn, outbox_id, "unconfigured", NOT_CONFIGURED)
            return
        chat = self.chat_id(conn)
        outcome = self.transport.send(chat, text)
        if isinstance(outcome, Migrated):
            log.warning("telegram chat migrated to a supergroup; following it")
            conn.execute(
                "insert into vigil.chat_migrations (old_chat_id, new_chat_id) values (%s, %s) "
                "on conflict (old_chat_id) do update set new_chat_id = excluded.new_chat_id, "
                "migrated_at = now()",
                (chat, outcome.new_chat_id),
            )
            outcome = self.transport.send(outcome.new_chat_id, text)
        if isinstance(outcome, Delivered):
            conn.execute("select vigil.outbox_delivered(%s, %s)", (outbox_id, self.worker))
            log.info("outbox %s delivered", outbox_id)
        elif isinstance(outcome, Permanent):
            log.error("outbox %s dead letter: %s", outbox_id, outcome.error)
            self._settle(conn, outbox_id, "dead", outcome.error)
        elif isinstance(outcome, Retry):
            if attempts >= self.settings.max_attempts:
                log.error(
                    "outbox %s dead after %s attempts: %s", outbox_id, attempts, outcome.error
                )
                self._settle(
                    conn, outbox_id, "dead", f"gave up after {attempts} attempts: {outcome.error}"
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
                outbox_id,
                attempts,
                outcome.error,
                delay,
            )
            conn.execute(
                "select vigil.outbox_retry(%s, %s, %s, %s)",
                (outbox_id, self.worker, outcome.error, timedelta(seconds=delay)),
            )
        else:  # a second migration in a row
            self._settle(conn, outbox_id, "dead", "chat migrated twice in one attempt")

    def _settle(self, conn: Conn, outbox_id: int, status: str, reason: str) -> None:
        conn.execute(
            "select vigil.outbox_settle(%s, %s, %s, %s)", (outbox_id, self.worker, status, reason)
        )
