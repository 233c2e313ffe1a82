"""Auth pages: /login, one-time login links, /logout, and the sender tokens page (/tokens:
create, shown once; list with last use; revoke). Google sign-in is in oidc.py."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import asdict
from typing import Any
from urllib.parse import urlencode

import psycopg
from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.auth import QUERIES
from api.auth.sessions import (
    SESSION_COOKIE,
    clear_cookie,
    end_session,
    load_operator,
    make_cookie,
    operator_guard,
    safe_next,
    settings_of,
    start_session,
)
from api.core.db import pool_of
from api.core.pages import render
from vigil import QUERIES as VIGIL_QUERIES
from vigil.tokens import TokenInfo, new_token, secret_hash

LINK_CSRF_COOKIE = "vigil_login_csrf"


@get("/login", include_in_schema=False)
async def login_page(request: Request[Any, Any, Any]) -> Response[Any]:
    target = safe_next(request.query_params.get("next"))
    if await load_operator(request) is not None:
        return Redirect(target, status_code=303)
    return render(
        request,
        "auth/login.html",
        next_path=target,
        google=settings_of(request).google_configured,
        error=None,  # never text from the query string: a link could plant a message
        signed_out=request.query_params.get("out") == "1",
    )


@get("/login/link/{link:str}", include_in_schema=False)
async def login_link_page(request: Request[Any, Any, Any], link: FromPath[str]) -> Template:
    """Shows a button; only the POST uses the link (link previews must not consume it)."""
    form_token = secrets.token_urlsafe(16)
    return render(
        request,
        "auth/login_link.html",
        link=link,
        form_token=form_token,
        cookies=[make_cookie(request, LINK_CSRF_COOKIE, form_token, 15 * 60)],
    )


@post("/login/link", status_code=303, include_in_schema=False)
async def login_link_use(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    link = str(form.get("link", ""))
    sent = str(form.get("form_token", ""))
    cookie = request.cookies.get(LINK_CSRF_COOKIE, "")
    if not sent or not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        return render(
            request,
            "auth/login.html",
            status_code=403,
            error="This sign-in form has expired; open the login link again.",
            google=settings_of(request).google_configured,
            next_path="/",
        )
    email = None
    if link and len(link) < 200:
        async with pool_of(request.app).connection() as conn:
            row = await (
                await conn.execute(QUERIES["login_link_use"], (secret_hash(link),))
            ).fetchone()
        email = row[0] if row else None
    session = await start_session(request, email) if email else None
    if session is None:
        return render(
            request,
            "auth/login.html",
            status_code=400,
            error="This login link is invalid, already used or expired. "
            "Ask for a new one (`vigil login-link EMAIL`).",
            google=settings_of(request).google_configured,
            next_path="/",
        )
    return Redirect(
        "/", status_code=303, cookies=[session, clear_cookie(request, LINK_CSRF_COOKIE)]
    )


@get("/logout", include_in_schema=False)
async def logout_page(request: Request[Any, Any, Any]) -> Response[Any]:
    """GET never changes state: it shows a button that POSTs (with the CSRF token)."""
    if await load_operator(request) is None:
        return Redirect("/login", status_code=303)
    return render(request, "auth/logout.html")


@post("/logout", guards=[operator_guard], status_code=303, include_in_schema=False)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    await end_session(request)
    return Redirect(
        "/login?out=1", status_code=303, cookies=[clear_cookie(request, SESSION_COOKIE)]
    )


MAX_LISTED = 1000  # tokens shown on the page


async def _page(
    request: Request[Any, Any, Any], status_code: int = 200, **context: Any
) -> Template:
    async with pool_of(request.app).connection() as conn:
        rows = await (await conn.execute(VIGIL_QUERIES["token_list"], (MAX_LISTED,))).fetchall()
    tokens = [asdict(TokenInfo(*row)) for row in rows]
    return render(request, "auth/tokens.html", status_code=status_code, tokens=tokens, **context)


@get("/tokens", guards=[operator_guard], include_in_schema=False)
async def tokens_page(request: Request[Any, Any, Any]) -> Template:
    revoked = request.query_params.get("revoked")
    return await _page(request, revoked=revoked)


@post("/tokens", guards=[operator_guard], status_code=200, include_in_schema=False)
async def create_token(request: Request[Any, Any, Any]) -> Template:
    """The new token is in this response only (no-store); only its hash is kept."""
    form = await request.form()
    name = str(form.get("name", "")).strip()
    if not 1 <= len(name) <= 100:
        return await _page(request, 400, error="A token name has 1 to 100 characters.", name=name)
    token = new_token()
    try:
        async with pool_of(request.app).connection() as conn:
            await conn.execute(VIGIL_QUERIES["token_create"], (name, secret_hash(token)))
    except psycopg.errors.UniqueViolation as exc:
        hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
        return await _page(request, 409, error=f"{exc.diag.message_primary}{hint}", name=name)
    base = str(request.base_url).rstrip("/")
    return await _page(request, created={"name": name, "token": token, "base": base})


@post("/tokens/revoke", guards=[operator_guard], status_code=303, include_in_schema=False)
async def revoke_token(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    name = str(form.get("name", ""))
    async with pool_of(request.app).connection() as conn:
        row = await (await conn.execute(VIGIL_QUERIES["token_revoke"], (name,))).fetchone()
    if not row or not row[0]:
        return await _page(request, 404, error=f"No active token named {name!r}.")
    # Post/redirect/get; the sender cache forgets a revoked token within a few seconds.
    return Redirect("/tokens?" + urlencode({"revoked": name}), status_code=303)


ROUTES = [
    login_page,
    login_link_page,
    login_link_use,
    logout_page,
    logout,
    tokens_page,
    create_token,
    revoke_token,
]
