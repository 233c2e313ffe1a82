"""The /blocks page: the deny list in force (and what expired in the last day), the allow
list, and CSRF-checked forms to add and remove entries of both. The database checks every
value (sql/77_blocklist.sql); what it refuses re-renders the page with its reason and a 400.
The page itself is never refused to a denied address (api/block/guard.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from litestar import Request, Response, get, post
from litestar.response import Redirect, Template
from psycopg.rows import dict_row

from api.auth.sessions import current_operator, operator_guard
from api.block import QUERIES
from api.block.guard import CACHE_SECONDS
from api.core.db import http_error, pool_of, read_pool_of, status_of
from api.core.pages import render
from vigil import durations

MAX_DURATION = timedelta(days=3660)
DONE = {
    "added": "Blocked: sender routes refuse it with 403 within {s} s; the export lists it.",
    "removed": "Block removed: it is no longer refused (within {s} s) nor exported.",
    "allowed": "Allowed: this network is never blocked.",
    "unallowed": "Removed from the allow list.",
}
FORM_FIELDS = ("network", "duration", "reason")


class FormError(ValueError):
    """A form field that cannot be used; the message names the field."""


def parse_for(text: str) -> timedelta | None:
    """The form's duration: empty = until removed; 1h, 30m, 7d...; a bare number is hours."""
    compact = text.strip().lower().replace(" ", "")
    if not compact:
        return None
    if compact.replace(".", "", 1).isdigit():
        compact += "h"
    try:
        value = durations.parse_duration(compact)
    except ValueError:
        raise FormError(
            f"For: {text.strip()!r} is not a duration ({durations.DURATION_EXAMPLES})."
        ) from None
    if value <= timedelta(0) or value > MAX_DURATION:
        raise FormError("For: more than 0 and at most 3660 days (empty: until removed).")
    return value


def refused(exc: psycopg.Error) -> str:
    """The database's reason (and hint) for refusing; the 503 of api.core.db otherwise."""
    if status_of(exc) >= 500:
        raise http_error(exc) from exc
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    return message + (f" ({diag.message_hint})" if diag.message_hint else "")


async def _page(
    request: Request[Any, Any, Any],
    *,
    form: dict[str, str] | None = None,
    allow_form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Template:
    try:
        async with read_pool_of(request.app).connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            blocks = await (await cur.execute(QUERIES["block_page"])).fetchall()
            allowed = await (await cur.execute(QUERIES["allow_page"])).fetchall()
    except psycopg.Error as exc:
        raise http_error(exc) from None
    done = request.query_params.get("done")
    return render(
        request,
        "block/blocks.html",
        status_code=status_code,
        blocks=[b for b in blocks if b["active"]],
        expired=[b for b in blocks if not b["active"]],
        allowed=allowed,
        form=form or {"network": "", "duration": "1h", "reason": ""},
        allow_form=allow_form or {"network": "", "reason": ""},
        error=error,
        done=DONE.get(str(done), "").format(s=int(CACHE_SECONDS)) if done else "",
        cache_seconds=int(CACHE_SECONDS),
    )


@get("/blocks", guards=[operator_guard], include_in_schema=False)
async def blocks_page(request: Request[Any, Any, Any]) -> Template:
    return await _page(request)


async def _run(request: Request[Any, Any, Any], query: str, params: Any) -> Any:
    async with pool_of(request.app).connection() as conn:
        row = await (await conn.execute(query, params)).fetchone()
    return row[0] if row else None


@post("/blocks", guards=[operator_guard], status_code=303, include_in_schema=False)
async def add_block(request: Request[Any, Any, Any]) -> Response[Any]:
    data = await request.form()
    form = {f: str(data.get(f, "")) for f in FORM_FIELDS}
    try:
        if not form["network"].strip():
            raise FormError("Address or network: required (e.g. 203.0.113.7 or 203.0.113.0/24).")
        params = {
            "network": form["network"].strip(),
            "for": parse_for(form["duration"]),
            "reason": form["reason"].strip() or None,
            "by": current_operator(request).email,
        }
        await _run(request, QUERIES["block_add"], params)
    except FormError as exc:
        return await _page(request, form=form, error=str(exc), status_code=400)
    except psycopg.Error as exc:
        return await _page(request, form=form, error=refused(exc), status_code=400)
    return Redirect("/blocks?done=added", status_code=303)


@post("/blocks/remove", guards=[operator_guard], status_code=303, include_in_schema=False)
async def remove_block(request: Request[Any, Any, Any]) -> Response[Any]:
    network = str((await request.form()).get("network", "")).strip()
    try:
        found = await _run(request, QUERIES["block_remove"], (network,))
    except psycopg.Error as exc:
        return await _page(request, error=refused(exc), status_code=400)
    if not found:
        return await _page(request, error=f"{network} is not blocked (expired?).", status_code=404)
    return Redirect("/blocks?done=removed", status_code=303)


@post("/blocks/allow", guards=[operator_guard], status_code=303, include_in_schema=False)
async def add_allow(request: Request[Any, Any, Any]) -> Response[Any]:
    data = await request.form()
    allow_form = {f: str(data.get(f, "")) for f in ("network", "reason")}
    params = {
        "network": allow_form["network"].strip(),
        "reason": allow_form["reason"].strip() or None,
        "by": current_operator(request).email,
    }
    try:
        if not params["network"]:
            raise FormError("Allow: give an address or network.")
        await _run(request, QUERIES["allow_add"], params)
    except FormError as exc:
        return await _page(request, allow_form=allow_form, error=str(exc), status_code=400)
    except psycopg.Error as exc:
        return await _page(request, allow_form=allow_form, error=refused(exc), status_code=400)
    return Redirect("/blocks?done=allowed", status_code=303)


@post("/blocks/allow/remove", guards=[operator_guard], status_code=303, include_in_schema=False)
async def remove_allow(request: Request[Any, Any, Any]) -> Response[Any]:
    network = str((await request.form()).get("network", "")).strip()
    try:
        found = await _run(request, QUERIES["allow_remove"], (network,))
    except psycopg.Error as exc:
        return await _page(request, error=refused(exc), status_code=400)
    if not found:
        return await _page(request, error=f"{network} is not on the allow list.", status_code=404)
    return Redirect("/blocks?done=unallowed", status_code=303)


ROUTES = [blocks_page, add_block, remove_block, add_allow, remove_allow]
