"""GET /health: 200 once the database answers; says which database mode is active."""

from __future__ import annotations

from typing import Any

import psycopg
from litestar import Request, Response, get

from api.core.db import pool_of

HEALTH_SQL = """
select m.mode, m.reason,
       extract(epoch from now() - h.last_finished_at)::float8 as detector_age,
       (select count(*) from vigil.outbox where status = 'pending') as backlog,
       (select count(*) from vigil.outbox where status = 'dead') as dead
  from vigil.mode m
  left join vigil.job_heartbeats h on h.job = 'detect'
"""


@get("/health")
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    try:
        async with pool_of(request.app).connection(timeout=5) as conn:
            row = await (await conn.execute(HEALTH_SQL)).fetchone()
    except (psycopg.Error, TimeoutError) as exc:
        body = {
            "status": "down",
            "resources": [{"name": "database", "status": "down", "message": type(exc).__name__}],
        }
        return Response(body, status_code=503)
    assert row is not None
    mode, reason, detector_age, backlog, dead = row
    return Response(
        {
            "status": "up",
            "resources": [{"name": "database", "status": "up", "message": f"{mode} mode"}],
            "mode": mode,
            "mode_reason": reason,
            "detector_heartbeat_age_seconds": detector_age,
            "outbox_backlog": backlog,
            "dead_letters": dead,
        }
    )


ROUTES = [health]
