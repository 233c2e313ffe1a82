"""Fixtures of the receiver tests: one Vigil API (and its database) per module, so that a real
client (Prometheus, a Loki logging handler) is started once per module and the tests poll
what it sent."""

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
    token: str
    conn: Conn
    dsn: str


@pytest.fixture(scope="module")
def vigil(pg_cluster: Cluster) -> Iterator[Vigil]:
    with new_database(pg_cluster, TEMPLATE) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        # A held lock makes a write fail fast (SQLSTATE 55P03, a 503) instead of waiting:
        # the tests simulate a database that cannot take writes with it.
        dbname = conn.info.dbname
        conn.execute(f"alter database {dbname} set lock_timeout = '300ms'")
        token = tokens.create(conn, "receivers")
        settings = make_settings(dsn, VIGIL_PORT=str(free_port()))
        with ApiServer(settings) as server:
            yield Vigil(server.url, token, conn, dsn)


def poll(probe: Callable[[], T | None], timeout: float = 30.0, every: float = 0.1) -> T:
    """probe()'s first value that is not None (or falsy), polling until timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout} s (last: {value!r})")
        time.sleep(every)
