"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from litestar import Litestar
from litestar.datastructures import State
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, ControllerRouterHandler

from api.alerts import pages as alert_pages
from api.auth import oidc
from api.auth import pages as auth_pages
from api.auth import settings as auth_settings
from api.auth.headers import SecurityHeaders
from api.auth.senders import SenderAuth, TokenPathPrefix
from api.auth.sessions import EXCEPTION_HANDLERS as PAGE_EXCEPTION_HANDLERS
from api.block import pages as block_pages
from api.block import routes as block_routes
from api.block.guard import BlockGuard
from api.collectd import routes as collectd_routes
from api.core import health, openapi
from api.core.bodies import LargeBodies
from api.core.db import pool_lifespan
from api.core.errors import EXCEPTION_HANDLERS
from api.core.head import HeadAsGet, own_head_paths
from api.core.pages import template_config
from api.heartbeats import pages as heartbeat_pages
from api.heartbeats import routes as heartbeat_routes
from api.heartbeats.store import writer_lifespan
from api.journal import pages as journal_pages
from api.journal import routes as journal_routes
from api.loki import routes as loki_routes
from api.pings import routes as ping_routes
from api.promwrite import routes as promwrite_routes
from api.public import routes as public_routes
from api.requests import pages as request_pages
from api.requests import routes as request_routes
from api.series import pages as series_pages
from api.series import routes as series_routes
from api.trace import pages as trace_pages
from api.trace import routes as trace_routes
from api.uptime import pages as uptime_pages
from api.uptime import routes as uptime_routes
from vigil import PROJECT_ROOT
from vigil.pool import Pool
from vigil.settings import Settings

# Every feature's routes, listed here so that the app's surface is read in one place. Each API
# route documents itself for /openapi.json (api/core/openapi.py); pages are left out of it
# (include_in_schema=False). tests/openapi/ checks both.
FEATURE_ROUTES: tuple[Sequence[ControllerRouterHandler], ...] = (
    health.ROUTES,
    openapi.ROUTES,
    auth_pages.ROUTES,
    auth_settings.ROUTES,
    oidc.ROUTES,
    heartbeat_routes.ROUTES,
    heartbeat_pages.ROUTES,
    journal_routes.ROUTES,
    journal_pages.ROUTES,
    series_routes.ROUTES,
    series_pages.ROUTES,
    collectd_routes.ROUTES,
    promwrite_routes.ROUTES,
    loki_routes.ROUTES,
    uptime_routes.ROUTES,
    uptime_pages.ROUTES,
    ping_routes.ROUTES,
    request_routes.ROUTES,
    request_pages.ROUTES,
    trace_routes.ROUTES,
    trace_pages.ROUTES,
    alert_pages.ROUTES,
    public_routes.ROUTES,
    block_routes.ROUTES,
    block_pages.ROUTES,
)

STATIC_DIR = PROJECT_ROOT / "api" / "static"


def api_version() -> str:
    try:
        return version("vigil")
    except PackageNotFoundError:  # run from a checkout that was not pip-installed
        return "0.0.0"


def route_handlers() -> list[ControllerRouterHandler]:
    handlers: list[ControllerRouterHandler] = []
    for routes in FEATURE_ROUTES:
        handlers.extend(routes)
    handlers.append(
        create_static_files_router(
            path="/static", directories=[STATIC_DIR], include_in_schema=False
        )
    )
    return handlers


def create_litestar(settings: Settings) -> Litestar:
    pool = Pool(settings.require_database_url(), min_size=2, max_size=10)
    read_pool = (
        Pool(settings.read_database_url, min_size=1, max_size=5)
        if settings.read_database_url
        else pool
    )
    return Litestar(
        route_handlers=route_handlers(),
        lifespan=[pool_lifespan, writer_lifespan],
        request_max_body_size=settings.max_body_bytes,
        exception_handlers={**EXCEPTION_HANDLERS, **PAGE_EXCEPTION_HANDLERS},
        template_config=template_config(),
        middleware=[SecurityHeaders, BlockGuard],  # BlockGuard: 403 for denied senders
        state=State(
            {
                "pool": pool,
                "read_pool": read_pool,
                "sender_auth": SenderAuth(settings),
                "settings": settings,
            }
        ),
        openapi_config=openapi.openapi_config(api_version()),
    )


def create_app(settings: Settings | None = None) -> ASGIApp:
    """The ASGI app uvicorn serves: Litestar behind the token path-prefix rewrite, with
    large bodies taking turns (api.core.bodies), HEAD answered wherever GET is (api.core.head)."""
    app = create_litestar(settings or Settings.from_env())
    return LargeBodies(HeadAsGet(TokenPathPrefix(app), own_head_paths(app)))
