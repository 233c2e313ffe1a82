"""The Litestar application factory."""

from __future__ import annotations

import importlib
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, ControllerRouterHandler
from psycopg_pool import AsyncConnectionPool

from api.auth.senders import SenderAuth, TokenPathPrefix
from api.auth.sessions import EXCEPTION_HANDLERS as PAGE_EXCEPTION_HANDLERS
from api.auth.sessions import SecurityHeaders
from api.core.db import pool_lifespan
from api.core.pages import template_config
from api.heartbeats.store import writer_lifespan
from vigil import PROJECT_ROOT
from vigil.settings import Settings

# Each module exposes ROUTES, a list of Litestar route handlers/controllers.
ROUTE_MODULES = (
    "api.core.health",
    "api.heartbeats.routes",
    "api.journal.routes",
    "api.journal.pages",
    "api.auth.pages",
    "api.heartbeats.pages",
    "api.auth.tokens_page",
    "api.auth.oidc",
    "api.series.routes",
    "api.series.formats.influx",
    "api.uptime.routes",
    "api.uptime.pages",
    "api.series.pages",
)

STATIC_DIR = PROJECT_ROOT / "api" / "static"


def _plain_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[str]:
    """Errors as one line of text a sender's log can show."""
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return Response(
        f"{exc.status_code} {detail}\n",
        status_code=exc.status_code,
        media_type=MediaType.TEXT,
        headers=getattr(exc, "headers", None),
    )


def route_handlers() -> list[ControllerRouterHandler]:
    handlers: list[ControllerRouterHandler] = []
    for name in ROUTE_MODULES:
        handlers.extend(importlib.import_module(name).ROUTES)
    handlers.append(create_static_files_router(path="/static", directories=[STATIC_DIR]))
    return handlers


def create_litestar(settings: Settings) -> Litestar:
    pool = AsyncConnectionPool(
        settings.require_database_url(),
        min_size=2,
        max_size=10,
        open=False,
        kwargs={"autocommit": True},
    )
    return Litestar(
        route_handlers=route_handlers(),
        lifespan=[pool_lifespan, writer_lifespan],
        request_max_body_size=settings.max_body_bytes,
        exception_handlers={HTTPException: _plain_error, **PAGE_EXCEPTION_HANDLERS},
        template_config=template_config(),
        middleware=[SecurityHeaders],
        state=State({"pool": pool, "sender_auth": SenderAuth(settings), "settings": settings}),
        openapi_config=None,
    )


def create_app(settings: Settings | None = None) -> ASGIApp:
    """The ASGI app uvicorn serves: Litestar behind the token path-prefix rewrite."""
    return TokenPathPrefix(create_litestar(settings or Settings.from_env()))
