"""The Telegram channel: Bot API sendMessage, each attempt's outcome classified, and the
chat followed when a group becomes a supergroup (vigil.chat_migrations).

The base URL comes from TELEGRAM_API_BASE so tests point it at a local server that speaks
the Bot API; the code path is the production one. The bot token is part of the URL, so
URLs are never logged (httpx's own request log is silenced in vigil.logs).

Every request has a total deadline of VIGIL_TELEGRAM_TIMEOUT: connecting, sending and the
whole reply. A reply that trickles in (a byte every few seconds) never trips httpx's own
timeouts, which bound each read; the deadline bounds the request. At the deadline the
attempt is a Retry: Telegram may have delivered the message all the same, so it may arrive
twice (at-least-once), never not at all.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from notifier import QUERIES
from notifier.channels import Delivered, Outcome, Permanent, Retry
from vigil.db import Conn
from vigil.settings import Settings

log = logging.getLogger("vigil.notifier")

MAX_MESSAGE = 4096
MAX_REPLY = 1 << 20
"""Bytes of a reply read at most: a sendMessage reply is a few KiB."""


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
    """sendMessage, each request bounded by a total deadline of `timeout` seconds.

    The request runs on an event loop of its own (on a short-lived thread) and is cancelled
    at the deadline, which closes its connection, wherever it is (connecting, sending,
    waiting, reading). Each
    request has its own connection: messages are rare, and an abandoned request leaves
    nothing in a pool for the next one to trip over.
    """

    def __init__(self, api_base: str, token: str, timeout: float) -> None:
        self._url = f"{api_base}/bot{token}/sendMessage"
        self.timeout = timeout
        self._tls = httpx.create_ssl_context()  # once: loading the CA store is the slow part

    def send(self, chat_id: str, text: str) -> SendOutcome:
        # On a thread of its own: the calling thread may be running an event loop already
        # (a caller in async code), and a thread runs one loop at a time.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="telegram") as pool:
            return pool.submit(self._run, chat_id, text).result()

    def _run(self, chat_id: str, text: str) -> SendOutcome:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(self._send(chat_id, text))
        finally:
            # No wait for the loop's executor: a name lookup still running past the
            # deadline ends on its own thread; the deadline is kept.
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _send(self, chat_id: str, text: str) -> SendOutcome:
        body = {
            "chat_id": chat_id,
            "text": format_html(text),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        reply = bytearray()
        try:
            async with (
                asyncio.timeout(self.timeout),
                httpx.AsyncClient(timeout=self.timeout, verify=self._tls) as http,
                http.stream("POST", self._url, json=body) as response,
            ):
                async for chunk in response.aiter_bytes():
                    reply += chunk
                    if len(reply) > MAX_REPLY:
                        return Retry(f"reply over {MAX_REPLY} bytes (HTTP {response.status_code})")
        except (TimeoutError, httpx.TimeoutException):
            return Retry(f"timeout: no complete reply within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return Retry(f"connection error: {type(exc).__name__}")
        try:
            payload = json.loads(reply)
        except ValueError:
            payload = None
        return classify(response.status_code, payload)

    def close(self) -> None:
        pass  # nothing outlives a request


class TelegramChannel:
    """Messages to TELEGRAM_CHAT_ID, following its recorded migrations."""

    def __init__(self, settings: Settings, client: TelegramClient | None = None) -> None:
        assert settings.telegram_token and settings.telegram_chat_id
        self.chat = settings.telegram_chat_id
        self.key = f"telegram:{self.chat}"
        self.client = client or TelegramClient(
            settings.telegram_api_base, settings.telegram_token, settings.telegram_timeout
        )
        # One attempt is at most two requests (a chat migration): it must end within the
        # lease, or another notifier may send the message again meanwhile, and send the
        # messages behind it before this copy lands.
        if settings.lease_seconds <= 2 * settings.telegram_timeout:
            log.warning(
                "VIGIL_LEASE_SECONDS (%s) is not above two Telegram requests (2 x %g s): "
                "a slow attempt may outlast its lease; raise the lease",
                settings.lease_seconds,
                settings.telegram_timeout,
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
