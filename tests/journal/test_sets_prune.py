"""Sets of shared journal fields that no line references any more are pruned (the job
prune_journal_sets, both modes), never one in use: ingest marks the sets it uses and stores
a set again if it is gone."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg

from tests.support.sql import Conn

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=2)
LATER = NOW + timedelta(days=14)  # OLD is then longer ago than the retention and a day


def put(conn: Conn, set_id: int, unit: str) -> None:
    conn.execute(
        "select * from vigil.journal_sets_put(array[%s]::bigint[], array[%s], array[null],"
        " array[false], array[null], array[null], array['{}'::jsonb])",
        (set_id, unit),
    )


def line(conn: Conn, set_id: int, at: datetime, message: str) -> None:
    conn.execute(
        "insert into vigil.journal_lines (at, key, set_id, host, message)"
        " values (%s, %s, %s, 'h', %s)",
        (at, set_id, set_id, message),
    )


def sets(conn: Conn) -> list[int]:
    return [int(str(r[0])) for r in conn.execute("select id from vigil.journal_sets order by id")]


def test_prune_deletes_unreferenced_sets_only(db: Conn) -> None:
    for set_id in (1, 2, 3):
        put(db, set_id, f"u{set_id}.service")
    # sets 1 and 2 unused since OLD, set 3 used now; set 1 still has a line (stored when it
    # was used, up to a day ahead), in a day that retention has not dropped yet
    line(db, 1, OLD + timedelta(hours=20), "a line of set 1")
    db.execute("update vigil.journal_sets set seen_at = %s where id in (1, 2)", (OLD,))
    assert db.execute("select vigil.journal_sets_prune(%s, '{}')", (LATER,)).fetchone() == (1,)
    assert sets(db) == [1, 3]
    assert db.execute("select message from vigil.journal").fetchall() == [("a line of set 1",)]
    # ingest using set 1 marks it used again (once it is an hour old)
    put(db, 1, "u1.service")
    seen = db.execute("select seen_at from vigil.journal_sets where id = 1").fetchone()
    assert seen is not None and isinstance(seen[0], datetime) and seen[0] > NOW
    # a set pruned, then used by ingest again: stored again, its lines read
    put(db, 2, "u2.service")
    line(db, 2, NOW, "a line of set 2")
    assert sets(db) == [1, 2, 3]
    assert db.execute("select unit from vigil.journal where message = 'a line of set 2'").fetchone()
    # nothing to do: nothing is scanned
    assert db.execute("select vigil.journal_sets_prune(%s, '{}')", (LATER,)).fetchone() == (0,)


def test_prune_is_a_registered_job(db: Conn, mode: str) -> None:
    long_ago = NOW - timedelta(days=16)  # the job runs at now()
    jobs = [str(r[0]) for r in db.execute("select job from vigil.maintenance_jobs()")]
    if mode == "portable":
        assert "prune_journal_sets" in jobs
        db.execute("update vigil.journal_sets set seen_at = %s", (long_ago,))
        put(db, 9, "gone.service")
        db.execute("update vigil.journal_sets set seen_at = %s where id = 9", (long_ago,))
        assert db.execute("select vigil.run_maintenance_job('prune_journal_sets')").fetchone() == (
            None,
        )
    else:
        assert "journal_sets_prune_job" in jobs
        put(db, 9, "gone.service")
        db.execute("update vigil.journal_sets set seen_at = %s where id = 9", (long_ago,))
        job = db.execute(
            "select job_id from timescaledb_information.jobs"
            " where proc_name = 'journal_sets_prune_job'"
        ).fetchone()
        assert job is not None
        db.execute("call run_job(%s)", (job[0],))
    assert 9 not in sets(db)


def test_a_set_put_while_it_is_pruned_is_stored_again(dsn: str, conn: Conn) -> None:
    """Portable lane (two sessions): ingest storing a set that a prune is deleting waits for
    the prune and stores the set again; a set marked used first is not deleted."""
    put(conn, 5, "busy.service")
    put(conn, 6, "busy.service")
    conn.execute("update vigil.journal_sets set seen_at = %s", (OLD,))
    with psycopg.connect(dsn) as pruner:  # one transaction, left open
        assert pruner.execute("select vigil.journal_sets_prune(%s, '{}')", (LATER,)).fetchone() == (
            2,
        )
        done = threading.Event()

        def ingest() -> None:
            with psycopg.connect(dsn, autocommit=True) as other:
                put(other, 5, "busy.service")
            done.set()

        worker = threading.Thread(target=ingest)
        worker.start()
        assert not done.wait(0.5)  # waits for the prune's transaction
        pruner.commit()
        worker.join(10)
        assert done.is_set()
    assert sets(conn) == [5]
    # marked used before the prune looks: kept
    conn.execute("update vigil.journal_sets set seen_at = %s", (OLD,))
    put(conn, 5, "busy.service")
    assert conn.execute("select vigil.journal_sets_prune(%s, '{}')", (LATER,)).fetchone() == (0,)


def test_a_prune_waits_for_ingest_marking_a_set_used(dsn: str, conn: Conn) -> None:
    """Portable lane (two sessions): a set that ingest has marked used in a transaction still
    open is locked; a prune meeting it waits for that transaction and then keeps the set."""
    put(conn, 7, "busy.service")
    conn.execute("update vigil.journal_sets set seen_at = %s", (OLD,))
    result: list[object] = []
    with psycopg.connect(dsn) as ingest:  # one transaction, left open
        put(ingest, 7, "busy.service")

        def prune() -> None:
            with psycopg.connect(dsn, autocommit=True) as other:
                result.append(
                    other.execute("select vigil.journal_sets_prune(%s, '{}')", (LATER,)).fetchone()
                )

        worker = threading.Thread(target=prune)
        worker.start()
        worker.join(0.5)
        assert worker.is_alive()  # waits for the ingest's transaction
        ingest.commit()
        worker.join(10)
    assert result == [(0,)]
    assert 7 in sets(conn)


def test_a_set_stored_under_another_id_is_marked_used_too(conn: Conn) -> None:
    """A set whose hash id holds another set (a collision) lives at the next free id; using
    it again marks that row used."""
    put(conn, 20, "first.service")
    put(conn, 20, "second.service")  # same id, different content: stored at 21
    conn.execute("update vigil.journal_sets set seen_at = %s", (OLD,))
    put(conn, 20, "second.service")
    rows = conn.execute(
        "select id, unit, seen_at > %s from vigil.journal_sets order by id", (NOW,)
    ).fetchall()
    # (the set at the hashed id is marked too: kept longer, never deleted early)
    assert rows == [(20, "first.service", True), (21, "second.service", True)]
