"""Delivery order per instance (a metric, a service): a crash mid-send, several notifiers,
a requeued dead letter, an outage with an Alert and its OK again both waiting."""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict

import psycopg

from tests.notifier.relays import drain_until, relay_for
from tests.support.fake_telegram import FakeTelegram
from tests.support.sql import T0, ingest, minutes

Conn = psycopg.Connection[tuple[object, ...]]
VALUE = re.compile(r"^(?:Alert|OK again): (h\d+) - d Value: \d+\.(\d+)$")


def flip(conn: Conn, host: str, seq: int) -> None:
    """The seq-th message about `host`: an Alert for even seq, an OK again for odd; the
    value carries seq ("95.03"), so the text tells which message of its instance it is."""
    value = f"{95 if seq % 2 == 0 else 50}.{seq:02d}"
    assert ingest(conn, host, "d", "disk", value, T0 + minutes(seq)) == (
        "alert" if seq % 2 == 0 else "ok"
    )


def sequences(texts: list[str]) -> dict[str, list[int]]:
    """host -> the seq numbers of its messages, in the order Telegram got them."""
    out: dict[str, list[int]] = defaultdict(list)
    for text in texts:
        match = VALUE.match(text)
        assert match, text
        out[match[1]].append(int(match[2]))
    return dict(out)


def ids(conn: Conn) -> list[int]:
    return [int(str(r[0])) for r in conn.execute("select id from vigil.outbox order by id")]


def delivery(conn: Conn, outbox_id: int) -> str:
    row = conn.execute("select delivery from vigil.outbox_status where id = %s", (outbox_id,))
    found = row.fetchone()
    assert found is not None
    return str(found[0])


def test_every_message_names_its_instance(conn: Conn) -> None:
    flip(conn, "h1", 0)
    conn.execute(  # the batch path of ingest: two changes of one metric
        "select vigil.ingest_metrics(%s, %s, %s, %s, %s)",
        (["h2", "h2"], ["d", "d"], ["disk", "disk"], ["95", "50"], [T0, T0]),
    )
    service = conn.execute(
        "select vigil.service_add('web', 'http://example.com/', interval '15 s', "
        "interval '2 s', false, null, null, 0)"
    ).fetchone()
    assert service is not None
    conn.execute("select vigil.record_check(%s, now(), 500, 1.0, null)", service)
    conn.execute("insert into vigil.job_heartbeats (job, last_finished_at) values ('x', now())")
    conn.execute("select vigil.check_stalls(now() + interval '1 hour')")
    metric = {str(h): int(str(i)) for h, i in conn.execute("select host, id from vigil.metrics")}
    rows = conn.execute("select instance_key, text from vigil.outbox_status order by id")
    assert [(key, str(text).split(" - ")[0].split(" since ")[0]) for key, text in rows] == [
        (f"metric:{metric['h1']}", "Alert: h1"),
        (f"metric:{metric['h2']}", "Alert: h2"),
        (f"metric:{metric['h2']}", "OK again: h2"),
        (f"service:{service[0]}", "Alert: web"),
        ("vigil", "Alert: Vigil job x has not run"),
    ]


def test_crash_mid_send_the_older_message_still_goes_first(
    dsn: str, conn: Conn, telegram: FakeTelegram
) -> None:
    flip(conn, "h1", 0)
    crashed = conn.execute(
        "select id from vigil.outbox_claim('crashed', '1 second', 10)"
    ).fetchall()
    assert len(crashed) == 1  # h1's Alert, claimed by a notifier that then died mid-send
    flip(conn, "h2", 0)
    flip(conn, "h1", 1)  # newer than the claimed one, same instance
    flip(conn, "h2", 1)
    first, second, third, fourth = ids(conn)
    relay = relay_for(dsn, telegram)
    assert relay.drain(conn) == 2  # h2 goes on; h1's OK again waits for h1's Alert
    metric = conn.execute("select id from vigil.metrics where host = 'h1'").fetchone()
    assert metric is not None
    assert sequences(telegram.texts()) == {"h2": [0, 1]}
    assert (
        delivery(conn, third)
        == f"waiting for message {first} (same metric:{metric[0]}, sent in order)"
    )
    assert conn.execute("select attempts from vigil.outbox where id = %s", (third,)).fetchone() == (
        0,
    )
    time.sleep(1.1)  # the dead worker's lease passes
    assert relay.drain(conn) == 2
    assert sequences(telegram.texts()) == {"h2": [0, 1], "h1": [0, 1]}
    assert telegram.texts()[2:] == ["Alert: h1 - d Value: 95.00", "OK again: h1 - d Value: 50.01"]
    assert conn.execute("select id, attempts from vigil.outbox order by id").fetchall() == [
        (first, 2),
        (second, 1),
        (third, 1),
        (fourth, 1),
    ]


def test_concurrent_claims_never_split_an_instance(dsn: str, conn: Conn) -> None:
    flip(conn, "h1", 0)
    flip(conn, "h1", 1)
    flip(conn, "h2", 0)
    first, second, third = ids(conn)
    with psycopg.connect(dsn) as other:  # a claim still in its transaction: rows locked
        mine = other.execute("select id from vigil.outbox_claim('a', '1 minute', 1)").fetchall()
        assert mine == [(first,)]
        theirs = conn.execute("select id from vigil.outbox_claim('b', '1 minute', 10)")
        assert theirs.fetchall() == [(third,)]  # h1's head is taken, its second waits
        other.commit()
    again = conn.execute("select id from vigil.outbox_claim('c', '1 minute', 10)").fetchall()
    assert again == []  # h1's head is leased to 'a'
    assert conn.execute("select vigil.outbox_delivered(%s, 'a')", (first,)).fetchone() == (True,)
    claimed = conn.execute("select id from vigil.outbox_claim('c', '1 minute', 10)").fetchall()
    assert claimed == [(second,)]


def test_alert_and_ok_again_both_waiting_are_both_sent_in_order(
    dsn: str, conn: Conn, telegram: FakeTelegram
) -> None:
    telegram.down()
    flip(conn, "h1", 0)
    relay = relay_for(dsn, telegram)
    relay.drain(conn)  # connection refused: the Alert waits for a retry
    flip(conn, "h1", 1)  # the outage of h1 ends while Telegram is still unreachable
    time.sleep(0.5)
    relay.drain(conn)
    assert conn.execute("select attempts from vigil.outbox order by id").fetchall() == [(2,), (0,)]
    telegram.up()
    drain_until(relay, conn, None)
    assert telegram.texts() == ["Alert: h1 - d Value: 95.00", "OK again: h1 - d Value: 50.01"]
    assert conn.execute("select status from vigil.outbox order by id").fetchall() == [
        ("delivered",),
        ("delivered",),
    ]


def test_a_requeued_message_older_than_a_delivered_one_is_superseded(
    dsn: str, conn: Conn, telegram: FakeTelegram
) -> None:
    telegram.respond(telegram.error(403, "Forbidden: bot was kicked from the group chat"))
    flip(conn, "h1", 0)
    flip(conn, "h1", 1)
    alert, ok_again = ids(conn)
    relay = relay_for(dsn, telegram)
    relay.drain(conn)  # the Alert is a dead letter, then the OK again goes out
    assert telegram.texts() == ["OK again: h1 - d Value: 50.01"]
    conn.execute(  # the requeue recipe of docs/dba.md
        "update vigil.outbox set status = 'pending', attempts = 0, next_attempt_at = now(), "
        "claimed_by = null, claimed_until = null where id = %s and status = 'dead'",
        (alert,),
    )
    assert relay.drain(conn) == 0
    assert telegram.texts() == ["OK again: h1 - d Value: 50.01"]  # never after its successor
    metric = conn.execute("select id from vigil.metrics").fetchone()
    assert metric is not None
    reason = f"message {ok_again} about metric:{metric[0]} was delivered first"
    assert conn.execute(
        "select status, last_error from vigil.outbox where id = %s", (alert,)
    ).fetchone() == ("superseded", reason)
    assert delivery(conn, alert) == "not sent, superseded: " + reason


def test_a_requeued_older_message_waits_while_a_newer_one_is_in_flight(conn: Conn) -> None:
    flip(conn, "h1", 0)
    flip(conn, "h1", 1)
    alert, ok_again = ids(conn)
    conn.execute("update vigil.outbox set status = 'dead' where id = %s", (alert,))
    claimed = conn.execute("select id from vigil.outbox_claim('a', '1 minute', 10)").fetchall()
    assert claimed == [(ok_again,)]
    conn.execute("update vigil.outbox set status = 'pending' where id = %s", (alert,))
    assert conn.execute("select id from vigil.outbox_claim('b', '1 minute', 10)").fetchall() == []
    conn.execute("select vigil.outbox_retry(%s, 'a', '502', interval '1 hour')", (ok_again,))
    # The newer one failed, so nothing newer was delivered: the older one goes first.
    claimed = conn.execute("select id from vigil.outbox_claim('b', '1 minute', 10)").fetchall()
    assert claimed == [(alert,)]


def test_four_relays_keep_each_instance_in_order(
    dsn: str, conn: Conn, telegram: FakeTelegram
) -> None:
    """200 messages over 20 metrics, 4 relays (threads, a connection each), 30 % of the
    requests answered 502: everything is delivered once, per metric in creation order,
    and no message is even attempted after its successor was."""
    for seq in range(10):
        for host in range(20):
            flip(conn, f"h{host:02d}", seq)
    assert conn.execute("select count(*) from vigil.outbox").fetchone() == (200,)
    telegram.flaky(0.3)
    relays = [
        relay_for(dsn, telegram, VIGIL_RETRY_BASE_SECONDS="0.05", VIGIL_RETRY_MAX_SECONDS="0.2")
        for _ in range(4)
    ]
    failures: list[Exception] = []

    def work(index: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    relays[index].drain(c)
                    left = c.execute("select count(*) from vigil.outbox where status = 'pending'")
                    if left.fetchone() == (0,):
                        return
                    time.sleep(0.01)
        except Exception as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    elapsed = time.monotonic() - started
    assert failures == []
    assert conn.execute("select status, count(*) from vigil.outbox group by status").fetchall() == [
        ("delivered", 200)
    ]
    delivered = sequences(telegram.texts())
    assert len(telegram.delivered) == 200  # nothing lost, nothing twice
    assert delivered == {f"h{h:02d}": list(range(10)) for h in range(20)}
    attempted = sequences([str(r.body["text"]) for r in telegram.received])
    for name, seqs in attempted.items():
        assert seqs == sorted(seqs), name  # a retry never comes after its successor
    failed = len(telegram.received) - 200
    workers = conn.execute("select count(distinct claimed_by) from vigil.outbox").fetchone()
    assert workers == (4,)
    print(f"4 relays: 200 messages, {failed} answered 502, {elapsed:.1f} s")
