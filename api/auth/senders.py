"""Sender authentication for the ingest routes.

A token travels as `Authorization: Bearer TOKEN`, as the password of Basic auth (the user
name is ignored; collectd, rsyslog, Loki and Prometheus clients), or as a path prefix
`/t/TOKEN/...` for senders that can only be given a URL (metrics-sender,
systemd-journal-upload); TokenPathPrefix turns the prefix into the header before routing, so
there is one check. Every 401 carries `WWW-Authenticate: Basic realm="vigil"` (CHALLENGE):
clients such as collectd's write_http send their user and password only after that challenge.
Valid token hashes are cached for a few seconds: a revocation takes effect within
CACHE_SECONDS.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from api.auth import QUERIES
from api.auth.network import is_loopback
from api.core.db import pool_of
from vigil.settings import Settings
from vigil.tokens import secret_hash

CACHE_SECONDS = 5.0
CHALLENGE = {"WWW-Authenticate": 'Basic realm="vigil"'}
"""The header of every sender 401 (RFC 9110 requires a challenge; libcurl-based senders that
negotiate auth, such as collectd's write_http, send Basic credentials only after it)."""


class TokenPathPrefix:
    """ASGI wrapper: /t/TOKEN/rest -> /rest with `Authorization: Bearer TOKEN`.

    The path is rewritten in place, so access logs never see the token.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["path"].startswith("/t/"):
            token, sep, rest = scope["path"][3:].partition("/")
            if token and sep:
                path = "/" + rest
                scope["path"] = path
                scope["raw_path"] = path.encode()
                headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
                headers.append((b"authorization", b"Bearer " + token.encode()))
                scope["headers"] = headers
        await self.app(scope, receive, send)


class SenderAuth:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._valid_until: dict[bytes, float] = {}

    async def check(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        await self.check_token(connection, header_token(connection))

    async def check_token(self, connection: ASGIConnection[Any, Any, Any, Any], token: str) -> None:
        """Checks a token however it travelled (empty = none was sent)."""
        if not token.strip():
            if self.settings.allow_tokenless_loopback and is_loopback(
                connection.client.host if connection.client else None
            ):
                return
            raise NotAuthorizedException(
                detail="missing API token: send 'Authorization: Bearer TOKEN' or post to "
                "/t/TOKEN/<route>; create one with `vigil token create NAME`",
                headers=CHALLENGE,
            )
        digest = secret_hash(token.strip())
        now = time.monotonic()
        if self._valid_until.get(digest, 0.0) > now:
            return
        async with pool_of(connection.app).connection() as conn:
            row = await (await conn.execute(QUERIES["token_check"], (digest,))).fetchone()
        if not row or row[0] is None:
            self._valid_until.pop(digest, None)
            raise NotAuthorizedException(detail="invalid or revoked API token", headers=CHALLENGE)
        if len(self._valid_until) > 10_000:
            self._valid_until.clear()
        self._valid_until[digest] = now + CACHE_SECONDS


async def require_sender(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """The sender check (raises 401), for handlers that call it themselves."""
    auth: SenderAuth = connection.app.state.sender_auth
    await auth.check(connection)


async def sender_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard for the ingest routes."""
    await require_sender(connection)


def header_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The token of the Authorization header: `Bearer X`, `Token X` (Influx v2, Telegraf), or
    Basic auth with the token as the password (any user name); empty when there is none."""
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token"):
        return value
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


def influx_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The token as InfluxDB clients send it: the header forms of header_token (Basic is the
    v1 username/password), or the v1 query parameters `?p=X` / `?u=NAME&p=X`."""
    return header_token(connection).strip() or str(connection.query_params.get("p") or "")


async def influx_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Litestar guard for the InfluxDB write routes (/write, /api/v2/write)."""
    auth: SenderAuth = connection.app.state.sender_auth
    await auth.check_token(connection, influx_token(connection))
