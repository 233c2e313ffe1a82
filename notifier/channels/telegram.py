"""The Telegram channel: Bot API sendMessage, each attempt's outcome classified, and the
chat followed when a group becomes a supergroup (vigil.chat_migrations).

The base URL comes from TELEGRAM_API_BASE so tests point it at a local server that speaks
the Bot API; the code path is the production one. The bot token is part of the URL, so
URLs are never logged (httpx's own request log is silenced in vigil.logs).
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass

import httpx

from notifier import QUERIES
from notifier.channels import Delivered, Outcome, Permanent, Retry
from vigil.db import Conn
from vigil.settings import Settings

log = logging.getLogger("vigil.notifier")

MAX_MESSAGE = 4096


@dataclass(frozen=True)
class Migrated:
    """The group became a supergroup: send to the new chat id instead."""

    new_chat_id: str


SendOutcome = Delivered | Retry | Permanent | Migrated


def format_html(text: str) -> str:
    """Escapes plain text for parse_mode HTML, within Telegram's 4096-character limit.

    The cut is made between characters of the plain text, so no entity is split.
    """
    escaped = html.escape(text, quote=False)
    if len(escaped) <= MAX_MESSAGE:
        return escaped
    out: list[str] = []
    size = 0
    for char in text:
        piece = html.escape(char, quote=False)
        if size + len(piece) > MAX_MESSAGE - 1:
            break
        out.append(piece)
        size += len(piece)
    return "".join(out) + "…"


def classify(status: int, payload: object) -> SendOutcome:
    """Maps a Bot API response to an outcome (see core.telegram.org/bots/api#making-requests)."""
    body = payload if isinstance(payload, dict) else {}
    description = str(body.get("description", "")) or f"HTTP {status}"
    params = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    assert isinstance(params, dict)
    if status == 200 and body.get("ok") is True:
        return Delivered()
    if "migrate_to_chat_id" in params:
        return Migrated(str(params["migrate_to_chat_id"]))
    if status == 429:
        retry_after = params.get("retry_after")
        after = float(retry_after) if isinstance(retry_after, int | float) else None
        return Retry(f"429 {description}", after)
    if status == 403 or "chat not found" in description.lower():
        return Permanent(f"{status} {description}")
    if status == 400:
        # The request itself is wrong (e.g. unparsable entities): resending cannot help.
        return Permanent(f"400 {description}")
    # 401/404 (wrong bot token), 5xx and anything unexpected: retry, so that fixing the
    # configuration or an outage ending delivers what is queued.
    return Retry(f"{status} {description}")


class TelegramClient:
    def __init__(self, api_base: str, token: str, timeout: float) -> None:
        self._url = f"{api_base}/bot{token}/sendMessage"
        self._http = httpx.Client(timeout=timeout)

    def send(self, chat_id: str, text: str) -> SendOutcome:
        try:
            response = self._http.post(
                self._url,
                json={
                    "chat_id": chat_id,
                    "text": format_html(text),
                    "parse_mode": "HTML",
                    "link_preview_options": {"is_disabled": True},
                },
            )
        except httpx.TimeoutException:
            return Retry("timeout")
        except httpx.HTTPError as exc:
            return Retry(f"connection error: {type(exc).__name__}")
        try:
            payload = response.json()
        except ValueError:
            payload = None
        return classify(response.status_code, payload)

    def close(self) -> None:
        self._http.close()


class TelegramChannel:
    """Messages to TELEGRAM_CHAT_ID, following its recorded migrations."""

    def __init__(self, settings: Settings, client: TelegramClient | None = None) -> None:
        assert settings.telegram_token and settings.telegram_chat_id
        self.chat = settings.telegram_chat_id
        self.client = client or TelegramClient(
            settings.telegram_api_base, settings.telegram_token, settings.telegram_timeout
        )

    def chat_id(self, conn: Conn) -> str:
        chat = self.chat
        for _ in range(5):  # a chain of migrations is possible, but short
            row = conn.execute(QUERIES["chat_migration_next"], (chat,)).fetchone()
            if row is None:
                break
            chat = str(row[0])
        return chat

    def deliver(self, conn: Conn, text: str) -> Outcome:
        chat = self.chat_id(conn)
        outcome = self.client.send(chat, text)
        if isinstance(outcome, Migrated):
            log.warning("telegram chat migrated to a supergroup; following it")
            conn.execute(QUERIES["chat_migration_record"], (chat, outcome.new_chat_id))
            outcome = self.client.send(outcome.new_chat_id, text)
        if isinstance(outcome, Migrated):
            return Permanent("chat migrated twice in one attempt")
        return outcome

    def close(self) -> None:
        self.client.close()
