"""PostgreSQL binary COPY, the one encoder every bulk writer uses.

The format (PostgreSQL docs, COPY, "Binary Format"): a header, then per row a 16-bit
field count and each field as a 32-bit length (-1: null) followed by its bytes, then a
trailer. It spares PostgreSQL parsing text and the API quoting it. Callers build rows with
the field helpers here (or, on the series fast path, compiled code producing the same
bytes) and wrap them with `stream()`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags 0, header extension length 0
TRAILER = b"\xff\xff"  # field count -1
NULL = b"\xff\xff\xff\xff"  # field length -1
JSONB_VERSION = b"\x01"  # jsonb's binary form: a version byte, then the JSON text

length = struct.Struct("!i").pack
"""The 32-bit length that precedes a field's bytes."""


def text(value: str | None) -> bytes:
    """A text (or varchar) field: length and UTF-8 bytes, or NULL."""
    if value is None:
        return NULL
    data = value.encode()
    return length(len(data)) + data


def jsonb(data: bytes) -> bytes:
    """A jsonb field from JSON text already encoded as UTF-8."""
    return length(len(data) + 1) + JSONB_VERSION + data


def stream(rows: Iterable[bytes | bytearray]) -> bytes:
    """A complete COPY stream: header, the encoded rows, trailer."""
    return b"".join((HEADER, *rows, TRAILER))
