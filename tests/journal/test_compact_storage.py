"""The compact journal layout keeps every field: what POST /journal stored reads back from
vigil.journal exactly as sent (shared fields, typed cursors, _PID and the realtime stamp put
back), whichever path split the fields, and a dedupe key collision loses no line."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from api.journal.store import SHARED_KEYS
from tests.conftest import ApiServer

Conn = psycopg.Connection[tuple[object, ...]]


def lines() -> list[dict[str, Any]]:
    """journalctl -o json entries: realistic cursors, odd ones, arrays, escapes."""
    base = int(time.time() * 1_000_000) - 3_600_000_000
    out = []
    for i in range(40):
        us = base + i * 1_000_003
        mono = 5_000_000 + i
        entry: dict[str, Any] = {
            "__CURSOR": f"s=5f0c9a;i={i + 16:x};b=8f6a1c0e;m={mono:x};t={us:x};x={i * 31:x}",
            "__REALTIME_TIMESTAMP": str(us),
            "__MONOTONIC_TIMESTAMP": str(mono),
            "_BOOT_ID": "8f6a1c0e",
            "_HOSTNAME": f"web-{i % 2}",
            "_SYSTEMD_UNIT": "nginx.service" if i % 3 else "cron.service",
            "PRIORITY": "6",
            "_PID": str(400 + i),
            "MESSAGE": f"request {i} done in {i * 3} ms",
        }
        if i % 5 == 1:  # a cursor whose m= is not the monotonic time: kept as sent
            entry["__CURSOR"] = entry["__CURSOR"].replace(";m=", ";m=1")
        if i % 5 == 2:  # a realtime stamp that is not the canonical text: kept as sent
            entry["__REALTIME_TIMESTAMP"] = "0" + str(us)
        if i % 5 == 3:  # no cursor, a container, a repeated and a binary field
            del entry["__CURSOR"]
            entry["CONTAINER_NAME"] = "db"
            entry["TAG"] = ["a", "b"]
            entry["MESSAGE"] = [*b"caf\xc3\xa9 ", 0xFF]
        if i % 5 == 4:  # text that needs escapes, a unicode key, an unknown field
            entry["MESSAGE"] = 'quote " backslash \\ tab \t ü €'
            entry["GRÜSSE"] = "hé"
            entry["_STREAM_ID"] = "abc"
        out.append(entry)
    return out


def expected(entry: dict[str, Any]) -> dict[str, Any]:
    """The fields vigil.journal returns: all of them but a plain-string MESSAGE."""
    fields = dict(entry)
    if isinstance(fields["MESSAGE"], str):
        del fields["MESSAGE"]
    return fields


def test_every_field_reads_back_as_sent(api: ApiServer, token: str, conn: Conn) -> None:
    sent = lines()
    body = "\n".join(json.dumps(e, ensure_ascii=i % 2 == 0) for i, e in enumerate(sent))
    r = httpx.post(
        f"{api.url}/journal", content=body.encode(), headers={"authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200 and r.json()["accepted"] == len(sent), r.text
    stored = conn.execute(
        "select fields, unit, container from vigil.journal order by at"
    ).fetchall()
    assert [row[0] for row in stored] == [expected(e) for e in sent]
    assert [row[1] for row in stored] == [e["_SYSTEMD_UNIT"] for e in sent]
    assert [row[2] for row in stored] == [e.get("CONTAINER_NAME") for e in sent]
    # what is stored per line is small: shared fields once per set, cursors short
    own = conn.execute(
        "select count(*) filter (where fields ? '_HOSTNAME' or fields ? '_BOOT_ID'),"
        " count(*) filter (where fields ? '__REALTIME_TIMESTAMP'),"
        " count(*) filter (where fields ->> '__CURSOR' like 's=%%'),"
        " count(*) filter (where fields ? '__MONOTONIC_TIMESTAMP')"
        " from vigil.journal_lines"
    ).fetchone()
    # only the non-canonical stamps and the unmatched cursors (their monotonic time too,
    # and that of the lines without a cursor)
    assert own == (0, 8, 8, 16)
    sets = conn.execute("select count(*) from vigil.journal_sets").fetchone()
    assert sets is not None and int(str(sets[0])) <= 2 * 2 * 5  # hosts x units x shapes
    # the same lines again: all duplicates
    r = httpx.post(
        f"{api.url}/journal", content=body.encode(), headers={"authorization": f"Bearer {token}"}
    )
    assert (r.json()["accepted"], r.json()["duplicated"]) == (0, len(sent))


def test_sql_split_reads_the_same_and_dedupes_with_the_api(
    api: ApiServer, token: str, conn: Conn
) -> None:
    """vigil.journal_ingest (arrays: SQL splits the fields, as on servers without COPY)
    stores what the API's split stores, and each path sees the other's lines as duplicates."""
    sent = lines()
    from api.journal.formats.journald import parse_lines
    from api.journal.store import array_params

    batch = parse_lines([json.dumps(e).encode() for e in sent])
    counts = conn.execute(
        "select * from vigil.journal_ingest(%s::timestamptz[], %s::bytea[], %s::text[],"
        " %s::text[], %s::text[], %s::smallint[], %s::text[], %s::jsonb)",
        array_params(batch.entries),
    ).fetchone()
    assert counts == (len(sent), 0, 0, 0)
    stored = conn.execute("select fields from vigil.journal order by at").fetchall()
    assert [row[0] for row in stored] == [expected(e) for e in sent]
    typed = conn.execute(
        "select count(*), count(*) filter (where key = 0"
        " and not coalesce(fields, '{}') ?| array['__CURSOR', '__MONOTONIC_TIMESTAMP'])"
        " from vigil.journal_lines"
        " where seqnum is not null"
    ).fetchone()
    assert typed == (24, 24)  # the cursors matching their line's times, as the API stores them
    r = httpx.post(
        f"{api.url}/journal",
        content="\n".join(json.dumps(e) for e in sent).encode(),
        headers={"authorization": f"Bearer {token}"},
    )
    assert (r.json()["accepted"], r.json()["duplicated"]) == (0, len(sent))


def test_shared_keys_agree_with_sql(conn: Conn) -> None:
    row = conn.execute("select vigil._journal_shared_keys()").fetchone()
    assert row is not None and isinstance(row[0], list) and set(row[0]) == SHARED_KEYS


def test_key_collisions_keep_both_lines(conn: Conn) -> None:
    """Two different lines with the same time and the same first 32 bits of SHA-256 are
    both stored (the second under the next free key); sending either again is a duplicate."""
    at = datetime.now(UTC) - timedelta(minutes=1)
    sha_a = b"\x01\x02\x03\x04" + bytes(28)
    sha_b = b"\x01\x02\x03\x04" + b"\xff" * 28

    def ingest(messages: list[str], shas: list[bytes]) -> Any:
        n = len(messages)
        return conn.execute(
            "select * from vigil.journal_ingest(%s, %s, %s, %s, %s, %s::smallint[], %s, %s)",
            (
                [at] * n,
                shas,
                ["h"] * n,
                [None] * n,
                [None] * n,
                [6] * n,
                messages,
                json.dumps([{"_HOSTNAME": "h"} for _ in messages]),
            ),
        ).fetchone()

    assert ingest(["first", "second"], [sha_a, sha_b]) == (2, 0, 0, 0)
    assert ingest(["second", "first", "third"], [sha_b, sha_a, sha_a]) == (1, 2, 0, 0)
    rows = conn.execute("select key, message from vigil.journal_lines order by key").fetchall()
    assert [r[1] for r in rows] == ["first", "second", "third"]
    assert [r[0] for r in rows] == [0x01020304, 0x01020305, 0x01020306]


def cursor_entry(seqnum: int, us: int, message: str, xor: int = 0x1F2E3D4C5B6A7988) -> bytes:
    """A journalctl -o json line with a cursor that matches its times."""
    mono = 7_000_000 + seqnum
    return json.dumps(
        {
            "__CURSOR": f"s=ab12;i={seqnum:x};b=77cc;m={mono:x};t={us:x};x={xor:x}",
            "__REALTIME_TIMESTAMP": str(us),
            "__MONOTONIC_TIMESTAMP": str(mono),
            "_BOOT_ID": "77cc",
            "_HOSTNAME": "db-1",
            "_PID": "2147483647" if seqnum % 2 else "315",
            "MESSAGE": message,
        }
    ).encode()


def test_typed_cursor_lines_dedupe_exactly(api: ApiServer, token: str, conn: Conn) -> None:
    """Lines identified by their cursor (dedupe key 0): a re-sent batch stores nothing twice,
    a different line at the same microsecond is kept (next free key), in both ingest paths;
    64-bit cursor parts (x= from 8000...) and the largest _PID read back as sent."""
    from api.journal.formats.journald import parse_lines
    from api.journal.store import array_params

    us = int(time.time() * 1_000_000) - 600_000_000
    sent = [
        cursor_entry(1, us, "one", xor=0xFFFFFFFFFFFFFFFF),
        cursor_entry(2, us, "two at the same time"),
        cursor_entry(3, us + 1, "three", xor=0x8000000000000000),
    ]
    r = httpx.post(
        f"{api.url}/journal", content=b"\n".join(sent), headers={"authorization": f"Bearer {token}"}
    )
    assert (r.json()["accepted"], r.json()["duplicated"]) == (3, 0), r.text
    rows = conn.execute(
        "select key, pid, fields from vigil.journal_lines where seqnum is not null order by seqnum"
    ).fetchall()
    assert rows == [(0, 2147483647, None), (1, 315, None), (0, 2147483647, None)]
    back = conn.execute("select fields from vigil.journal order by at, id").fetchall()
    assert [row[0] for row in back] == [expected(json.loads(e)) for e in sent]
    # again, through the API and through SQL's split: all duplicates
    r = httpx.post(
        f"{api.url}/journal", content=b"\n".join(sent), headers={"authorization": f"Bearer {token}"}
    )
    assert (r.json()["accepted"], r.json()["duplicated"]) == (0, 3), r.text
    counts = conn.execute(
        "select * from vigil.journal_ingest(%s::timestamptz[], %s::bytea[], %s::text[],"
        " %s::text[], %s::text[], %s::smallint[], %s::text[], %s::jsonb)",
        array_params(parse_lines([*sent, cursor_entry(4, us, "four, same time")]).entries),
    ).fetchone()
    assert counts == (1, 3, 0, 0)
    keys = conn.execute(
        "select key from vigil.journal_lines where at = %s order by key",
        (datetime.fromtimestamp(us / 1e6, UTC),),
    ).fetchall()
    assert keys == [(0,), (1,), (2,)]


def test_odd_cursors_and_pids_stay_in_fields(conn: Conn) -> None:
    """Cursor parts with leading zeros or more than 64 bits, and a _PID that is not a plain
    int4, are kept as sent in the fields (no typed columns, a hash dedupe key)."""
    from api.journal.formats.journald import parse_lines
    from api.journal.store import array_params

    us = int(time.time() * 1_000_000) - 600_000_000
    odd = [
        cursor_entry(5, us, "leading zero").replace(b";i=5;", b";i=05;"),
        cursor_entry(6, us + 1, "17 digits").replace(b";x=", b";x=1"),
        cursor_entry(7, us + 2, "pid too big").replace(b'"2147483647"', b'"2147483648"'),
        cursor_entry(8, us + 3, "pid with a zero").replace(b'"315"', b'"0315"'),
    ]
    entries = parse_lines(odd).entries
    counts = conn.execute(
        "select * from vigil.journal_ingest(%s::timestamptz[], %s::bytea[], %s::text[],"
        " %s::text[], %s::text[], %s::smallint[], %s::text[], %s::jsonb)",
        array_params(entries),
    ).fetchone()
    assert counts == (4, 0, 0, 0)
    rows = conn.execute(
        "select seqnum is not null, pid is not null, key <> 0 from vigil.journal_lines order by at"
    ).fetchall()
    assert rows == [(False, True, True), (False, True, True), (True, False, False),
                    (True, False, False)]  # fmt: skip
    back = conn.execute("select fields from vigil.journal order by at").fetchall()
    assert [row[0] for row in back] == [expected(json.loads(e)) for e in odd]
