"""Operator sessions: server-side sessions, the page guard, CSRF.

Every page route uses `guards=[operator_guard]`. The guard
- finds the session (cookie `vigil_session` -> keyed hash -> vigil.sessions); without one,
  a browser is redirected to /login, an HTMX request gets 401 with `HX-Redirect`;
- on POST/PUT/PATCH/DELETE checks the session's CSRF token, sent as the form field
  `csrf_token` or the header `X-CSRF-Token` (api/static/vigil.js adds the header to every
  HTMX request from the `<meta name="csrf-token">` of base.html); a missing or wrong token
  is a 403. Handlers get the signed-in operator with `current_operator(request)`.
Pages are rendered with `api.core.pages.render(request, "x.html", **context)`, which adds the
operator, the CSRF token and the navigation state to the template context.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Redirect
from litestar.types import ExceptionHandler

from api.auth import QUERIES
from api.auth.network import is_loopback
from api.core.db import pool_of
from api.core.pages import Operator
from vigil.settings import Settings

SESSION_COOKIE = "vigil_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class LoginRequired(HTTPException):
    """No valid session: the exception handler sends the browser to /login."""

    status_code = 401
    detail = "sign in first"


def settings_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


def session_id_hash(settings: Settings, session_id: str) -> bytes:
    """The stored form of a session id: HMAC-SHA256 keyed with SESSION_SECRET (when set), so
    rotating the secret ends every session and a copy of the table cannot be replayed."""
    key = (settings.session_secret or "vigil-session").encode()
    return hmac.new(key, session_id.encode(), hashlib.sha256).digest()


def cookie_secure(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Cookies are Secure except on plain http to a loopback address (the embedded default
    and tests); everything reachable from elsewhere is expected behind https."""
    url = connection.url
    client = connection.client.host if connection.client else None
    return not (url.scheme == "http" and is_loopback(url.hostname) and is_loopback(client))


def make_cookie(
    connection: ASGIConnection[Any, Any, Any, Any], key: str, value: str, max_age: int
) -> Cookie:
    return Cookie(
        key=key,
        value=value,
        max_age=max_age,
        path="/",
        secure=cookie_secure(connection),
        httponly=True,
        samesite="lax",
    )


def clear_cookie(connection: ASGIConnection[Any, Any, Any, Any], key: str) -> Cookie:
    return make_cookie(connection, key, "", 0)


def safe_next(path: str | None) -> str:
    """Only local paths are allowed as a place to return to after login."""
    if not path or not path.startswith("/") or path.startswith(("//", "/\\")):
        return "/"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return "/"  # no CR/LF into a Location header
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return "/"
    return path


async def start_session(request: Request[Any, Any, Any], email: str) -> Cookie | None:
    """A new session (always a new id) for an allowed email; None when it is not allowed."""
    settings = settings_of(request)
    old = request.cookies.get(SESSION_COOKIE)
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    lifetime = timedelta(hours=settings.session_hours)
    async with pool_of(request.app).connection() as conn:
        if old:
            await conn.execute(QUERIES["session_delete"], (session_id_hash(settings, old),))
        row = await (
            await conn.execute(
                QUERIES["session_create"],
                (session_id_hash(settings, session_id), email, csrf, lifetime),
            )
        ).fetchone()
    if not row or not row[0]:
        return None
    return make_cookie(request, SESSION_COOKIE, session_id, int(lifetime.total_seconds()))


async def end_session(request: Request[Any, Any, Any]) -> None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return
    async with pool_of(request.app).connection() as conn:
        await conn.execute(
            QUERIES["session_delete"], (session_id_hash(settings_of(request), session_id),)
        )


async def load_operator(connection: ASGIConnection[Any, Any, Any, Any]) -> Operator | None:
    """The operator of this request's session, or None (no cookie, unknown, expired)."""
    cached = connection.scope.get("state", {}).get("vigil_operator")
    if isinstance(cached, Operator):
        return cached
    session_id = connection.cookies.get(SESSION_COOKIE)
    if not session_id or len(session_id) > 200:
        return None
    digest = session_id_hash(settings_of(connection), session_id)
    async with pool_of(connection.app).connection() as conn:
        row = await (await conn.execute(QUERIES["session_get"], (digest,))).fetchone()
    if row is None:
        return None
    operator = Operator(email=str(row[0]), csrf_token=str(row[1]), time_zone=str(row[2] or ""))
    connection.scope.setdefault("state", {})["vigil_operator"] = operator
    return operator


async def _sent_csrf(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = connection.headers.get("content-type", "")
    if isinstance(connection, Request) and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await connection.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def operator_guard(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Litestar guard for every page route: a session, and CSRF on state changes."""
    operator = await load_operator(connection)
    if operator is None:
        raise LoginRequired()
    method = connection.scope.get("method", "GET")
    if method in UNSAFE_METHODS:
        sent = await _sent_csrf(connection)
        if not sent or not hmac.compare_digest(sent.encode(), operator.csrf_token.encode()):
            raise PermissionDeniedException(
                detail="missing or wrong CSRF token; reload the page and try again"
            )


def current_operator(request: Request[Any, Any, Any]) -> Operator:
    """The signed-in operator (only valid in handlers behind operator_guard)."""
    operator = request.scope.get("state", {}).get("vigil_operator")
    if not isinstance(operator, Operator):
        raise LoginRequired()
    return operator


def is_htmx(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return connection.headers.get("hx-request") == "true"


def login_required_handler(request: Request[Any, Any, Any], _: LoginRequired) -> Response[Any]:
    """Browsers go to /login (and come back afterwards); HTMX follows HX-Redirect."""
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if is_htmx(request):
        current = request.headers.get("hx-current-url")
        parts = urlsplit(current or "")
        back = safe_next(parts.path + ("?" + parts.query if parts.query else ""))
        url = "/login?next=" + quote(back, safe="")
        return Response("sign in first\n", status_code=401, headers={"HX-Redirect": url})
    url = "/login" if target == "/" else "/login?next=" + quote(target, safe="")
    return Redirect(url, status_code=303)


EXCEPTION_HANDLERS: dict[int | type[Exception], ExceptionHandler[Any]] = {
    LoginRequired: login_required_handler
}
