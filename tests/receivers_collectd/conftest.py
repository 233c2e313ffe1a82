"""Fixtures of the collectd, syslog-ng and Influx-call tests: one Vigil API (and its database)
per module, so that each real client (collectd, syslog-ng) is started once per module and the
tests poll what it sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.receivers import Conn, Vigil, poll, running_vigil
from vigil.cluster import Cluster

__all__ = ["Conn", "Vigil", "points", "poll"]


@pytest.fixture(scope="module")
def vigil(pg_cluster: Cluster) -> Iterator[Vigil]:
    with running_vigil(pg_cluster, "senders") as running:
        yield running


def points(conn: Conn, host: str) -> list[tuple[Any, ...]]:
    """(name, labels, at, value) of every stored point of the series labelled `host`,
    ordered."""
    return conn.execute(
        "select s.name, s.labels, p.at, p.value from vigil.series s"
        " cross join lateral vigil.series_points(s.id, '-infinity', 'infinity') p"
        " where s.labels ->> 'host' = %s order by s.name, p.at",
        (host,),
    ).fetchall()
