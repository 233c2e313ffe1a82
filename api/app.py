"""The Litestar application factory."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp
from psycopg_pool import AsyncConnectionPool

from api.auth import SenderAuth, TokenPathPrefix
from api.db import pool_lifespan
from api.health import health
from api.heartbeats import post_metric
from vigil.settings import Settings


def _plain_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[str]:
    """Errors as one line of text a sender's log can show."""
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return Response(
        f"{exc.status_code} {detail}\n",
        status_code=exc.status_code,
        media_type=MediaType.TEXT,
        headers=getattr(exc, "headers", None),
    )


def create_litestar(settings: Settings) -> Litestar:
    pool = AsyncConnectionPool(
        settings.require_database_url(),
        min_size=2,
        max_size=10,
        open=False,
        kwargs={"autocommit": True},
    )
    return Litestar(
        route_handlers=[post_metric, health],
        lifespan=[pool_lifespan],
        request_max_body_size=settings.max_body_bytes,
        exception_handlers={HTTPException: _plain_error},
        state=State({"pool": pool, "sender_auth": SenderAuth(settings), "settings": settings}),
        openapi_config=None,
    )


def create_app(settings: Settings | None = None) -> ASGIApp:
    """The ASGI app uvicorn serves: Litestar behind the token path-prefix rewrite."""
    return TokenPathPrefix(create_litestar(settings or Settings.from_env()))
