"""Journal storage: entries by binary COPY (straight into the table, or staged when some
need SQL's rules), or as arrays where the server has no COPY. Dedupe, partitions and
retention are SQL (sql/50_journal.sql).
"""

from __future__ import annotations

import struct
from contextlib import nullcontext
from datetime import datetime
from typing import Any

import psycopg
import psycopg.errors

from api.core import pgcopy
from api.core.timestamps import PG_EPOCH_US, unix_us
from api.journal import QUERIES
from api.journal.formats.journald import (
    Entry,
)

Counts = tuple[int, int, int, int]  # accepted, duplicated, expired, future


Conn = psycopg.AsyncConnection[Any]


# field count 8; at: int8 microseconds since 2000-01-01; sha256: 32 bytes
_ROW_START = struct.Struct("!hiqi").pack


_PRIORITY = [b"\x00\x00\x00\x02" + struct.pack("!h", p) for p in range(8)]


def copy_rows(entries: list[Entry]) -> bytes:
    """The entries as one binary COPY stream in the column order of the journal_copy query."""
    rows: list[bytes] = []
    add = rows.extend
    texts: dict[str | None, bytes] = {None: pgcopy.NULL}  # host, unit, container: few distinct
    for us, sha256, host, unit, container, priority, message, fields in entries:
        if (h := texts.get(host)) is None:
            h = texts[host] = pgcopy.text(host)
        if (u := texts.get(unit)) is None:
            u = texts[unit] = pgcopy.text(unit)
        if (c := texts.get(container)) is None:
            c = texts[container] = pgcopy.text(container)
        m = message.encode()
        add(
            (
                _ROW_START(8, 8, us - PG_EPOCH_US, 32),
                sha256,
                h,
                u,
                c,
                pgcopy.NULL if priority is None else _PRIORITY[priority],
                pgcopy.length(len(m)),
                m,
                pgcopy.jsonb(fields),
            )
        )
    return pgcopy.stream(rows)


class Inserter:
    """Stores parsed entries; the rules are SQL (vigil.journal_ingest_staged).

    Fast path: when every entry lies within vigil.journal_bounds(), COPY straight into
    vigil.journal in one transaction; a duplicate (unique violation) or a day without a
    partition (check violation) rolls it back and the slow path runs: COPY into the
    session's staging table, then vigil.journal_ingest_staged() (insert ... on conflict do
    nothing, creates partitions, counts). A server without COPY FROM STDIN (the PGlite
    test server) gets the rows as arrays (vigil.journal_ingest).
    """

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.copy_supported = True

    async def bounds(self) -> tuple[datetime, datetime, str]:
        row = await (await self.conn.execute(QUERIES["journal_bounds"])).fetchone()
        assert row is not None
        return row[0], row[1], row[2]

    async def insert(self, entries: list[Entry], oldest: datetime, newest: datetime) -> Counts:
        if self.copy_supported:
            try:
                rows = copy_rows(entries)
                low, high = unix_us(oldest), unix_us(newest)
                if all(low <= e.us <= high for e in entries) and await self._direct(rows):
                    return (len(entries), 0, 0, 0)
                return await self._staged(rows)
            except psycopg.errors.FeatureNotSupported:
                self.copy_supported = False
        return await self._arrays(entries)

    async def _direct(self, rows: bytes) -> bool:
        try:
            # autocommit: the COPY is its own transaction (no BEGIN/COMMIT round trips)
            async with (
                self.conn.transaction() if not self.conn.autocommit else nullcontext(),
                self.conn.cursor().copy(QUERIES["journal_copy"]) as copy,
            ):
                await copy.write(rows)
        except (psycopg.errors.UniqueViolation, psycopg.errors.CheckViolation):
            return False
        return True

    async def _staged(self, rows: bytes) -> Counts:
        async with self.conn.transaction():
            await self.conn.execute(QUERIES["journal_stage"])
            async with self.conn.cursor().copy(QUERIES["journal_stage_copy"]) as copy:
                await copy.write(rows)
            row = await (await self.conn.execute(QUERIES["journal_ingest_staged"])).fetchone()
        assert row is not None
        return row[0], row[1], row[2], row[3]

    async def _arrays(self, entries: list[Entry]) -> Counts:
        row = await (
            await self.conn.execute(QUERIES["journal_ingest_arrays"], array_params(entries))
        ).fetchone()
        assert row is not None
        return row[0], row[1], row[2], row[3]


def array_params(entries: list[Entry]) -> tuple[object, ...]:
    """The parameters of the journal_ingest_arrays query, for servers without COPY."""
    return (
        [e.at for e in entries],
        [e.sha256 for e in entries],
        [e.host for e in entries],
        [e.unit for e in entries],
        [e.container for e in entries],
        [e.priority for e in entries],
        [e.message for e in entries],
        (b"[" + b",".join(e.fields for e in entries) + b"]").decode(),
    )
