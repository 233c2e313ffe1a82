"""A running Vigil API with its own database, for tests that drive it with a real client
(Prometheus, a Loki handler, collectd, syslog-ng) started once per module, and the polling
those tests read what the client sent with."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from tests.conftest import TEMPLATE, ApiServer, free_port, make_settings, new_database
from vigil import tokens
from vigil.cluster import Cluster

T = TypeVar("T")
Conn = psycopg.Connection[Any]


@dataclass
class Vigil:
    """A running API with its own database: its URL and port, a sender token, a connection
    and the database's DSN."""

    url: str
    port: int
    token: str
    conn: Conn
    dsn: str


@contextmanager
def running_vigil(
    cluster: Cluster, token_name: str, lock_timeout: str | None = None
) -> Iterator[Vigil]:
    """An API on a fresh database (from the template) with one sender token `token_name`.
    With `lock_timeout`, a write waiting that long for a lock fails (SQLSTATE 55P03, a 503):
    tests simulate a database that cannot take writes by holding a lock."""
    with new_database(cluster, TEMPLATE) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        if lock_timeout is not None:
            conn.execute(f"alter database {conn.info.dbname} set lock_timeout = '{lock_timeout}'")
        token = tokens.create(conn, token_name)
        port = free_port()
        with ApiServer(make_settings(dsn, VIGIL_PORT=str(port))) as server:
            yield Vigil(server.url, port, token, conn, dsn)


def poll(probe: Callable[[], T | None], timeout: float = 30.0, every: float = 0.1) -> T:
    """probe()'s first truthy value, polling until timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout} s (last: {value!r})")
        time.sleep(every)
