"""Fixtures of the collectd, syslog-ng and Influx-call tests: one Vigil API (and its database)
per module, so that each real client (collectd, syslog-ng) is started once per module and the
tests poll what it sent."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import pytest

from tests.conftest import TEMPLATE, ApiServer, free_port, make_settings, new_database
from vigil import tokens
from vigil.cluster import Cluster

T = TypeVar("T")
Conn = psycopg.Connection[Any]


@dataclass
class Vigil:
    """A running API with its own database: its URL, a sender token and a connection."""

    url: str
    port: int
    token: str
    conn: Conn


@pytest.fixture(scope="module")
def vigil(pg_cluster: Cluster) -> Iterator[Vigil]:
    with new_database(pg_cluster, TEMPLATE) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        token = tokens.create(conn, "senders")
        port = free_port()
        with ApiServer(make_settings(dsn, VIGIL_PORT=str(port))) as server:
            yield Vigil(server.url, port, token, conn)


def poll(probe: Callable[[], T], timeout: float = 30.0, every: float = 0.1) -> T:
    """probe()'s first truthy value, polling until timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout} s (last: {value!r})")
        time.sleep(every)


def points(conn: Conn, host: str) -> list[tuple[Any, ...]]:
    """(name, labels, at, value) of every stored point of the series labelled `host`,
    ordered."""
    return conn.execute(
        "select s.name, s.labels, p.at, p.value from vigil.series s"
        " cross join lateral vigil.series_points(s.id, '-infinity', 'infinity') p"
        " where s.labels ->> 'host' = %s order by s.name, p.at",
        (host,),
    ).fetchall()
