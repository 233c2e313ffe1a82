"""Helpers for uptime tests: add services, run one round of checks, read events/outbox."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import psycopg
from psycopg_pool import AsyncConnectionPool

from prober.guard import GuardedBackend
from prober.service import Clients, check_due, make_clients

Conn = psycopg.Connection[tuple[object, ...]]


def add(
    conn: Conn,
    name: str,
    url: str,
    *,
    interval: float = 15,
    timeout: float = 2,
    allow_internal: bool = True,
    expected_status: int | None = None,
    body_contains: str | None = None,
    retries: int = 0,
) -> int:
    row = conn.execute(
        "select vigil.service_add(%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            name,
            url,
            timedelta(seconds=interval),
            timedelta(seconds=timeout),
            allow_internal,
            expected_status,
            body_contains,
            retries,
        ),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def run_checks(
    dsn: str,
    now: datetime | None = None,
    public_backend: GuardedBackend | None = None,
) -> int:
    """One prober round: claims what is due (as of `now`) and checks it; returns the count.
    Uses the prober's production clients (`make_clients`, as `Prober.run` does) unless a
    test injects the public network backend."""

    async def go() -> int:
        pool = AsyncConnectionPool(
            dsn, min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
        )
        async with pool:
            clients = (
                make_clients(100)
                if public_backend is None
                else Clients(public_backend=public_backend)
            )
            try:
                return await check_due(pool, clients, now=now)
            finally:
                await clients.aclose()

    # In a thread of its own: Playwright's sync API may own this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def state(conn: Conn, name: str) -> str:
    row = conn.execute("select state from vigil.services where name = %s", (name,)).fetchone()
    assert row is not None
    return str(row[0])


def last_check(conn: Conn, name: str) -> tuple[object, ...]:
    row = conn.execute(
        "select c.ok, c.status_code, c.response_ms, c.error from vigil.checks c "
        "join vigil.services s on s.id = c.service_id where s.name = %s "
        "order by c.at desc limit 1",
        (name,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def events(conn: Conn, name: str) -> list[tuple[object, ...]]:
    return conn.execute(
        "select e.event, e.date_ended is null from vigil.service_events e "
        "join vigil.services s on s.id = e.service_id where s.name = %s order by e.id",
        (name,),
    ).fetchall()


def outbox_texts(conn: Conn) -> list[str]:
    return [str(r[0]) for r in conn.execute("select text from vigil.outbox order by id")]


def later(conn: Conn, seconds: float) -> datetime:
    """The database's now() plus `seconds` (to claim re-checks without waiting)."""
    row = conn.execute("select now() + %s", (timedelta(seconds=seconds),)).fetchone()
    assert row is not None and isinstance(row[0], datetime)
    return row[0]
