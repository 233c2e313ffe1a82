"""Sign-in pages: /login, one-time login links, /logout. Google sign-in is in pages_oidc."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from api.auth.sessions import (
    SESSION_COOKIE,
    clear_cookie,
    end_session,
    load_operator,
    make_cookie,
    operator_guard,
    render,
    safe_next,
    secret_hash,
    settings_of,
    start_session,
)
from api.core.db import pool_of

LINK_CSRF_COOKIE = "vigil_login_csrf"


@get("/login")
async def login_page(request: Request[Any, Any, Any]) -> Response[Any]:
    target = safe_next(request.query_params.get("next"))
    if await load_operator(request) is not None:
        return Redirect(target, status_code=303)
    return render(
        request,
        "login.html",
        next_path=target,
        google=settings_of(request).google_configured,
        error=None,  # never text from the query string: a link could plant a message
        signed_out=request.query_params.get("out") == "1",
    )


@get("/login/link/{link:str}")
async def login_link_page(request: Request[Any, Any, Any], link: FromPath[str]) -> Template:
    """Shows a button; only the POST uses the link (link previews must not consume it)."""
    form_token = secrets.token_urlsafe(16)
    return render(
        request,
        "login_link.html",
        link=link,
        form_token=form_token,
        cookies=[make_cookie(request, LINK_CSRF_COOKIE, form_token, 15 * 60)],
    )


@post("/login/link", status_code=303)
async def login_link_use(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    link = str(form.get("link", ""))
    sent = str(form.get("form_token", ""))
    cookie = request.cookies.get(LINK_CSRF_COOKIE, "")
    if not sent or not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        return render(
            request,
            "login.html",
            status_code=403,
            error="This sign-in form has expired; open the login link again.",
            google=settings_of(request).google_configured,
            next_path="/",
        )
    email = None
    if link and len(link) < 200:
        async with pool_of(request.app).connection() as conn:
            row = await (
                await conn.execute("select vigil.login_link_use(%s)", (secret_hash(link),))
            ).fetchone()
        email = row[0] if row else None
    session = await start_session(request, email) if email else None
    if session is None:
        return render(
            request,
            "login.html",
            status_code=400,
            error="This login link is invalid, already used or expired. "
            "Ask for a new one (`vigil login-link EMAIL`).",
            google=settings_of(request).google_configured,
            next_path="/",
        )
    return Redirect(
        "/", status_code=303, cookies=[session, clear_cookie(request, LINK_CSRF_COOKIE)]
    )


@get("/logout")
async def logout_page(request: Request[Any, Any, Any]) -> Response[Any]:
    """GET never changes state: it shows a button that POSTs (with the CSRF token)."""
    if await load_operator(request) is None:
        return Redirect("/login", status_code=303)
    return render(request, "logout.html")


@post("/logout", guards=[operator_guard], status_code=303)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    await end_session(request)
    return Redirect(
        "/login?out=1", status_code=303, cookies=[clear_cookie(request, SESSION_COOKIE)]
    )


ROUTES = [login_page, login_link_page, login_link_use, logout_page, logout]
