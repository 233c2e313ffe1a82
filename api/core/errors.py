"""How errors leave the API: one line of text a sender's log can show, and every
database error mapped by api.core.db.http_error wherever a route did not handle it."""

from __future__ import annotations

from typing import Any

import psycopg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandler

from api.core.db import http_error


def plain_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[str]:
    """Errors as one line of text a sender's log can show."""
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return Response(
        f"{exc.status_code} {detail}\n",
        status_code=exc.status_code,
        media_type=MediaType.TEXT,
        headers=getattr(exc, "headers", None),
    )


def database_error(request: Request[Any, Any, Any], exc: psycopg.Error) -> Response[str]:
    """A database error no route handled: 4xx for what the client sent, else 503."""
    return plain_error(request, http_error(exc))


EXCEPTION_HANDLERS: dict[int | type[Exception], ExceptionHandler[Any]] = {
    HTTPException: plain_error,
    psycopg.Error: database_error,
}
