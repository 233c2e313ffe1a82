"""GET /health: 200 once the database answers; says which database mode is active and,
under `vigil run`, the state and restart count of each role (api, notifier, prober, and the
embedded database) as entries of `resources`."""

from __future__ import annotations

from typing import Any

import psycopg
from litestar import Request, Response, get
from litestar.openapi.spec import OpenAPIType

from api.core import QUERIES
from api.core.db import pool_of
from api.core.openapi import array, documented, integer, nullable, obj, reply, string
from vigil.supervisor import supervised_roles

HEALTH_SQL = QUERIES["health"]
"""The query behind /health (vigil.system_status), also run directly where no API is up."""


def _roles() -> list[dict[str, Any]]:
    """The roles of `vigil run`'s supervisor (none when the API runs on its own)."""
    return [
        {
            "name": f"role:{role.get('name')}",
            "status": role.get("status"),
            "message": f"restarts: {role.get('restarts', 0)}",
            "restarts": role.get("restarts", 0),
        }
        for role in supervised_roles()
    ]


RESOURCE = obj(
    {
        "name": string(description="`database`, or `role:NAME` for each role of `vigil run`"),
        "status": nullable(
            OpenAPIType.STRING,
            description="`up` or `down` (database); a role's state (`up`, `restarting`, ...)",
        ),
        "message": string(description="the database mode, the error's type, or restarts"),
        "restarts": integer(minimum=0, description="roles only: restarts so far"),
    },
    required=["name", "status", "message"],
    title="Resource",
)
HEALTH_UP = obj(
    {
        "status": string(const="up"),
        "resources": array(RESOURCE, min_items=1),
        "mode": string(enum=["timescaledb", "portable"], description="the database mode"),
        "mode_reason": nullable(OpenAPIType.STRING, description="why this mode"),
        "detector_heartbeat_age_seconds": nullable(
            OpenAPIType.NUMBER, description="seconds since the detector last ran (null: never)"
        ),
        "outbox_backlog": integer(minimum=0, description="messages not yet delivered"),
        "dead_letters": integer(minimum=0, description="messages given up on"),
    },
    title="HealthUp",
)
HEALTH_DOWN = obj(
    {"status": string(const="down"), "resources": array(RESOURCE, min_items=1)},
    title="HealthDown",
)


@get(
    "/health",
    operation_id="getHealth",
    summary="Health: the database and the roles of `vigil run`",
    tags=["status"],
    operation_class=documented(
        responses={
            200: reply(
                "The database answers; its mode, the detector's heartbeat and the outbox.",
                HEALTH_UP,
            ),
            503: reply("The database does not answer (within 5 s).", HEALTH_DOWN),
        }
    ),
)
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    try:
        async with pool_of(request.app).connection(timeout=5) as conn:
            row = await (await conn.execute(QUERIES["health"])).fetchone()
    except (psycopg.Error, TimeoutError) as exc:
        body = {
            "status": "down",
            "resources": [
                {"name": "database", "status": "down", "message": type(exc).__name__},
                *_roles(),
            ],
        }
        return Response(body, status_code=503)
    assert row is not None
    mode, reason, detector_age, backlog, dead = row
    return Response(
        {
            "status": "up",
            "resources": [
                {"name": "database", "status": "up", "message": f"{mode} mode"},
                *_roles(),
            ],
            "mode": mode,
            "mode_reason": reason,
            "detector_heartbeat_age_seconds": detector_age,
            "outbox_backlog": backlog,
            "dead_letters": dead,
        }
    )


ROUTES = [health]
