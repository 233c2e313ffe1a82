"""The outbox recipes of docs/dba.md ("The outbox: what was (not) sent": status, backlog,
dead letters, waiting per instance, superseded, pauses, requeue) run as the guide prints
them, read from the guide itself, on an outbox with a message in every state, in both
modes (``db``)."""

from __future__ import annotations

from datetime import datetime

from tests.support import guide
from tests.support.sql import T0, Conn, ingest, minutes

SECTION = "## The outbox: what was (not) sent"


def guide_statements() -> list[str]:
    return guide.guide_statements(SECTION)


def recipe(*words: str) -> str:
    return guide.recipe(SECTION, *words)


def claim_one(db: Conn) -> int:
    row = db.execute("select id from vigil.outbox_claim('w', interval '1 minute', 1)").fetchone()
    assert row is not None
    return int(str(row[0]))


def created(db: Conn, message: int) -> datetime:
    row = db.execute("select created_at from vigil.outbox where id = %s", (message,)).fetchone()
    assert row is not None and isinstance(row[0], datetime)
    return row[0]


def instance(db: Conn, message: int) -> str:
    row = db.execute("select instance_key from vigil.outbox where id = %s", (message,)).fetchone()
    assert row is not None
    return str(row[0])


def test_the_outbox_recipes_show_each_message_where_it_stands(db: Conn) -> None:
    # Settled the way the notifier settles them (vigil.outbox_claim, then the outcome).
    ingest(db, "h1", "d", "disk", "95", T0)
    dead = claim_one(db)
    db.execute("select vigil.outbox_settle(%s, 'w', 'dead', 'Forbidden: bot was kicked')", (dead,))
    ingest(db, "h1", "d", "disk", "40", T0 + minutes(1))
    delivered = claim_one(db)
    db.execute("select vigil.outbox_delivered(%s, 'w')", (delivered,))
    ingest(db, "h3", "d", "disk", "95", T0 + minutes(2))
    ingest(db, "h3", "d", "disk", "40", T0 + minutes(3))
    retrying = claim_one(db)
    db.execute("select vigil.outbox_retry(%s, 'w', '502 Bad Gateway', '1 hour')", (retrying,))
    waiting = retrying + 1  # the OK again behind the retried Alert
    ingest(db, "h4", "d", "disk", "95", T0 + minutes(4))
    unconfigured = claim_one(db)
    db.execute(
        "select vigil.outbox_settle(%s, 'w', 'unconfigured', 'Telegram not configured')",
        (unconfigured,),
    )
    ingest(db, "h2", "d", "disk", "95", T0 + minutes(5))
    queued = unconfigured + 1
    assert [dead, delivered, retrying, waiting, unconfigured, queued] == list(range(dead, dead + 6))

    listed = db.execute(recipe("from vigil.outbox_status", "limit 20")).fetchall()
    assert [(r[0], r[2], r[3], r[5]) for r in listed] == [
        (queued, "pending", 0, "Alert: h2 - d Value: 95"),
        (unconfigured, "unconfigured", 1, "Alert: h4 - d Value: 95"),
        (waiting, "pending", 0, "OK again: h3 - d Value: 40"),
        (retrying, "pending", 1, "Alert: h3 - d Value: 95"),
        (delivered, "delivered", 1, "OK again: h1 - d Value: 40"),
        (dead, "dead", 1, "Alert: h1 - d Value: 95"),
    ]
    deliveries = [str(r[4]) for r in listed]
    assert deliveries[:3] == [
        "queued",
        "not delivered: Telegram not configured",
        f"waiting for message {retrying} (same {instance(db, retrying)}, sent in order)",
    ]
    assert deliveries[3].startswith("retrying, next attempt at ")
    assert deliveries[3].endswith(" (502 Bad Gateway)")
    assert deliveries[4].startswith("delivered at ")
    assert deliveries[5] == "dead letter: Forbidden: bot was kicked"

    backlog = recipe("count(*), min(created_at)", "status = 'pending'")
    assert db.execute(backlog).fetchall() == [(3, created(db, retrying))]

    dead_letters = recipe("last_error, text from vigil.outbox", "status = 'dead'")
    assert db.execute(dead_letters).fetchall() == [
        (dead, created(db, dead), 1, "Forbidden: bot was kicked", "Alert: h1 - d Value: 95")
    ]

    per_instance = recipe("min(id) as head", "group by")
    assert db.execute(per_instance).fetchall() == [
        (instance(db, retrying), 2, retrying, created(db, retrying)),
        (instance(db, queued), 1, queued, created(db, queued)),
    ]

    superseded = recipe("from vigil.outbox", "status = 'superseded'")
    assert db.execute(superseded).fetchall() == []

    # Requeue the dead letter as the guide says: it is older than the delivered OK again of
    # its metric, so the next claim settles it as superseded instead of sending it.
    requeue = recipe("update vigil.outbox", "status = 'pending'")
    assert "id = 42 and status = 'dead'" in requeue
    db.execute("listen vigil_outbox")  # as the notifier does
    assert db.execute(requeue.replace("id = 42", "id = %s"), (dead,)).rowcount == 1
    db.execute(recipe("pg_notify('vigil_outbox', '')"))
    assert [n.channel for n in db.notifies(timeout=5, stop_after=1)] == ["vigil_outbox"]
    db.execute("select vigil.outbox_claim('w2', interval '1 minute', 10)")
    assert db.execute(superseded).fetchall() == [
        (
            dead,
            created(db, dead),
            f"message {delivered} about {instance(db, dead)} was delivered first",
            "Alert: h1 - d Value: 95",
        )
    ]
    assert db.execute(dead_letters).fetchall() == []

    # "The same statement with status = 'unconfigured'" sends a kept message again.
    resend = requeue.replace("id = 42", "id = %s").replace(
        "status = 'dead'", "status = 'unconfigured'"
    )
    assert db.execute(resend, (dead,)).rowcount == 0  # superseded now: left alone
    assert db.execute(resend, (unconfigured,)).rowcount == 1
    row = db.execute(
        "select status, attempts, delivery from vigil.outbox_status where id = %s",
        (unconfigured,),
    ).fetchone()
    assert row == ("pending", 0, "queued")


def test_the_pause_recipe_lists_the_channels_still_paused(db: Conn) -> None:
    paused = recipe("from vigil.channel_pauses")
    assert db.execute(paused).fetchall() == []
    db.execute("select vigil.channel_pause('telegram:42', '1 hour', '429 Too Many Requests')")
    db.execute("select vigil.channel_pause('telegram:7', '-1 minute', '429 an old one')")
    rows = db.execute(paused).fetchall()
    assert [(r[0], r[2]) for r in rows] == [("telegram:42", "429 Too Many Requests")]
    until = db.execute("select now() + interval '1 hour'").fetchone()
    assert until is not None and isinstance(until[0], datetime)
    assert isinstance(rows[0][1], datetime) and rows[0][1] <= until[0]
    # The claim honours the same pause: nothing for the paused chat, the rest for others.
    ingest(db, "h", "d", "disk", "95", T0)
    claim = "select count(*) from vigil.outbox_claim('w', interval '1 minute', 10, now(), %s)"
    assert db.execute(claim, ("telegram:42",)).fetchone() == (0,)
    assert db.execute(claim, ("telegram:7",)).fetchone() == (1,)
