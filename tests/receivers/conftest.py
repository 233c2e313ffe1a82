"""Fixtures of the receiver tests: one Vigil API (and its database) per module, so that a real
client (Prometheus, a Loki logging handler) is started once per module and the tests poll
what it sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.receivers import Conn, Vigil, poll, running_vigil
from vigil.cluster import Cluster

__all__ = ["Conn", "Vigil", "poll"]


@pytest.fixture(scope="module")
def vigil(pg_cluster: Cluster) -> Iterator[Vigil]:
    # A held lock makes a write fail fast (a 503) instead of waiting: the tests simulate a
    # database that cannot take writes with it.
    with running_vigil(pg_cluster, "receivers", lock_timeout="300ms") as running:
        yield running
