"""Grouping: notifications of alert rules with a group_wait that are due together go to
Telegram as one message; order per instance and retries still hold."""

from __future__ import annotations

import time

from psycopg.types.json import Jsonb

from notifier.relay import group_texts
from tests.notifier.relays import Conn, drain_until, relay_for
from tests.support.fake_telegram import FakeTelegram


def thirty_hosts_down(conn: Conn, group_wait: str = "1 second") -> None:
    conn.execute(
        "insert into vigil.alert_rules (name, source, match_name, op, threshold, group_wait) "
        "values ('disk_free', 'series', 'disk_free', '<', 10, %s)",
        (group_wait,),
    )
    for i in range(30):
        conn.execute(
            "select vigil.add_point('disk_free', 1, now(), %s)", (Jsonb({"host": f"h{i:02}"}),)
        )
    row = conn.execute("select vigil.evaluate_rules(now())").fetchone()
    assert row == (30,)


def test_thirty_instances_are_one_message(dsn: str, conn: Conn, telegram: FakeTelegram) -> None:
    thirty_hosts_down(conn)
    relay = relay_for(dsn, telegram)
    assert relay.drain(conn) == 0  # held for the group wait
    time.sleep(1.1)
    drain_until(relay, conn, None)
    texts = telegram.texts()
    assert len(texts) == 1
    lines = texts[0].split("\n")
    assert lines[0] == "30 notifications:"
    assert sorted(lines[1:]) == [
        f'Alert: disk_free - disk_free{{host="h{i:02}"}} Value: 1' for i in range(30)
    ]
    assert conn.execute(
        "select count(*) from vigil.outbox where status = 'delivered'"
    ).fetchone() == (30,)


def test_a_failed_group_is_retried_whole(dsn: str, conn: Conn, telegram: FakeTelegram) -> None:
    thirty_hosts_down(conn, "0.2 seconds")
    telegram.respond(telegram.error(502, "Bad Gateway"))
    time.sleep(0.3)
    relay = relay_for(dsn, telegram)
    drain_until(relay, conn, None)
    assert len(telegram.received) == 2
    assert len(telegram.texts()) == 1
    assert conn.execute(
        "select count(*), min(attempts), max(attempts) from vigil.outbox where status = 'delivered'"
    ).fetchone() == (30, 2, 2)


def test_ungrouped_messages_stay_single(dsn: str, conn: Conn, telegram: FakeTelegram) -> None:
    thirty_hosts_down(conn, "0 seconds")
    drain_until(relay_for(dsn, telegram), conn, None)
    assert len(telegram.texts()) == 30


def test_group_texts_split_below_the_size_limit() -> None:
    assert group_texts(["one"]) == ["one"]
    lines = [f"Alert: host-{i} - a rather long metric name number {i}" for i in range(300)]
    parts = group_texts(lines, limit=1000)
    assert len(parts) > 1
    assert all(len(p) <= 1000 for p in parts)
    assert parts[0].startswith(f"300 notifications (part 1 of {len(parts)}):\n")
    assert [line for p in parts for line in p.split("\n")[1:]] == lines
