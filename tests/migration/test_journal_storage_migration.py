"""Revision 0005 converts journal lines stored in the old layout (one table of whole lines,
dedupe by a 32-byte SHA-256) to the compact one (vigil.journal_lines + vigil.journal_sets):
every read returns what it returned before, and ingest goes on deduplicating."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from alembic import command

from api.journal.formats.journald import parse_lines
from api.journal.store import Inserter
from tests.conftest import new_database
from tests.support.sql import Conn
from tests.support.timescale import PGlite
from vigil.cluster import Cluster
from vigil.migrate import alembic_config

NOW = datetime.now(UTC).replace(microsecond=0)
COLUMNS = "id, at, host, unit, container, priority, message, fields"


@pytest.fixture
def empty_url(pg_cluster: Cluster) -> Iterator[str]:
    with new_database(pg_cluster) as url:
        yield url


def old_lines() -> list[dict[str, Any]]:
    """Lines of three days: journalctl fields of several units and boots, a byte-array
    MESSAGE, a container, repeated fields, odd timestamps, and two different lines whose
    time and first 32 bits of SHA-256 agree."""
    out: list[dict[str, Any]] = []
    for i in range(120):
        at = NOW - timedelta(days=2) + timedelta(minutes=20 * i)
        us = int(at.timestamp() * 1_000_000)
        host = f"node-{i % 3}"
        unit = ["sshd.service", "cron.service", None][i % 3]
        fields: dict[str, Any] = {
            # journald's cursor; every 7th one does not match the line's times
            "__CURSOR": f"s=ab;i={i:x};b={'0f' if i % 2 else 'a1'};m={1000 + i:x};"
            f"t={us + (i % 7 == 0):x};x={i * 7:x}",
            "__REALTIME_TIMESTAMP": str(us),
            "__MONOTONIC_TIMESTAMP": str(1000 + i),
            "_BOOT_ID": f"boot{i % 2}",
            "_HOSTNAME": host,
            "PRIORITY": str([3, 6][i % 2]),
            "_PID": str(100 + i),
            "SYSLOG_IDENTIFIER": "sshd" if unit == "sshd.service" else "cron",
        }
        if unit:
            fields["_SYSTEMD_UNIT"] = unit
        message = f"line {i} session opened for user u{i % 5}"
        container = None
        if i % 10 == 0:
            container = "db"
            fields["CONTAINER_NAME"] = "db"
        if i % 17 == 0:
            fields["MESSAGE"] = [*b"bytes \xff", 65 + i % 26]
            message = f"bytes \\xff{chr(65 + i % 26)}"
        if i % 19 == 0:
            fields["__REALTIME_TIMESTAMP"] = " " + str(us)  # not the canonical text
        if i % 23 == 0:
            fields["TAG"] = ["a", "b"]
            fields["_BOOT_ID"] = ["x", "y"]
        sha = hashlib.sha256(f"raw {i}".encode()).digest()
        out.append(
            {"at": at, "sha": sha, "host": host, "unit": unit, "container": container,
             "priority": [3, 6][i % 2], "message": message, "fields": fields}
        )  # fmt: skip
    # same time, same first 4 bytes of SHA-256, different lines
    first: dict[str, Any] = out[5]
    twin = dict(first, sha=first["sha"][:4] + bytes(28), message="twin of line 5")
    out.append(twin)
    return out


def ingest(c: Conn, lines: list[dict[str, Any]]) -> tuple[Any, ...] | None:
    return c.execute(
        "select * from vigil.journal_ingest(%s, %s, %s, %s, %s, %s::smallint[], %s, %s::jsonb)",
        (
            [x["at"] for x in lines],
            [x["sha"] for x in lines],
            [x["host"] for x in lines],
            [x["unit"] for x in lines],
            [x["container"] for x in lines],
            [x["priority"] for x in lines],
            [x["message"] for x in lines],
            json.dumps([x["fields"] for x in lines]),
        ),
    ).fetchone()


def api_insert(url: str, lines: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    """The lines through the API's insert path (the fields split in Python, binary COPY)."""
    entries = []
    for x in lines:
        raw = json.dumps({**x["fields"], "MESSAGE": x["message"]}).encode()
        (entry,) = parse_lines([raw]).entries
        if "MESSAGE" in x["fields"]:  # a byte-array MESSAGE: as the parser would keep it
            entry = entry._replace(fields=json.dumps(x["fields"]).encode())
        entries.append(entry._replace(sha256=x["sha"]))

    async def run() -> tuple[int, int, int, int]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            inserter = Inserter(conn)
            oldest, newest, _ = await inserter.bounds()
            return await inserter.insert(entries, oldest, newest)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def reads(c: Conn) -> dict[str, Any]:
    """Every way the journal is read: the rows, pages, filters, search, counts."""

    def search(**kw: Any) -> list[tuple[Any, ...]]:
        args = ", ".join(f"p_{k} => %({k})s" for k in kw)
        return c.execute(
            f"select {COLUMNS} from vigil.journal_search({args})",  # noqa: S608
            kw,
        ).fetchall()

    first = search(limit=50)
    return {
        "rows": c.execute(f"select {COLUMNS} from vigil.journal order by id").fetchall(),  # noqa: S608
        "page 1": first,
        "page 2": search(limit=50, after_at=first[-1][1], after_id=first[-1][0]),
        "oldest first": search(limit=30, newest_first=False),
        "host": search(host="node-1", limit=1000),
        "unit": search(unit="sshd.service", limit=1000),
        "container": search(container="db", limit=1000),
        "priority": search(priority=4, limit=1000),
        "substring": search(text="SESSION OPENED FOR USER U3", limit=1000),
        "range": search(**{"from": NOW - timedelta(days=1), "to": NOW, "limit": 1000}),
        "counts": c.execute(
            "select host, unit, count(*), max(at) from vigil.journal group by 1, 2 order by 1, 2"
        ).fetchall(),
        "fields": c.execute(
            "select fields ->> '__REALTIME_TIMESTAMP', fields -> 'MESSAGE', fields -> 'TAG'"
            " from vigil.journal order by id"
        ).fetchall(),
    }


def test_old_journal_lines_read_the_same_after_the_upgrade(empty_url: str) -> None:
    lines = old_lines()
    command.upgrade(alembic_config(empty_url), "0004")
    with psycopg.connect(empty_url, autocommit=True) as c:
        assert ingest(c, lines) == (len(lines), 0, 0, 0)
        # closed days got their trigram indexes in the old layout
        c.execute("select vigil.journal_maintenance(now(), '{}')")
        before = reads(c)
        max_id = c.execute("select max(id) from vigil.journal").fetchone()
    assert len(before["rows"]) == len(lines)
    assert 0 < len(before["substring"]) < len(lines)  # not vacuous
    assert before["container"] and before["unit"] and len(before["page 2"]) == 50

    command.upgrade(alembic_config(empty_url), "head")
    with psycopg.connect(empty_url, autocommit=True) as c:
        after = reads(c)
        for name in before:
            assert after[name] == before[name], name
        assert c.execute("select to_regclass('vigil.journal_v1')").fetchone() == (None,)
        assert c.execute(
            "select count(*) from pg_class where relname like 'journal\\_v1%%'"
        ).fetchone() == (0,)
        # the two lines that shared (at, key) are both there, under different keys
        keys = c.execute(
            "select count(distinct key) from vigil.journal_lines where at = %s", (lines[5]["at"],)
        ).fetchone()
        assert keys == (2,)
        # shared fields are stored once per distinct content, not per line
        sets = c.execute("select count(*) from vigil.journal_sets").fetchone()
        assert sets is not None and int(str(sets[0])) < len(lines) // 2
        # cursors matching the line's times are stored typed (and read back whole)
        short = c.execute(
            "select count(*) from vigil.journal_lines where seqnum is not null"
        ).fetchone()
        assert short is not None and 80 < int(str(short[0])) < len(lines)
        # sending the old lines again stores nothing: the dedupe key carries over, whether
        # SQL splits the fields (arrays) or the API does (COPY)
        assert ingest(c, lines[:40] + lines[-1:]) == (0, 41, 0, 0)
        assert api_insert(empty_url, lines) == (0, len(lines), 0, 0)
        assert reads(c) == after
        # new lines continue the arrival order (the live tail's cursor)
        new = dict(lines[1], sha=hashlib.sha256(b"new").digest(), at=NOW, message="new line")
        assert ingest(c, [new]) == (1, 0, 0, 0)
        newest = c.execute("select id, message from vigil.journal_search(p_limit => 1)").fetchone()
        assert newest is not None and max_id is not None
        assert newest[1] == "new line" and int(str(newest[0])) > int(str(max_id[0]))
        # closed days get their trigram indexes in the new layout too (two runs: settled)
        for _ in range(2):
            c.execute("select vigil.journal_maintenance(now(), '{}')")
        indexed = c.execute(
            "select count(*) from pg_indexes where schemaname = 'vigil'"
            " and indexname like 'journal\\_p%%\\_message\\_trgm'"
        ).fetchone()
        assert indexed is not None and int(str(indexed[0])) >= 2


@pytest.mark.timescale
def test_old_compressed_chunks_convert_in_timescaledb_mode(ts_empty: PGlite) -> None:
    """The same in TimescaleDB mode (PGlite lane), from compressed chunks of the old
    hypertable: the lines read the same, the new hypertable has its policies."""
    lines = old_lines()
    command.upgrade(alembic_config(ts_empty.url), "0004")
    with psycopg.connect(ts_empty.dsn, autocommit=True) as c:
        assert ingest(c, lines) == (len(lines), 0, 0, 0)
        c.execute("select compress_chunk(ch) from show_chunks('vigil.journal') ch")
        before = reads(c)
    assert len(before["rows"]) == len(lines)

    command.upgrade(alembic_config(ts_empty.url), "head")
    with psycopg.connect(ts_empty.dsn, autocommit=True) as c:
        after = reads(c)
        for name in before:
            assert after[name] == before[name], name
        assert c.execute("select to_regclass('vigil.journal_v1')").fetchone() == (None,)
        hypertables = c.execute(
            "select hypertable_name from timescaledb_information.hypertables"
            " where hypertable_schema = 'vigil' and hypertable_name like 'journal%%'"
        ).fetchall()
        assert hypertables == [("journal_lines",)]
        policies = c.execute(
            "select proc_name from timescaledb_information.jobs"
            " where hypertable_name = 'journal_lines' order by 1"
        ).fetchall()
        assert policies == [("policy_compression",), ("policy_retention",)]
        assert ingest(c, lines[:10]) == (0, 10, 0, 0)
