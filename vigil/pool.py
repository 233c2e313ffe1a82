"""The connection pool of the API and the prober: psycopg_pool's, recovering promptly when the
database comes back after an outage."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff

RECONNECT_MAX_DELAY = 5.0
"""Seconds between a pool's attempts to reconnect, at most. psycopg_pool doubles the delay
after each failed attempt without a cap (1, 2, 4, ... 128 s), so after an outage of a minute
or two the pool would stay empty for as long again after the database came back, every
request waiting out its timeout for a 503."""

WAIT_SECONDS = 10.0
"""How long a request waits for a connection before its 503 (psycopg_pool: 30 s). A sender
told to retry sooner does better than one held half a minute while the database is down."""


class CappedBackoff(AttemptWithBackoff):
    """psycopg_pool's reconnection backoff, its delay capped at RECONNECT_MAX_DELAY."""

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_MAX_DELAY)


class Pool(AsyncConnectionPool):
    """An autocommit connection pool that reconnects at most RECONNECT_MAX_DELAY after the
    database comes back and gives a request WAIT_SECONDS to get a connection. (Overrides
    psycopg_pool's internal _add_connection, which creates the backoff; psycopg-pool is pinned
    and tests/faults checks the recovery.)"""

    def __init__(self, conninfo: str, *, min_size: int, max_size: int) -> None:
        super().__init__(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=WAIT_SECONDS,
            kwargs={"autocommit": True},
        )

    async def _add_connection(
        self, attempt: AttemptWithBackoff | None, growing: bool = False
    ) -> None:
        if attempt is None:
            attempt = CappedBackoff(timeout=self.reconnect_timeout)
        await super()._add_connection(attempt, growing)
