"""Revision 0003 orders messages that were written before it: each existing outbox row
gets the instance its message is about, and a pending message that the old notifier let
a newer one overtake is superseded instead of sent late."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from alembic import command

from tests.conftest import new_database
from tests.notifier.relays import Conn
from tests.support.sql import T0, ingest, minutes
from vigil.cluster import Cluster
from vigil.migrate import alembic_config


@pytest.fixture
def empty_url(pg_cluster: Cluster) -> Iterator[str]:
    with new_database(pg_cluster) as url:
        yield url


def one(conn: Conn, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(str(row[0]))


def test_existing_messages_get_their_instance_and_keep_their_order(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "0002")
    with psycopg.connect(empty_url, autocommit=True) as c:
        ingest(c, "a", "d", "disk", "95", T0)
        ingest(c, "b", "d", "disk", "95", T0)
        ingest(c, "a", "d", "disk", "50", T0 + minutes(1))
        service = one(
            c,
            "select vigil.service_add('web', 'http://example.com/', interval '15 s', "
            "interval '2 s', false, null, null, 0)",
        )
        c.execute("select vigil.record_check(%s, now(), 500, 1.0, null)", (service,))
        c.execute("insert into vigil.job_heartbeats (job, last_finished_at) values ('x', now())")
        c.execute("select vigil.check_stalls(now() + interval '1 hour')")
        ingest(c, "gone", "d", "disk", "95", T0)
        c.execute("delete from vigil.metrics where host = 'gone'")  # its message stays
        ids = [int(str(r[0])) for r in c.execute("select id from vigil.outbox order by id")]
        assert len(ids) == 6
        a_alert, b_alert, a_ok, web_down, stall, orphan = ids
        # What the unordered notifier could leave: a's OK again went out before its Alert.
        c.execute(
            "update vigil.outbox set status = 'delivered', delivered_at = now() where id = %s",
            (a_ok,),
        )
        metric = {str(h): int(str(i)) for h, i in c.execute("select host, id from vigil.metrics")}

    command.upgrade(alembic_config(empty_url), "head")
    with psycopg.connect(empty_url, autocommit=True) as c:
        assert c.execute("select id, instance_key from vigil.outbox order by id").fetchall() == [
            (a_alert, f"metric:{metric['a']}"),
            (b_alert, f"metric:{metric['b']}"),
            (a_ok, f"metric:{metric['a']}"),
            (web_down, f"service:{service}"),
            (stall, "vigil"),
            (orphan, "vigil"),
        ]
        claimed = c.execute("select id from vigil.outbox_claim('w', '1 minute', 10) order by id")
        assert claimed.fetchall() == [(b_alert,), (web_down,), (stall,)]  # orphan: after stall
        assert c.execute(
            "select status, delivery from vigil.outbox_status where id = %s", (a_alert,)
        ).fetchone() == (
            "superseded",
            f"not sent, superseded: message {a_ok} about metric:{metric['a']} was delivered first",
        )
