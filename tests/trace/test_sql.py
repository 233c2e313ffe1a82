"""vigil.trace and the journal id index (sql/57_trace.sql) in both modes: ids from journal
fields, a traceparent field and message text, and from request records; order; an unknown
id; the index is used."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.trace.data import OTHER, TRACE, seed

Conn = psycopg.Connection[tuple[object, ...]]


def trace(conn: Conn, trace_id: str, limit: int = 1000) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select kind, host, service, message from vigil.trace(%s, %s)", (trace_id, limit)
    ).fetchall()


def test_every_source_oldest_first(db: Conn) -> None:
    seed(db)
    assert trace(db, TRACE) == [
        ("request", "edge", "shop.example", "GET /cart?a=1 200"),
        ("journal", "app-1", "shop.service", "cart loaded"),  # TRACE_ID, upper case
        ("journal", "app-1", "shop.service", "calling payments"),  # traceparent
        ("journal", "app-2", "pay.service", f"charge failed trace_id={TRACE} code=7"),  # text
        ("journal", "app-2", "pay.service", "retrying"),  # trace_id
    ]
    assert trace(db, TRACE.upper()) == trace(db, TRACE)  # hex ids in any case
    assert [r[3] for r in trace(db, "req-7")] == ["gave up", "audit", "GET /pay 502"]
    assert [r[3] for r in trace(db, "req-1")] == ["GET /cart?a=1 200"]
    assert [r[3] for r in trace(db, OTHER)] == ["GET /other 200"]
    assert [r[3] for r in trace(db, TRACE, limit=2)] == ["GET /cart?a=1 200", "cart loaded"]


def test_unknown_ids_and_what_is_not_an_id(db: Conn) -> None:
    seed(db)
    assert trace(db, "no-such-id") == []
    assert trace(db, "REQ-7") == []  # other ids match exactly
    assert trace(db, "a") == []  # an array field is not an id
    assert trace(db, "x" * 200) == []  # a huge field is not indexed (and did not fail)
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        trace(db, "x" * 201)


def test_lookups_use_the_indexes(db: Conn) -> None:
    seed(db)  # the id index is there by default: no vigil.trace_journal_index(true)
    db.execute("analyze vigil.journal_lines")
    db.execute("set enable_seqscan = off")  # tiny tables: show the index can serve it
    plan = "\n".join(
        str(r[0])
        for r in db.execute(
            "explain select * from vigil.journal_lines l where l.ids @> array[%s]", (TRACE,)
        ).fetchall()
    )
    assert "ids_idx" in plan, plan
    assert db.execute("select vigil.trace_journal_index(false)").fetchone() == (False,)
    assert len(trace(db, TRACE)) == 5  # without the index: slower, same answer
    db.execute("select vigil.trace_journal_index(true)")
    ids = db.execute(
        "select vigil._journal_ids(%s::jsonb, %s)",
        ('{"traceparent": "00-' + TRACE.upper() + '-00f067aa0ba902b7-01", "request_id": "r"}',
         f"a {OTHER} b {OTHER}, c{TRACE} d"),
    ).fetchone()  # fmt: skip
    assert ids is not None and isinstance(ids[0], list)
    assert sorted(ids[0]) == sorted([TRACE, "r", OTHER])
