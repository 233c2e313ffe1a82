"""Batch writes of numeric points: series ids from vigil.series_ids, points by binary COPY.

A batch is built by a parser (JSON, NDJSON, Influx line protocol): every accepted point is
(series key index, microseconds since the Unix epoch, value); every rejected one an error
with its position. Valid points are stored even when others are rejected.
"""

from __future__ import annotations

import json
import math
import struct
import sys
import time
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime

from psycopg import AsyncConnection

try:  # built by `pip install` where a C compiler is (see pyproject.toml)
    from api import _fastpoints as fastpoints
except ImportError:  # the Python path only
    fastpoints = None  # type: ignore[assignment]

MAX_NAME = 255
MAX_LABELS = 32
MAX_LABEL_TEXT = 255
MAX_FUTURE_US = 10 * 60 * 1_000_000
MIN_AT_US = 0  # 1970-01-01: older timestamps are a sender's unit mistake
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds
MAX_ERRORS_REPORTED = 20

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_ROW = struct.Struct(">hiqiqid")
# One row (series_id int8, at timestamptz, value float8): 3 fields, each an int32 length 8
# and 8 bytes of big-endian data at these offsets within the row.
_ROW_TEMPLATE = _ROW.pack(3, 8, 0, 8, 0, 8, 0.0)
_ROW_SIZE = len(_ROW_TEMPLATE)
_FIELD_OFFSETS = (6, 18, 30)
_SWAP = sys.byteorder == "little"

COPY_SQL = "copy vigil.points (series_id, at, value) from stdin (format binary)"
SERIES_IDS_SQL = "select ord, id from vigil.series_ids(%s::text[], %s::jsonb[])"


class PointError(ValueError):
    """A point the sender must fix; the message says how."""


def now_us() -> int:
    return time.time_ns() // 1000


def labels_key(labels: dict[str, str] | None) -> str:
    """Canonical JSON of a label set (the cache and series identity key)."""
    if not labels:
        return "{}"
    if len(labels) > MAX_LABELS:
        raise PointError(f"at most {MAX_LABELS} labels per point")
    for key, value in labels.items():
        if not isinstance(value, str) or not key or len(key) > MAX_LABEL_TEXT:
            raise PointError("labels must be an object of non-empty string keys and string values")
        if len(value) > MAX_LABEL_TEXT:
            raise PointError(f"label values must be at most {MAX_LABEL_TEXT} characters")
    return json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_name(name: str) -> str:
    if not name or len(name) > MAX_NAME:
        raise PointError(f"name must be 1 to {MAX_NAME} characters")
    return name


def check_value(value: float) -> float:
    if not math.isfinite(value):
        raise PointError("value must be a finite number")
    return float(value)


def check_at(at_us: int, now: int) -> int:
    if at_us < MIN_AT_US:
        raise PointError("timestamp is before 1970; check the precision/unit")
    if at_us > now + MAX_FUTURE_US:
        raise PointError("timestamp is more than 10 minutes in the future; check the precision")
    return at_us


def datetime_us(at: datetime) -> int:
    delta = at - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass
class Batch:
    """Accepted points and rejections of one request."""

    keys: dict[tuple[str, str], int] = field(default_factory=dict)
    series: list[int] = field(default_factory=list)
    at_us: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    rejected: int = 0
    # at_us are microseconds since this Unix time: 0 (the Unix epoch) but for the JSON fast
    # path, which counts from PostgreSQL's epoch (PG_EPOCH_US) and so saves the subtraction
    # per point when packing COPY data.
    at_base_us: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    # Or, from the compiled fast path (api._fastpoints): COPY rows built in C with an index
    # into raw_keys in each row's series_id field; raw_keys[i] is the index in `keys` of
    # the i-th distinct (name, label text as sent). write_batch swaps in the series ids.
    rows: bytearray | None = None
    raw_keys: list[int] = field(default_factory=list)

    def add(self, name: str, labels: str, at_us: int, value: float) -> None:
        key = (name, labels)
        index = self.keys.get(key)
        if index is None:
            index = self.keys[key] = len(self.keys)
        self.series.append(index)
        self.at_us.append(at_us)
        self.values.append(value)

    def reject(self, position: int, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_ERRORS_REPORTED:
            self.errors.append((position, message))

    def unix_at_us(self) -> list[int]:
        """at_us as Unix microseconds."""
        base = self.at_base_us
        return [at + base for at in self.at_us] if base else list(self.at_us)

    @property
    def accepted(self) -> int:
        return len(self.values) + (len(self.rows) // _ROW_SIZE if self.rows else 0)

    def summary(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "errors": [{"index": i, "message": m} for i, m in self.errors],
        }


def copy_payload(
    series_ids: list[int], at_us: list[int], values: list[float], at_base_us: int = 0
) -> bytes:
    """PostgreSQL binary COPY data for (series_id int8, at timestamptz, value float8); at_us
    are microseconds since the Unix time at_base_us.

    Column-wise: each column becomes a C array of big-endian 8-byte values, and each of
    its 8 byte positions is copied into every row of a template with one strided slice
    assignment (24 C loops in all instead of one struct.pack call per row).
    """
    n = len(values)
    if len(series_ids) != n or len(at_us) != n:
        raise ValueError("copy_payload: columns of different lengths")
    shift = PG_EPOCH_US - at_base_us
    columns: list[array[int] | array[float]] = [
        array("q", series_ids),
        array("q", [at - shift for at in at_us] if shift else at_us),
        array("d", values),
    ]
    rows = bytearray(_ROW_TEMPLATE * n)
    for offset, column in zip(_FIELD_OFFSETS, columns, strict=True):
        if _SWAP:
            column.byteswap()
        data = column.tobytes()
        for byte in range(8):
            rows[offset + byte :: _ROW_SIZE] = data[byte::8]
    return _HEADER + rows + _TRAILER


async def resolve_series(conn: AsyncConnection[tuple[object, ...]], batch: Batch) -> list[int]:
    """Series id per key index, creating new series."""
    keys = list(batch.keys)
    names = [name for name, _ in keys]
    labels = [lab for _, lab in keys]
    cur = await conn.execute(SERIES_IDS_SQL, (names, labels))
    ids = [0] * len(keys)
    for ord_, id_ in await cur.fetchall():
        ids[int(str(ord_)) - 1] = int(str(id_))
    return ids


def _pg_bounds(now: int) -> tuple[int, int, int]:
    """now and the accepted range of timestamps (check_at), since PostgreSQL's epoch."""
    now_pg = now - PG_EPOCH_US
    return now_pg, MIN_AT_US - PG_EPOCH_US, now_pg + MAX_FUTURE_US


def decode_compiled(
    body: bytes, ndjson: bool, now: int
) -> tuple[list[tuple[str, bytes]], bytearray] | None:
    """The compiled decoder (api/_fastpoints.c) on a JSON array or NDJSON body: the
    distinct (name, label text as sent) keys and the COPY rows of its points, or None when
    the body is not all valid points in the form it takes, or the module was not built."""
    if fastpoints is None:
        return None
    return fastpoints.decode(body, ndjson, *_pg_bounds(now))


def decode_lines_compiled(
    body: bytes, now: int, multiplier: int, divisor: int
) -> tuple[list[tuple[str, bytes]], bytearray] | None:
    """decode_compiled for InfluxDB line protocol (timestamps * multiplier // divisor are
    Unix microseconds): the distinct (series name, tag text) keys and the COPY rows."""
    if fastpoints is None:
        return None
    now_pg, low, high = _pg_bounds(now)
    return fastpoints.decode_lines(body, now_pg, multiplier, divisor, low, high)


def copy_parts(batch: Batch, ids: list[int]) -> tuple[bytes | bytearray, ...]:
    """The binary COPY data of a batch, given the series id of each of its keys."""
    if batch.rows is not None:
        fastpoints.set_series_ids(batch.rows, [ids[i] for i in batch.raw_keys])
        return (_HEADER, batch.rows, _TRAILER)
    series_ids = [ids[i] for i in batch.series]
    return (copy_payload(series_ids, batch.at_us, batch.values, batch.at_base_us),)


async def write_batch(conn: AsyncConnection[tuple[object, ...]], batch: Batch) -> None:
    """Stores the accepted points of a batch in one transaction (series + COPY)."""
    if not batch.accepted:
        return
    async with conn.transaction():
        ids = await resolve_series(conn, batch)
        async with conn.cursor().copy(COPY_SQL) as copy:
            for part in copy_parts(batch, ids):
                await copy.write(part)
