"""How errors leave the API: one line of text a sender's log can show, and every
database error mapped by api.core.db.http_error wherever a route did not handle it. A
browser asking for a missing page, or meeting a server error (500, or 503 while the database
is unreachable), gets an HTML page in the site's style instead."""

from __future__ import annotations

import logging
import re
from typing import Any

import psycopg
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandler

from api.core.db import http_error
from api.core.pages import render

log = logging.getLogger(__name__)
# Paths whose next segment is a credential (a ping secret, a push token, a sender token in
# the path, a badge key): logged as `…`.
SECRET_IN_PATH = re.compile(r"^(/t|/ping|/api/push|/badge)/[^/]+")


def loggable_path(path: str) -> str:
    """The path with the credential segment of ping, push, badge and /t/TOKEN URLs hidden."""
    return SECRET_IN_PATH.sub(r"\1/…", path)


def wants_html(request: Request[Any, Any, Any]) -> bool:
    """Whether the client prefers HTML to text: a browser (`Accept: text/html,...`), not
    curl, httpx or a sender (`*/*`, or no Accept), which keep the one line of text."""
    return request.accept.best_match([MediaType.TEXT, MediaType.HTML]) == MediaType.HTML


def plain_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Errors as one line of text a sender's log can show; a 404 or 5xx as a page for
    browsers."""
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and wants_html(request):
        return render(request, "errors/404.html", status_code=404, detail=detail)
    if exc.status_code >= 500 and wants_html(request):
        return render(
            request,
            "errors/5xx.html",
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
            detail=detail,
            status=exc.status_code,
        )
    return Response(
        f"{exc.status_code} {detail}\n",
        status_code=exc.status_code,
        media_type=MediaType.TEXT,
        headers=getattr(exc, "headers", None),
    )


def database_error(request: Request[Any, Any, Any], exc: psycopg.Error) -> Response[str]:
    """A database error no route handled: 4xx for what the client sent, else 503."""
    return plain_error(request, http_error(exc))


def server_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """An exception no handler expected: logged with its traceback, answered 500 (a page for
    browsers, one line of text for everyone else; never the exception's text)."""
    if isinstance(exc, HTTPException):
        return plain_error(request, exc)
    log.error("%s %s failed", request.method, loggable_path(request.url.path), exc_info=exc)
    return plain_error(request, HTTPException(status_code=500, detail="Internal Server Error"))


EXCEPTION_HANDLERS: dict[int | type[Exception], ExceptionHandler[Any]] = {
    HTTPException: plain_error,
    psycopg.Error: database_error,
    500: server_error,  # Litestar looks up unhandled exceptions by status 500 first
}
