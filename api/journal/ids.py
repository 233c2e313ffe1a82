"""The request and trace ids a journal line carries, extracted once while the line is parsed
and stored with it (vigil.journal_lines.ids), so a lookup by id is an index probe.

The same rules as SQL's vigil._journal_ids (sql/57_trace.sql), which stays the reference
(vigil.journal_ingest and vigil.trace_journal_backfill use it; tests/trace/test_ids.py
checks both agree): the string fields TRACE_ID, REQUEST_ID, trace_id and request_id (1 to
200 characters), the trace id of a W3C traceparent field, and every 32-hex-digit word in
the first 8 KiB of the message; a 32-hex-digit id in lowercase.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

ID_FIELDS = ("TRACE_ID", "REQUEST_ID", "trace_id", "request_id")
TRACEPARENT_FIELDS = ("traceparent", "TRACEPARENT")
MESSAGE_CHARS = 8192
MAX_ID = 200

_HEX_DIGITS = "0123456789abcdefABCDEF"
_TRACEPARENT = re.compile(r"\s*[0-9a-fA-F]{2}-([0-9a-fA-F]{32})-[0-9a-fA-F]{16}-")
# a 32-hex-digit word: not preceded nor followed by a letter or digit (ASCII, as in SQL)
_IN_MESSAGE = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32}(?![0-9A-Za-z])")
_decode = msgspec.json.decode
_ID_KEYS = frozenset(ID_FIELDS + TRACEPARENT_FIELDS)
# The fast test for "may hold a 32-hex-digit word": hex digits become 1, every other byte
# (also each byte of a multi-byte character) 0; a run of 32 ones is needed. Most messages
# have none, and this is several times faster than the regular expression.
_HEX_BYTES = bytes(1 if chr(c) in _HEX_DIGITS else 0 for c in range(256))
_RUN = b"\x01" * 32


def norm(value: str) -> str:
    """An id as indexed (vigil._trace_norm): a 32-hex-digit id in lowercase."""
    return value.lower() if len(value) == 32 and not value.strip(_HEX_DIGITS) else value


def _string(raw: msgspec.Raw) -> str | None:
    try:
        value = _decode(raw)
    except msgspec.DecodeError:  # not expected from the parser; then not an id
        return None
    return value if isinstance(value, str) else None  # an array (repeated field) is not


def line_ids(
    fields: Mapping[str, msgspec.Raw], message: str, encoded: bytes | None = None
) -> list[str] | None:
    """The distinct ids of a line (sorted), None when it has none. fields: the line's
    fields as raw JSON values; encoded: the message in UTF-8, when at hand."""
    found: list[str] = []
    if not fields.keys().isdisjoint(_ID_KEYS):
        for key in ID_FIELDS:
            if key in fields and (value := _string(fields[key])) and len(value) <= MAX_ID:
                found.append(norm(value))
        for key in TRACEPARENT_FIELDS:
            if (
                key in fields
                and (value := _string(fields[key]))
                and (m := _TRACEPARENT.match(value))
            ):
                found.append(m.group(1).lower())
    if encoded is None:
        encoded = message[:MESSAGE_CHARS].encode("utf-8", "surrogatepass")
    # 8 KiB characters are at most 32 KiB of UTF-8; find(), not `in`: several times faster
    # for this needle (CPython 3.11)
    if len(encoded) >= 32 and encoded[: 4 * MESSAGE_CHARS].translate(_HEX_BYTES).find(_RUN) >= 0:
        for m in _IN_MESSAGE.finditer(message, 0, MESSAGE_CHARS):
            found.append(m.group().lower())
    if len(found) > 1:
        return sorted(set(found))
    return found or None
