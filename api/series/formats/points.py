"""Points as every series format yields them: validation, the Batch of accepted points and
rejections, and the compiled decoder (api/series/_fastpoints.c), whose COPY rows have the
layout defined here. Pure: no I/O.
"""

from __future__ import annotations

import json
import math
import struct
import sys
import time
from dataclasses import dataclass, field

from api.core.timestamps import PG_EPOCH_US

try:  # built by `pip install` where a C compiler is (see pyproject.toml)
    from api.series import _fastpoints as fastpoints
except ImportError:  # the Python path only
    fastpoints = None  # type: ignore[assignment]

MAX_NAME = 255


MAX_LABELS = 32


MAX_LABEL_TEXT = 255


MAX_FUTURE_US = 10 * 60 * 1_000_000


MIN_AT_US = 0  # 1970-01-01: older timestamps are a sender's unit mistake


MAX_ERRORS_REPORTED = 20


ROW = struct.Struct(">hiqiqid")


# One row (series_id int8, at timestamptz, value float8): 3 fields, each an int32 length 8
# and 8 bytes of big-endian data at these offsets within the row.
ROW_TEMPLATE = ROW.pack(3, 8, 0, 8, 0, 8, 0.0)


ROW_SIZE = len(ROW_TEMPLATE)


FIELD_OFFSETS = (6, 18, 30)


SWAP = sys.byteorder == "little"


class PointError(ValueError):
    """A point the sender must fix; the message says how."""


def now_us() -> int:
    return time.time_ns() // 1000


NUL_REFUSED = "names and labels must not contain NUL (\\u0000)"
# The compiled decoder does not look for NUL; bodies holding one take the Python path,
# which refuses just the points that have it.
NUL_MARKS = (b"\x00", b"\\u0000")


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
        if "\x00" in key or "\x00" in value:
            raise PointError(NUL_REFUSED)
    return json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_name(name: str) -> str:
    if not name or len(name) > MAX_NAME:
        raise PointError(f"name must be 1 to {MAX_NAME} characters")
    if "\x00" in name:
        raise PointError(NUL_REFUSED)
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
    # Or, from the compiled fast path (api.series._fastpoints): COPY rows built in C with an index
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
        return len(self.values) + (len(self.rows) // ROW_SIZE if self.rows else 0)

    def summary(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "errors": [{"index": i, "message": m} for i, m in self.errors],
        }


def pg_bounds(now: int) -> tuple[int, int, int]:
    """now and the accepted range of timestamps (check_at), since PostgreSQL's epoch."""
    now_pg = now - PG_EPOCH_US
    return now_pg, MIN_AT_US - PG_EPOCH_US, now_pg + MAX_FUTURE_US


def decode_compiled(
    body: bytes, ndjson: bool, now: int
) -> tuple[list[tuple[str, bytes]], bytearray] | None:
    """The compiled decoder (api/series/_fastpoints.c) on a JSON array or NDJSON body: the
    distinct (name, label text as sent) keys and the COPY rows of its points, or None when
    the body is not all valid points in the form it takes, or the module was not built."""
    if fastpoints is None or any(mark in body for mark in NUL_MARKS):
        return None
    return fastpoints.decode(body, ndjson, *pg_bounds(now))


def decode_lines_compiled(
    body: bytes, now: int, multiplier: int, divisor: int
) -> tuple[list[tuple[str, bytes]], bytearray] | None:
    """decode_compiled for InfluxDB line protocol (timestamps * multiplier // divisor are
    Unix microseconds): the distinct (series name, tag text) keys and the COPY rows."""
    if fastpoints is None or any(mark in body for mark in NUL_MARKS):
        return None
    now_pg, low, high = pg_bounds(now)
    return fastpoints.decode_lines(body, now_pg, multiplier, divisor, low, high)
