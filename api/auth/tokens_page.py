"""Sender tokens page (/tokens): create (shown once), list with last use, revoke."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import psycopg
from litestar import Request, Response, get, post
from litestar.response import Redirect, Template

from api.auth.sessions import operator_guard, render
from api.core.db import pool_of
from vigil.tokens import new_token, token_hash

LIST_SQL = """
select id, name, created_at, last_used_at, revoked_at
  from vigil.tokens order by revoked_at is not null, name, id desc limit 1000
"""
COLUMNS = ("id", "name", "created_at", "last_used_at", "revoked_at")


async def _page(
    request: Request[Any, Any, Any], status_code: int = 200, **context: Any
) -> Template:
    async with pool_of(request.app).connection() as conn:
        rows = await (await conn.execute(LIST_SQL)).fetchall()
    tokens = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    return render(request, "tokens.html", status_code=status_code, tokens=tokens, **context)


@get("/tokens", guards=[operator_guard])
async def tokens_page(request: Request[Any, Any, Any]) -> Template:
    revoked = request.query_params.get("revoked")
    return await _page(request, revoked=revoked)


@post("/tokens", guards=[operator_guard], status_code=200)
async def create_token(request: Request[Any, Any, Any]) -> Template:
    """The new token is in this response only (no-store); only its hash is kept."""
    form = await request.form()
    name = str(form.get("name", "")).strip()
    if not 1 <= len(name) <= 100:
        return await _page(request, 400, error="A token name has 1 to 100 characters.", name=name)
    token = new_token()
    try:
        async with pool_of(request.app).connection() as conn:
            await conn.execute("select vigil.token_create(%s, %s)", (name, token_hash(token)))
    except psycopg.errors.UniqueViolation as exc:
        hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
        return await _page(request, 409, error=f"{exc.diag.message_primary}{hint}", name=name)
    base = str(request.base_url).rstrip("/")
    return await _page(request, created={"name": name, "token": token, "base": base})


@post("/tokens/revoke", guards=[operator_guard], status_code=303)
async def revoke_token(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    name = str(form.get("name", ""))
    async with pool_of(request.app).connection() as conn:
        row = await (await conn.execute("select vigil.token_revoke(%s)", (name,))).fetchone()
    if not row or not row[0]:
        return await _page(request, 404, error=f"No active token named {name!r}.")
    # Post/redirect/get; the sender cache forgets a revoked token within a few seconds.
    return Redirect("/tokens?" + urlencode({"revoked": name}), status_code=303)


ROUTES = [tokens_page, create_token, revoke_token]
