"""Journal storage: entries by binary COPY (straight into the table, or staged when some
need SQL's rules), or as arrays where the server has no COPY. Dedupe, partitions and
retention are SQL (sql/50_journal.sql).

Each entry's fields are split here: the fields that stay the same for a process, unit or
boot (SHARED_KEYS, the same list as SQL's vigil._journal_shared_keys()) go to one row of
vigil.journal_sets per distinct content, keyed by a 64-bit hash; the line keeps the rest.
A __REALTIME_TIMESTAMP equal to the line's time is not stored again, and a journald
__CURSOR only by the parts that are not elsewhere, as typed columns (its seqnum, the boot's
start on the realtime clock, which with the line's time gives the monotonic time and
__MONOTONIC_TIMESTAMP, and its xor hash; the seqnum id and boot id go with the set, its
realtime is the line's); _PID too. Such a line is identified by its cursor: its dedupe key
is 0. The view vigil.journal puts them back together. The request and trace ids a line
carries (api/journal/ids.py) are extracted here, once, and stored with it
(vigil.journal_lines.ids) for lookups by id (sql/57_trace.sql).
"""

from __future__ import annotations

import hashlib
import re
import struct
from datetime import datetime
from typing import Any

import msgspec
import psycopg
import psycopg.errors

from api.core import pgcopy
from api.core.timestamps import EPOCH, ONE_US, PG_EPOCH_US, unix_us
from api.journal import QUERIES
from api.journal import ids as journal_ids
from api.journal.formats.journald import (
    Entry,
)

Counts = tuple[int, int, int, int]  # accepted, duplicated, expired, future


Conn = psycopg.AsyncConnection[Any]

SHARED_KEYS = frozenset(
    (
        "_HOSTNAME", "_MACHINE_ID", "_BOOT_ID", "_TRANSPORT", "_UID", "_GID", "_COMM", "_EXE",
        "_CMDLINE", "_CAP_EFFECTIVE", "_SELINUX_CONTEXT", "_SYSTEMD_CGROUP", "_SYSTEMD_UNIT",
        "_SYSTEMD_USER_UNIT", "_SYSTEMD_SLICE", "_SYSTEMD_USER_SLICE", "_SYSTEMD_INVOCATION_ID",
        "_SYSTEMD_OWNER_UID", "_SYSTEMD_SESSION", "_AUDIT_SESSION", "_AUDIT_LOGINUID",
        "_RUNTIME_SCOPE", "_NAMESPACE", "_STREAM_ID", "PRIORITY", "SYSLOG_FACILITY",
        "SYSLOG_IDENTIFIER", "CONTAINER_NAME", "CONTAINER_ID", "CONTAINER_ID_FULL",
        "CONTAINER_TAG", "IMAGE_NAME", "__SEQNUM_ID",
    )
)  # fmt: skip
"""Fields stored once per distinct content (vigil.journal_sets), as in SQL."""

_decode_fields = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_encode = msgspec.json.Encoder().encode
_REALTIME = "__REALTIME_TIMESTAMP"
_CURSOR = "__CURSOR"
_MONOTONIC = "__MONOTONIC_TIMESTAMP"
_PID = "_PID"
# journald's cursor, as a JSON string: s= seqnum id, i= seqnum, b= boot id,
# m= monotonic time, t= realtime, x= xor hash (lowercase hex, no leading zeros); i, m and x
# stored typed (64 bits), as in SQL's vigil._journal_split
_HEX64 = rb"(0|[1-9a-f][0-9a-f]{0,15})"
_CURSOR_PARTS = re.compile(
    rb'"s=([0-9a-f]+);i=%s;b=([0-9a-f]+);m=%s;t=([0-9a-f]+);x=%s"' % (_HEX64, _HEX64, _HEX64)
)
# _PID as journald writes it, stored as an int4 (up to 2147483647)
_PID_TEXT = re.compile(rb'"(0|[1-9][0-9]{0,9})"')
_INT4_MAX = 2**31 - 1

# field count 12; at: int8 microseconds since 2000-01-01; set_id: int8
_ROW_START = struct.Struct("!hiqiq").pack
_INT8 = struct.Struct("!iq").pack
_INT4 = struct.Struct("!ii").pack
# a one-dimensional text[] without nulls: dimensions, has-nulls flag, element type (text),
# length and lower bound
_TEXT_ARRAY = struct.Struct("!iiiii").pack
_TEXT_OID = 25
# field length, then that header for one element, then its length
_ONE_TEXT = struct.Struct("!iiiiiii").pack
_KEY_0 = _INT4(4, 0)
_PRIORITY = [b"\x00\x00\x00\x02" + struct.pack("!h", p) for p in range(8)]
_SEP = b"\x00"


class SetRow(msgspec.Struct, array_like=True, gc=False):
    """One distinct set of shared fields of a batch (a row of vigil.journal_sets)."""

    id: int
    unit: str | None
    container: str | None
    realtime: bool
    cursor_s: str | None
    cursor_b: str | None
    fields: bytes


# The id of a set is a pure function of its content: remembered across batches.
_set_ids: dict[bytes, int] = {}
_SET_IDS_MAX = 100_000


def dedupe_key(sha256: bytes) -> int:
    """vigil.journal_lines.key of a line without a typed cursor: the first 32 bits of the
    line's SHA-256, signed."""
    return int.from_bytes(sha256[:4], "big", signed=True)


def _int64(hex_digits: bytes) -> int:
    """Up to 16 hex digits as a signed 64-bit value (SQL's vigil._journal_hex)."""
    value = int(hex_digits, 16)
    return value - 2**64 if value >= 2**63 else value


def _set_id(content: bytes) -> int:
    if (known := _set_ids.get(content)) is not None:
        return known
    if len(_set_ids) >= _SET_IDS_MAX:
        _set_ids.clear()
    new = _set_ids[content] = int.from_bytes(
        hashlib.sha256(content).digest()[:8], "big", signed=True
    )
    return new


Cursor = tuple[int, int, int]
"""A line's typed cursor: seqnum, boot start (µs, realtime minus monotonic), xor hash."""
Line = tuple[bytes, bytes | None, list[str] | None, bytes, Cursor | None, int | None]
"""A line as split: the content key of its set, its own fields (JSON, None when none),
its ids, its message in UTF-8, its typed cursor and its _PID."""


def split(entries: list[Entry]) -> tuple[list[Line], dict[bytes, SetRow]]:
    """Per entry the content key of its set, its own fields (JSON), the ids it carries
    (api/journal/ids.py) and its message in UTF-8; the batch's distinct sets by content
    key."""
    lines: list[Line] = []
    sets: dict[bytes, SetRow] = {}
    shared_keys = SHARED_KEYS
    decode = _decode_fields
    for e in entries:
        own: dict[str, msgspec.Raw] = {}
        shared: dict[str, msgspec.Raw] = {}
        for k, v in decode(e.fields).items():
            if k in shared_keys:
                shared[k] = v
            else:
                own[k] = v
        realtime = False
        rt = own.get(_REALTIME)
        if rt is not None and bytes(rt) == b'"%d"' % e.us:
            del own[_REALTIME]
            realtime = True
        cursor_s = cursor_b = b""
        typed: Cursor | None = None
        if (cursor := own.get(_CURSOR)) is not None and (
            m := _CURSOR_PARTS.fullmatch(bytes(cursor))
        ):
            s, i, b, mono, t, x = m.groups()
            monotonic = own.get(_MONOTONIC)
            if (
                t == b"%x" % e.us
                and monotonic is not None
                and (digits := bytes(monotonic)[1:-1]).isdigit()
                and digits == b"%d" % int(digits)
                and int(digits) < 2**63
                and mono == b"%x" % int(digits)
            ):
                # the monotonic time is in the cursor (m=, in hex) already
                typed = (_int64(i), e.us - int(digits), _int64(x))
                del own[_CURSOR]
                del own[_MONOTONIC]
                cursor_s, cursor_b = s, b
        pid: int | None = None
        if (
            (raw_pid := own.get(_PID)) is not None
            and (pm := _PID_TEXT.fullmatch(bytes(raw_pid)))
            and int(pm.group(1)) <= _INT4_MAX
        ):
            pid = int(pm.group(1))
            del own[_PID]
        shared_json = _encode(shared)
        content = b"".join(
            (
                b"-" if e.unit is None else b"+" + e.unit.encode(),
                _SEP,
                b"-" if e.container is None else b"+" + e.container.encode(),
                _SEP,
                b"1" if realtime else b"0",
                cursor_s,
                _SEP,
                cursor_b,
                _SEP,
                shared_json,
            )
        )
        if content not in sets:
            sets[content] = SetRow(
                _set_id(content),
                e.unit,
                e.container,
                realtime,
                cursor_s.decode() or None,
                cursor_b.decode() or None,
                shared_json,
            )
        message = e.message.encode()
        lines.append(
            (
                content,
                _encode(own) if own else None,
                journal_ids.line_ids(own, e.message, message),
                message,
                typed,
                pid,
            )
        )
    return lines, sets


def text_array(values: list[str] | None) -> bytes:
    """A text[] field (binary COPY) of values, NULL for None."""
    if values is None:
        return pgcopy.NULL
    if len(values) == 1:  # the common case, in one step
        item = values[0].encode()
        return _ONE_TEXT(24 + len(item), 1, 0, _TEXT_OID, 1, 1, len(item)) + item
    items = [v.encode() for v in values]
    body = b"".join(
        (
            _TEXT_ARRAY(1, 0, _TEXT_OID, len(items), 1),
            *(pgcopy.length(len(i)) + i for i in items),
        )
    )
    return pgcopy.length(len(body)) + body


def copy_rows(entries: list[Entry], set_ids: list[int], lines: list[Line]) -> bytes:
    """The lines (as split) as one binary COPY stream in the column order of the
    journal_copy query."""
    rows: list[bytes] = []
    add = rows.extend
    texts: dict[str | None, bytes] = {None: pgcopy.NULL}  # hosts: few distinct
    null = pgcopy.NULL
    int8, int4 = _INT8, _INT4
    for (us, sha256, host, _unit, _container, priority, _m, _f), set_id, line in zip(
        entries, set_ids, lines, strict=True
    ):
        _content, own, ids, m, cursor, pid = line
        if (h := texts.get(host)) is None:
            h = texts[host] = pgcopy.text(host)
        if cursor is None:
            add((_ROW_START(12, 8, us - PG_EPOCH_US, 8, set_id), null, null, null,
                 int4(4, dedupe_key(sha256))))  # fmt: skip
        else:
            add((_ROW_START(12, 8, us - PG_EPOCH_US, 8, set_id), int8(8, cursor[0]),
                 int8(8, cursor[1]), int8(8, cursor[2]), _KEY_0))  # fmt: skip
        add(
            (
                null if pid is None else int4(4, pid),
                null if priority is None else _PRIORITY[priority],
                h,
                pgcopy.length(len(m)),
                m,
                null if own is None else pgcopy.jsonb(own),
                null if ids is None else text_array(ids),
            )
        )
    return pgcopy.stream(rows)


def sets_params(sets: list[SetRow]) -> tuple[object, ...]:
    """The parameters of the journal_sets_put query."""
    return (
        [s.id for s in sets],
        [s.unit for s in sets],
        [s.container for s in sets],
        [s.realtime for s in sets],
        [s.cursor_s for s in sets],
        [s.cursor_b for s in sets],
        [s.fields.decode() for s in sets],
    )


class Inserter:
    """Stores parsed entries; the rules are SQL (vigil.journal_ingest_staged).

    First the batch's sets of shared fields (vigil.journal_sets_put, which also says when
    a hash collided and which id the set got instead). Fast path: when every entry lies
    within vigil.journal_bounds(), COPY straight into vigil.journal_lines in one
    transaction; a duplicate (unique violation) or a day without a partition (check
    violation) rolls it back and the slow path runs: COPY into the session's staging
    table, then vigil.journal_ingest_staged() (insert ... on conflict do nothing, resolves
    key collisions by content, creates partitions, counts). A server without COPY FROM
    STDIN (the PGlite test server) gets the rows as arrays (vigil.journal_ingest).
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
                rows = await self._rows(entries)
                low, high = unix_us(oldest), unix_us(newest)
                if all(low <= e.us <= high for e in entries) and await self._direct(
                    rows, hour_ranges(entries)
                ):
                    return (len(entries), 0, 0, 0)
                return await self._staged(rows)
            except psycopg.errors.FeatureNotSupported:
                self.copy_supported = False
        return await self._arrays(entries)

    async def _rows(self, entries: list[Entry]) -> bytes:
        lines, sets = split(entries)
        distinct = list(sets.values())
        moved = await (
            await self.conn.execute(QUERIES["journal_sets_put"], sets_params(distinct))
        ).fetchall()
        for idx, stored in moved:  # a 64-bit hash collision: stored under another id
            distinct[idx - 1].id = stored
        return copy_rows(entries, [sets[line[0]].id for line in lines], lines)

    async def _direct(self, rows: bytes, ranges: tuple[list[datetime], list[datetime]]) -> bool:
        try:
            # One transaction: the batch's time ranges marked for the log metrics (which also
            # makes a metric being created wait for this batch, see vigil._log_metrics_redo),
            # then the COPY. A failed COPY rolls both back; the staged path marks its own.
            async with self.conn.transaction():
                await self.conn.execute(QUERIES["journal_touch"], ranges)
                async with self.conn.cursor().copy(QUERIES["journal_copy"]) as copy:
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


def hour_ranges(entries: list[Entry]) -> tuple[list[datetime], list[datetime]]:
    """The earliest and latest time of the entries per UTC hour (the parameters of
    vigil.log_metrics_touch): a batch of live lines is one range, a backfill a few."""
    hours: dict[int, tuple[int, int]] = {}
    for e in entries:
        hour = e.us // 3_600_000_000
        lo, hi = hours.get(hour, (e.us, e.us))
        hours[hour] = (min(lo, e.us), max(hi, e.us))
    lows = [EPOCH + lo * ONE_US for lo, _ in hours.values()]
    highs = [EPOCH + hi * ONE_US for _, hi in hours.values()]
    return lows, highs


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
