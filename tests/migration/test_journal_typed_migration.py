"""Revision 0007 converts journal lines stored with the cursor parts and _PID in their fields
(revisions 0005 and 0006) to the typed columns (seqnum, booted, xor_hash, pid): every read
returns what it returned before, in both modes (compressed chunks included), and ingest
goes on deduplicating the old lines whichever path splits the fields."""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg
import pytest
from alembic import command

from tests.migration.test_journal_storage_migration import (
    NOW,
    api_insert,
    empty_url,  # noqa: F401 (fixture)
    ingest,
    old_lines,
    reads,
)
from tests.support.timescale import PGlite
from vigil.migrate import alembic_config


def lines() -> list[dict[str, Any]]:
    """The lines of the 0005 conversion test, with 64-bit cursor parts, cursors with
    leading zeros (kept in the fields), _PIDs that are no int4, and a trace id."""
    out = old_lines()
    for i, x in enumerate(out):
        fields = x["fields"]
        if i % 4 == 1:
            fields["__CURSOR"] = fields["__CURSOR"].replace(";x=", ";x=f00000000000000")
        if i % 9 == 2:
            fields["__CURSOR"] = fields["__CURSOR"].replace(";i=", ";i=0")
        if i % 11 == 3:
            fields["_PID"] = ["1", "2"]
        if i % 13 == 4:
            fields["_PID"] = "99999999999"
        if i % 8 == 5:
            fields["TRACE_ID"] = f"{i:032x}"
    return out


def check_upgrade(url: str, dsn: str, timescale: bool) -> None:
    sent = lines()
    command.upgrade(alembic_config(url), "0006")
    with psycopg.connect(dsn, autocommit=True) as c:
        assert ingest(c, sent) == (len(sent), 0, 0, 0)
        if timescale:
            c.execute("select compress_chunk(ch) from show_chunks('vigil.journal_lines') ch")
        else:
            c.execute("select vigil.journal_maintenance(now(), '{\"settle\": false}')")
        before = reads(c)
        trace = c.execute(
            "select count(*) from vigil.journal_lines where ids is not null"
        ).fetchone()
        max_id = c.execute("select max(id) from vigil.journal").fetchone()
    assert len(before["rows"]) == len(sent) and trace is not None and trace[0]

    command.upgrade(alembic_config(url), "head")
    with psycopg.connect(dsn, autocommit=True) as c:
        after = reads(c)
        for name in before:
            assert after[name] == before[name], name
        assert c.execute(
            "select count(*) from pg_class where relname like 'journal\\_%%v2%%'"
        ).fetchone() == (0,)
        typed = c.execute(
            "select count(*) filter (where seqnum is not null),"
            " count(*) filter (where seqnum is not null and key <> 0),"
            " count(*) filter (where pid is not null),"
            " count(*) filter (where coalesce(fields, '{}') ? '__CURSOR'),"
            " count(*) filter (where ids is not null)"
            " from vigil.journal_lines"
        ).fetchone()
        assert typed is not None
        n_typed, typed_not_0, pids, full_cursors, ids = (int(str(v)) for v in typed)
        assert 60 < n_typed < len(sent) and typed_not_0 <= 1  # the twin of line 5
        assert 90 < pids < len(sent) and full_cursors > 10
        assert trace is not None and ids == trace[0]
        assert c.execute("select to_regclass('vigil.journal_lines_ids_idx')").fetchone() != (None,)
        # sending the old lines again stores nothing, whichever path splits the fields
        assert ingest(c, sent[:40] + sent[-1:]) == (0, 41, 0, 0)
        if not timescale:
            assert api_insert(url, sent) == (0, len(sent), 0, 0)
        assert reads(c) == after
        # new lines continue the arrival order (the live tail's cursor)
        new = dict(sent[1], sha=hashlib.sha256(b"new").digest(), at=NOW, message="new line")
        new["fields"] = dict(new["fields"], __CURSOR="x", MESSAGE_ID="1")
        assert ingest(c, [new]) == (1, 0, 0, 0)
        newest = c.execute("select id, message from vigil.journal_search(p_limit => 1)").fetchone()
        assert newest is not None and max_id is not None
        assert newest[1] == "new line" and int(str(newest[0])) > int(str(max_id[0]))
        if timescale:
            policies = c.execute(
                "select proc_name from timescaledb_information.jobs"
                " where hypertable_name = 'journal_lines' order by 1"
            ).fetchall()
            assert policies == [("policy_compression",), ("policy_retention",)]
        else:
            indexed = c.execute(
                "select count(*) from pg_indexes where schemaname = 'vigil'"
                " and indexname like 'journal\\_p%%\\_message\\_trgm'"
            ).fetchone()
            assert indexed is not None and int(str(indexed[0])) >= 2


def test_lines_of_revision_6_read_the_same_after_the_upgrade(empty_url: str) -> None:  # noqa: F811
    check_upgrade(empty_url, empty_url, timescale=False)


@pytest.mark.timescale
def test_compressed_lines_convert_in_timescaledb_mode(ts_empty: PGlite) -> None:
    check_upgrade(ts_empty.url, ts_empty.dsn, timescale=True)
