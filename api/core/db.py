"""The API's connection pool and the one place that maps SQLSTATEs to HTTP statuses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from litestar import Litestar
from litestar.exceptions import HTTPException
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("vigil.api")

# SQLSTATE -> HTTP status for errors the SQL raises on purpose (see sql/, "raise exception").
SQLSTATE_STATUS = {
    "22023": 400,  # invalid_parameter_value: e.g. unknown metric type
    "22P02": 400,  # invalid_text_representation
    "22003": 400,  # numeric_value_out_of_range
    "22021": 400,  # character_not_in_repertoire (e.g. invalid UTF-8)
    "22P05": 400,  # untranslatable_character (e.g. NUL in text)
    "22007": 400,  # invalid_datetime_format
    "22008": 400,  # datetime_field_overflow
    "23505": 409,  # unique_violation
    "23514": 400,  # check_violation
    "23503": 400,  # foreign_key_violation: e.g. depends on a rule that does not exist
    "55000": 409,  # object_not_in_prerequisite_state: e.g. deleting a built-in rule
}


# Class 53 (insufficient resources): still a 503, but the reason tells the operator what to fix.
RESOURCE_REASONS = {
    "53100": "database disk full",
    "53200": "database out of memory",
    "53300": "database has too many connections",
    "53400": "database limit reached",
}


def pool_of(app: Litestar) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = app.state.pool
    return pool


def status_of(exc: psycopg.Error) -> int:
    """The HTTP status of a database or driver error: 4xx when the request itself is what
    PostgreSQL refused (retrying the same request cannot help), else 503 (retry later)."""
    code = exc.sqlstate or ""
    if code in SQLSTATE_STATUS:
        return SQLSTATE_STATUS[code]
    if code.startswith(("22", "23")):  # data exception, integrity constraint violation
        return 400
    if not code and isinstance(exc, psycopg.DataError):
        # Refused by the driver before sending, e.g. a NUL character in a text value.
        return 400
    return 503


def read_pool_of(app: Litestar) -> AsyncConnectionPool:
    """The pool for operator page reads: VIGIL_READ_DATABASE_URL (a hot standby) when set,
    else the primary's. Never for writes, sign-in or anything a write's reply depends on."""
    pool: AsyncConnectionPool = app.state.read_pool
    return pool


def http_error(exc: psycopg.Error) -> HTTPException:
    """An HTTP error for a database error: 4xx for the client's mistakes, else 503. Logged:
    4xx at INFO with the SQLSTATE, 503 at WARNING (the database is down or failing)."""
    status = status_of(exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if status == 503:
        log.warning("database unavailable (%s %s): %s", exc.sqlstate, type(exc).__name__, first)
        reason = RESOURCE_REASONS.get(exc.sqlstate or "", "database unavailable")
        return HTTPException(status_code=503, detail=f"{reason}, retry later")
    log.info("request refused by the database (%s): %s", exc.sqlstate, first)
    diag = exc.diag
    detail = diag.message_primary or first or "invalid request"
    if diag.message_hint:
        detail += f" ({diag.message_hint})"
    return HTTPException(status_code=status, detail=detail)


@asynccontextmanager
async def pool_lifespan(app: Litestar) -> AsyncIterator[None]:
    pools = {id(p): p for p in (pool_of(app), read_pool_of(app))}.values()
    for pool in pools:
        await pool.open(wait=False)
    try:
        yield
    finally:
        for pool in pools:
            await pool.close()
