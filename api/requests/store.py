"""Request record storage: binary COPY into the session's staging table, then SQL's rules
(vigil.requests_ingest_staged: dedupe, partitions, retention); a JSON array where the
server has no COPY. Lines that are not request records go to the journal with a reason,
through the journal's own insert path."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import psycopg.errors

from api.core import pgcopy
from api.core.timestamps import PG_EPOCH_US
from api.journal.formats.journald import entry_from_fields
from api.journal.store import Inserter
from api.requests import QUERIES
from vigil.accesslog import Record

Conn = psycopg.AsyncConnection[Any]
Counts = tuple[int, int, int, int]  # accepted, duplicated, expired, future

COLUMNS = (
    "at", "key", "host", "vhost", "ip", "method", "path", "query", "protocol", "status",
    "bytes", "referrer", "user_agent", "remote_user", "request", "request_time",
    "upstream_time", "request_id", "trace_id",
)  # fmt: skip
_INT8 = struct.Struct("!iq").pack
_INT2 = struct.Struct("!ih").pack
_FLOAT8 = struct.Struct("!id").pack
_FIELDS = struct.Struct("!h").pack(len(COLUMNS))


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a line came from: the logging host, and the sender's file id and offset
    (when given: identical lines at different places are then distinct requests)."""

    host: str | None = None
    file_id: str | None = None
    offset: int | None = None


def dedupe_key(raw: bytes, origin: Origin) -> int:
    """vigil.requests.key: 64 bits of the SHA-256 of the origin and the raw line."""
    h = hashlib.sha256()
    for part in (origin.host, origin.file_id, origin.offset):
        h.update(b"-" if part is None else b"+" + str(part).encode())
        h.update(b"\x00")
    h.update(raw)
    return int.from_bytes(h.digest()[:8], "big", signed=True)


def _inet(text: str) -> bytes:
    """inet's binary form: family (2: IPv4, 3: IPv6), bits, is_cidr, length, address."""
    addr = ipaddress.ip_address(text)
    packed = addr.packed
    family = 2 if addr.version == 4 else 3
    body = bytes((family, len(packed) * 8, 0, len(packed))) + packed
    return pgcopy.length(len(body)) + body


def _float(value: float | None) -> bytes:
    return pgcopy.NULL if value is None else _FLOAT8(8, value)


def copy_row(r: Record, key: int, host: str | None) -> bytes:
    return b"".join(
        (
            _FIELDS,
            _INT8(8, r.us - PG_EPOCH_US),
            _INT8(8, key),
            pgcopy.text(host),
            pgcopy.text(r.vhost),
            _inet(r.ip),
            pgcopy.text(r.method),
            pgcopy.text(r.path),
            pgcopy.text(r.query),
            pgcopy.text(r.protocol),
            _INT2(2, r.status),
            pgcopy.NULL if r.bytes is None else _INT8(8, r.bytes),
            pgcopy.text(r.referrer),
            pgcopy.text(r.user_agent),
            pgcopy.text(r.user),
            pgcopy.text(r.request),
            _float(r.request_time),
            _float(r.upstream_time),
            pgcopy.text(r.request_id),
            pgcopy.text(r.trace_id),
        )
    )


def json_row(r: Record, key: int, host: str | None) -> dict[str, Any]:
    return {
        "at": r.at.isoformat(),
        "key": key,
        "host": host,
        "vhost": r.vhost,
        "ip": r.ip,
        "method": r.method,
        "path": r.path,
        "query": r.query,
        "protocol": r.protocol,
        "status": r.status,
        "bytes": r.bytes,
        "referrer": r.referrer,
        "user_agent": r.user_agent,
        "remote_user": r.user,
        "request": r.request,
        "request_time": r.request_time,
        "upstream_time": r.upstream_time,
        "request_id": r.request_id,
        "trace_id": r.trace_id,
    }


class Store:
    """Stores parsed records (rules in SQL) and keeps unreadable lines as journal lines."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.copy_supported = True

    async def bounds(self) -> tuple[datetime, datetime, str]:
        row = await (await self.conn.execute(QUERIES["requests_bounds"])).fetchone()
        assert row is not None
        return row[0], row[1], row[2]

    async def insert(self, records: list[tuple[Record, int, str | None]]) -> Counts:
        """Records with their dedupe key and host."""
        if not records:
            return (0, 0, 0, 0)
        if self.copy_supported:
            try:
                return await self._copy(records)
            except psycopg.errors.FeatureNotSupported:
                self.copy_supported = False
        row = await (
            await self.conn.execute(
                QUERIES["requests_ingest_json"],
                (json.dumps([json_row(*r) for r in records]),),
            )
        ).fetchone()
        assert row is not None
        return row[0], row[1], row[2], row[3]

    async def _copy(self, records: list[tuple[Record, int, str | None]]) -> Counts:
        data = pgcopy.stream(copy_row(*r) for r in records)
        async with self.conn.transaction():
            await self.conn.execute(QUERIES["requests_stage"])
            async with self.conn.cursor().copy(QUERIES["requests_stage_copy"]) as copy:
                await copy.write(data)
            row = await (await self.conn.execute(QUERIES["requests_ingest_staged"])).fetchone()
        assert row is not None
        return row[0], row[1], row[2], row[3]

    async def keep_unparsed(self, lines: list[tuple[bytes, str, Origin, int]]) -> int:
        """Lines that are not request records (raw, reason, origin, time in µs) as journal
        lines with VIGIL_REASON; returns how many the journal stored."""
        if not lines:
            return 0
        entries = []
        for raw, reason, origin, us in lines:
            fields: dict[str, Any] = {
                "__REALTIME_TIMESTAMP": str(us),
                "MESSAGE": raw.decode("utf-8", "backslashreplace").replace("\x00", "\\x00"),
                "SYSLOG_IDENTIFIER": "vigil-requests",
                "VIGIL_REASON": reason,
            }
            if origin.host is not None:
                fields["_HOSTNAME"] = origin.host
            if origin.file_id is not None:
                fields["VIGIL_FILE_ID"] = origin.file_id
            if origin.offset is not None:
                fields["VIGIL_OFFSET"] = str(origin.offset)
            sha = hashlib.sha256(dedupe_key(raw, origin).to_bytes(8, "big", signed=True) + raw)
            entries.append(entry_from_fields(fields, sha.digest()))
        inserter = Inserter(self.conn)
        oldest, newest, _ = await inserter.bounds()
        accepted, _dup, _exp, _fut = await inserter.insert(entries, oldest, newest)
        return accepted
