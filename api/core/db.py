"""The API's connection pool and the one place that maps SQLSTATEs to HTTP statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from litestar import Litestar
from litestar.exceptions import HTTPException
from psycopg_pool import AsyncConnectionPool

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
}


def pool_of(app: Litestar) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = app.state.pool
    return pool


def http_error(exc: psycopg.Error) -> HTTPException:
    """An HTTP error for a database error: 4xx for the client's mistakes, else 503."""
    diag = exc.diag
    status = SQLSTATE_STATUS.get(exc.sqlstate or "", 503)
    if status == 503:
        return HTTPException(status_code=503, detail="database unavailable, retry later")
    detail = diag.message_primary or "invalid request"
    if diag.message_hint:
        detail += f" ({diag.message_hint})"
    return HTTPException(status_code=status, detail=detail)


@asynccontextmanager
async def pool_lifespan(app: Litestar) -> AsyncIterator[None]:
    pool = pool_of(app)
    await pool.open(wait=False)
    try:
        yield
    finally:
        await pool.close()
