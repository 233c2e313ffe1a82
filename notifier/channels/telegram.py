"""The Telegram channel: Bot API sendMessage, each attempt's outcome classified, and the
chat followed when a group becomes a supergroup (vigil.chat_migrations).

The base URL comes from TELEGRAM_API_BASE so tests point it at a local server that speaks
the Bot API; the code path is the production one. The bot token is part of the URL, so
URLs are never logged (httpx's own request log is silenced in vigil.logs).

Every request has a total deadline of VIGIL_TELEGRAM_TIMEOUT: name lookup, connecting,
sending and the whole reply. A reply that trickles in (a byte every few seconds) never trips
httpx's own timeouts, which bound each read; the deadline bounds the request. At the
deadline the attempt is a Retry: Telegram may have delivered the message all the same, so
it may arrive twice (at-least-once), never not at all.
"""

from __future__ import annotations

import html
import json
import logging
import socket
import ssl
import threading
import time
import typing
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import httpcore
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


def environment_proxy(url: str) -> str | None:
    """The proxy that HTTPS_PROXY / HTTP_PROXY / ALL_PROXY give for `url`, unless NO_PROXY
    exempts its host: what httpx's default client would use."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend, with each step bounded by the deadline that the calling
    thread set (`within`): the name lookup, connecting, every write and read (and each socket
    operation of a TLS handshake) get at most the time left; past the deadline a step raises
    httpcore's timeout, which httpx reports as httpx.TimeoutException.

    The name lookup runs on a small pool of threads, as the system resolver cannot be
    interrupted: a lookup that outlasts the deadline ends there on its own.
    """

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self._local = threading.local()
        self._lookups = ThreadPoolExecutor(max_workers=2, thread_name_prefix="telegram-dns")

    @contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        """Bounds every step this thread takes in the block to `seconds` from now."""
        self._local.deadline = time.monotonic() + seconds
        try:
            yield
        finally:
            self._local.deadline = None

    def left(self, timeout: float | None, error: type[Exception]) -> float | None:
        """`timeout` (httpx's, per step) cut to the time left; `error` once none is left."""
        deadline: float | None = getattr(self._local, "deadline", None)
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise error("deadline passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        *args: typing.Any,
        **kwargs: typing.Any,
    ) -> httpcore.NetworkStream:
        """Resolves `host` and connects to its addresses in turn, each step cut to the time
        left; httpcore's other arguments (local_address, socket_options) go to the inner
        backend as given."""
        lookup = self._lookups.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        try:
            addresses = lookup.result(self.left(timeout, httpcore.ConnectTimeout))
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"name lookup of {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        error: Exception = httpcore.ConnectError(f"no address for {host}")
        for *_, address in addresses:  # in the resolver's order, as socket.create_connection
            try:
                step = self.left(timeout, httpcore.ConnectTimeout)
                stream = self._inner.connect_tcp(str(address[0]), port, step, *args, **kwargs)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            return DeadlineStream(stream, self)
        raise error

    def close(self) -> None:
        self._lookups.shutdown(wait=False, cancel_futures=True)


class DeadlineStream(httpcore.NetworkStream):
    """A connection of a DeadlineBackend: each step gets at most the time left."""

    def __init__(self, stream: httpcore.NetworkStream, backend: DeadlineBackend) -> None:
        self._stream = stream
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._backend.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._backend.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        step = self._backend.left(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, step), self._backend
        )

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport (keep-alive pool, the environment's proxy) on a DeadlineBackend."""

    def __init__(self, tls: ssl.SSLContext, proxy: str | None) -> None:
        super().__init__(verify=tls, proxy=proxy, trust_env=False)
        self.backend = DeadlineBackend()
        # Every connection the pool opens, direct or to the proxy, goes through the backend.
        self._pool._network_backend = self.backend

    def close(self) -> None:
        super().close()
        self.backend.close()


class TelegramClient:
    """sendMessage on one keep-alive connection pool, each request bounded by a total
    deadline of `timeout` seconds.

    httpx's own timeouts (`timeout` per step) bound each connect, write and read; the
    transport's DeadlineBackend cuts each of them to the time left, so a request ends at
    the deadline wherever it is (resolving, connecting, sending, waiting, reading). A
    request cut there closes its connection; the next one opens a new connection.
    """

    def __init__(self, api_base: str, token: str, timeout: float) -> None:
        self._url = f"{api_base}/bot{token}/sendMessage"
        self.timeout = timeout
        # The TLS context once: loading the CA store is the slow part.
        self._transport = DeadlineTransport(httpx.create_ssl_context(), environment_proxy(api_base))
        self._http = httpx.Client(transport=self._transport, timeout=timeout)

    def send(self, chat_id: str, text: str) -> SendOutcome:
        body = {
            "chat_id": chat_id,
            "text": format_html(text),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        reply = bytearray()
        try:
            with (
                self._transport.backend.within(self.timeout),
                self._http.stream("POST", self._url, json=body) as response,
            ):
                for chunk in response.iter_bytes():
                    reply += chunk
                    if len(reply) > MAX_REPLY:
                        return Retry(f"reply over {MAX_REPLY} bytes (HTTP {response.status_code})")
        except httpx.TimeoutException:
            return Retry(f"timeout: no complete reply within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return Retry(f"connection error: {type(exc).__name__}")
        try:
            payload = json.loads(reply)
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
