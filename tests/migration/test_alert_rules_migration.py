"""Revision 0004 (the alert-rule engine) keeps what a database had: tuned heartbeat types
become the built-in rules' values, the table vigil.rules becomes a view that still takes
updates, and alerts open before the upgrade recover with their "OK again" message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from alembic import command

from tests.conftest import new_database
from tests.support.sql import T0, Conn, ingest, minutes
from vigil.cluster import Cluster
from vigil.migrate import alembic_config


@pytest.fixture
def empty_url(pg_cluster: Cluster) -> Iterator[str]:
    with new_database(pg_cluster) as url:
        yield url


def texts(c: Conn) -> list[str]:
    return [str(r[0]) for r in c.execute("select text from vigil.outbox order by id")]


def test_tuned_types_and_open_alerts_survive_the_upgrade(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "0003")
    with psycopg.connect(empty_url, autocommit=True) as c:
        c.execute("update vigil.rules set threshold = 95 where type = 'disk'")
        c.execute("update vigil.rules set default_deadline_minutes = 10 where type = 'ping'")
        c.execute(
            "insert into vigil.rules (type, kind, threshold) values ('temp', 'threshold', 70)"
        )
        ingest(c, "db-1", "/var", "disk", "99", T0)
        ingest(c, "lab", "room", "temp", "80", T0)
        row = c.execute(
            "select vigil.service_add('shop', 'https://shop.example/', p_retries => 0)"
        ).fetchone()
        assert row is not None
        c.execute("select vigil.record_check(%s, %s, 503, 5, null)", (row[0], T0))
        before = texts(c)
        assert before == [
            "Alert: db-1 - /var Value: 99",
            "Alert: lab - room Value: 80",
            "Alert: shop - down (HTTP 503)",
        ]

    command.upgrade(alembic_config(empty_url), "head")
    with psycopg.connect(empty_url, autocommit=True) as c:
        assert c.execute(
            "select name, op, threshold, no_data_after from vigil.alert_rules "
            "where metric_type is not null order by name"
        ).fetchall() == [
            ("disk", ">", 95.0, None),
            ("ping", None, None, timedelta(minutes=10)),
            ("temp", ">", 70.0, None),
        ]
        assert c.execute("select type, kind from vigil.rules order by 1").fetchall() == [
            ("disk", "threshold"),
            ("ping", "deadline"),
            ("temp", "threshold"),
        ]
        assert c.execute(
            "select rule, instance_text, state from vigil.alerts order by rule"
        ).fetchall() == [
            ("disk", "db-1 - /var", "firing"),
            ("temp", "lab - room", "firing"),
            ("uptime", "shop", "firing"),
        ]
        # Recoveries after the upgrade are announced as before.
        ingest(c, "db-1", "/var", "disk", "50", T0 + minutes(1))
        ingest(c, "lab", "room", "temp", "60", T0 + minutes(1))
        c.execute(
            "select vigil.record_check(s.id, %s, 200, 5, null) from vigil.services s",
            (T0 + minutes(1),),
        )
        assert texts(c)[3:] == [
            "OK again: db-1 - /var Value: 50",
            "OK again: lab - room Value: 60",
            "OK again: shop (down for 1m 0s)",
        ]
        # The old table's updates still work, through the view.
        c.execute("update vigil.rules set threshold = 80 where type = 'temp'")
        assert c.execute(
            "select threshold from vigil.alert_rules where name = 'temp'"
        ).fetchone() == (80.0,)
