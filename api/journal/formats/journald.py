"""Journal wire formats -> rows for vigil.journal_ingest (pure functions, no I/O).

Two formats:
- `journalctl -o json` lines (one JSON object per line), alone as NDJSON or wrapped as
  metrics-sender's `{"logs": "<lines>"}`. Every value is a string, except binary-unsafe
  values (arrays of byte numbers) and repeated fields (arrays).
- The Journal Export Format (systemd-journal-upload): entries separated by a blank line;
  a field is `NAME=value\\n`, or `NAME\\n` + 64-bit little-endian length + bytes + `\\n`.

Text decisions (documented in docs/journal.md): a byte-array value is decoded as UTF-8
with invalid bytes shown as `\\xNN` escapes; the original array stays in `fields`. NUL
cannot be stored in PostgreSQL text/jsonb, so it is shown as the four characters `\\x00`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec

from api.core.decoding import MALFORMED

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# datetime's range, in microseconds since the epoch
MIN_US = -62_135_596_800_000_000
MAX_US = 253_402_300_799_999_999
MAX_REASONS = 20
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class Entry(NamedTuple):
    """One parsed journal entry, ready for vigil.journal_ingest (column order)."""

    us: int  # __REALTIME_TIMESTAMP: microseconds since the Unix epoch (UTC)
    sha256: bytes
    host: str | None
    unit: str | None
    container: str | None
    priority: int | None
    message: str
    fields: bytes  # JSON text (UTF-8)

    @property
    def at(self) -> datetime:
        return EPOCH + timedelta(microseconds=self.us)


@dataclass
class Batch:
    """Parsed entries of one request and what was skipped, with reasons."""

    entries: list[Entry] = field(default_factory=list)
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    duplicated: int = 0
    size: int = 0  # bytes of message and fields held, to bound a streamed upload's memory
    _seen: set[bytes] = field(default_factory=set)

    def reject(self, number: int, reason: str) -> None:
        self.rejected += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if len(self.samples) < MAX_REASONS:
            self.samples.append({"line": number, "reason": reason})

    def add(self, entry: Entry) -> None:
        """Keeps the first of identical lines: a repeat inside a batch is a duplicate."""
        if entry.sha256 in self._seen:
            self.duplicated += 1
            return
        self._seen.add(entry.sha256)
        self.entries.append(entry)
        self.size += len(entry.fields) + len(entry.message)


class EntryError(ValueError):
    """A line or entry that cannot be stored; the message is the reason."""


def _nul_free(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, list):
        return [_nul_free(v) for v in value]
    if isinstance(value, dict):
        return {_nul_free(k): _nul_free(v) for k, v in value.items()}
    return value


def text_of(value: Any) -> str | None:
    """A field value as text: strings as is, byte arrays decoded, repeats joined by newline."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if value and all(type(v) is int and 0 <= v <= 255 for v in value):
            return bytes(value).decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
        parts = [text_of(v) for v in value]
        return "\n".join(p for p in parts if p is not None)
    return str(value)


def _first(value: Any) -> str | None:
    if type(value) is str:
        return value or None
    if isinstance(value, list) and value and not isinstance(value[0], int):
        value = value[0]
    text = text_of(value)
    return text if text else None


def _timestamp(value: Any) -> int:
    if type(value) is str and value.isdigit() and value.isascii():
        micros = int(value)
    else:
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, str) and value.isascii() and value.strip().lstrip("-").isdigit():
            micros = int(value)
        elif type(value) is int:
            micros = value
        else:
            raise EntryError("no integer __REALTIME_TIMESTAMP")
    if not MIN_US <= micros <= MAX_US:
        raise EntryError("__REALTIME_TIMESTAMP out of range")
    return micros


def entry_from_fields(obj: dict[str, Any], sha256: bytes) -> Entry:
    """An Entry from a journald field dict (JSON-decoded or built from the export format).
    A plain-string MESSAGE is moved out of obj into the message column."""
    at = _timestamp(obj.get("__REALTIME_TIMESTAMP"))
    raw_message = obj.get("MESSAGE")
    if type(raw_message) is str:
        message = raw_message
        del obj["MESSAGE"]
    else:
        message = text_of(raw_message) or ""
    priority: int | None = None
    prio = obj.get("PRIORITY")
    if type(prio) is not str:
        prio = _first(prio)
    if prio is not None and len(prio) == 1 and "0" <= prio <= "7":
        priority = int(prio)
    return Entry(
        at,
        sha256,
        _first(obj.get("_HOSTNAME")),
        _first(obj.get("_SYSTEMD_UNIT")),
        _first(obj.get("CONTAINER_NAME")),
        priority,
        message,
        _encode(obj),
    )


class _Known(msgspec.Struct, gc=False):
    """The promoted fields of a journalctl JSON line (the fast path's typed decode)."""

    realtime: Any = msgspec.field(default=None, name="__REALTIME_TIMESTAMP")
    host: Any = msgspec.field(default=None, name="_HOSTNAME")
    unit: Any = msgspec.field(default=None, name="_SYSTEMD_UNIT")
    container: Any = msgspec.field(default=None, name="CONTAINER_NAME")
    priority: Any = msgspec.field(default=None, name="PRIORITY")
    message: Any = msgspec.field(default=None, name="MESSAGE")


_decode_known = msgspec.json.Decoder(_Known).decode
_KEY = b'"MESSAGE"'
# After the key "MESSAGE": a string value and the comma after it (or, when it is the last
# member, nothing: the closing brace stays).
_MESSAGE_VALUE = re.compile(rb'\s*:\s*"[^"\\]*(?:\\.[^"\\]*)*"\s*(,|(?=}))', re.S)
# A \u escape of one of the letters A-Z: the key MESSAGE might be spelled with escapes.
_ESCAPED_LETTER = re.compile(rb"\\u00[45]")
_BLANKS = b" \t\r\n"


def _without_message(raw: bytes, escapes: bool = True) -> bytes | None:
    """raw (valid JSON whose top-level MESSAGE is a string) minus that member, or None when
    unsure.

    In valid JSON a quote inside a string is escaped, so `"MESSAGE"` preceded by `{` or `,`
    and followed by `:` is a key. When `"MESSAGE"` occurs once and the key cannot be
    spelled with escapes, that key is the top-level one. escapes=False: raw has no backslash.
    """
    key = raw.find(_KEY)
    if key < 1 or raw.find(_KEY, key + len(_KEY)) >= 0:
        return None
    if escapes and _ESCAPED_LETTER.search(raw):
        return None
    before = key - 1
    while before > 0 and raw[before] in _BLANKS:
        before -= 1
    after = key + len(_KEY)
    end = -1
    if raw[after : after + 2] == b':"':  # the usual `"MESSAGE":"...",`: no regex
        end = raw.find(b'"', after + 2)
        while end > 0 and raw[end - 1] == 0x5C:  # a backslash: is this quote escaped?
            slashes = end - 1
            while raw[slashes - 1] == 0x5C:
                slashes -= 1
            if (end - slashes) % 2 == 0:
                break
            end = raw.find(b'"', end + 1)
    if end > 0 and (follows := raw[end + 1 : end + 2]) in (b",", b"}"):
        comma = follows == b","
        end += 2 if comma else 1  # past the comma, or at the brace
    else:
        m = _MESSAGE_VALUE.match(raw, after)
        if m is None:
            return None
        end, comma = m.end(), bool(m.group(1))
    # raw[end - 1] is the comma after the value, if any
    if raw[before] == 0x7B:  # "{": keep it
        return raw[: before + 1] + raw[end:]
    if raw[before] == 0x2C:  # ",": drop it and keep the one after the value
        return raw[:before] + raw[end - 1 if comma else end :]
    return None


_new_entry = tuple.__new__
_sha256 = hashlib.sha256
_PRIORITIES = {str(p): p for p in range(8)}


def _promoted(value: Any) -> str | None:
    return None if value is None or value == "" else _first(value)


# A JSON number with a 5-digit exponent: the only numbers that may exceed what jsonb
# (PostgreSQL's numeric) holds: 131072 digits before the decimal point, 16383 after.
_LONG_EXPONENT = re.compile(rb"[0-9.][eE][+-]?[0-9]{5,}")
MAX_EXPONENT = 131_071
MIN_EXPONENT = -16_383


def _check_number(text: str) -> float:
    exponent = int(text.lower().partition("e")[2] or 0)
    if not MIN_EXPONENT <= exponent <= MAX_EXPONENT:
        raise EntryError(f"number {text[:40]} is out of range (exponent {exponent})")
    return 0.0


def _check_numbers(raw: bytes) -> None:
    """EntryError when a number of the line is beyond what PostgreSQL's jsonb holds (its
    text would make the whole batch fail there)."""
    with contextlib.suppress(json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        json.loads(raw, parse_float=_check_number)  # not JSON: the parser says so


def parse_json_line(raw: bytes) -> Entry:
    """One `journalctl -o json` line -> Entry; EntryError says why it is skipped.

    Fast path: a typed decode of the promoted fields, and the raw line (minus a string
    MESSAGE) as the fields JSON. Anything unusual takes the general path.
    """
    if _LONG_EXPONENT.search(raw) is not None:
        _check_numbers(raw)
    escapes = b"\\" in raw  # (one byte: a fast memchr)
    if not escapes or b"\\u0000" not in raw:
        try:
            known = _decode_known(raw)
        except MALFORMED:
            known = None
        if (
            known is not None
            and type(message := known.message) is str
            and type(realtime := known.realtime) is str
            and realtime.isdigit()
            and realtime.isascii()
            and (fields := _without_message(raw, escapes)) is not None
        ):
            us = int(realtime)
            if not MIN_US <= us <= MAX_US:
                raise EntryError("__REALTIME_TIMESTAMP out of range")
            host, unit, container, prio = known.host, known.unit, known.container, known.priority
            if prio is not None and type(prio) is not str:
                prio = _first(prio)
            # tuple.__new__: Entry(...) without its Python-level __new__ (the hot loop)
            return _new_entry(
                Entry,
                (
                    us,
                    _sha256(raw).digest(),
                    host if type(host) is str and host else _promoted(host),
                    unit if type(unit) is str and unit else _promoted(unit),
                    container if type(container) is str and container else _promoted(container),
                    _PRIORITIES.get(prio) if prio is not None else None,
                    message,
                    fields,
                ),
            )
    try:
        obj = _decode(raw)
    except MALFORMED:
        raise EntryError("not valid JSON") from None
    if not isinstance(obj, dict):
        raise EntryError("not a JSON object")
    if b"\\u0000" in raw:
        obj = _nul_free(obj)
    return entry_from_fields(obj, hashlib.sha256(raw).digest())


def parse_lines(lines: list[bytes], batch: Batch | None = None) -> Batch:
    """Parses journalctl JSON lines; blank lines are ignored, others accepted or rejected.
    A line identical to an earlier one (same SHA-256) counts as a duplicate."""
    batch = batch or Batch()
    seen = batch._seen
    append = batch.entries.append
    parse = parse_json_line
    for number, line in enumerate(lines, 1):
        raw = line.rstrip(b"\r") if line.endswith(b"\r") else line
        if not raw or raw.isspace():
            continue
        try:
            entry = parse(raw)
        except EntryError as exc:
            batch.reject(number, str(exc))
            continue
        if entry.sha256 in seen:
            batch.duplicated += 1
        else:
            seen.add(entry.sha256)
            append(entry)
    return batch


class BodyError(ValueError):
    """The request body as a whole is unusable (400)."""


def parse_json_body(body: bytes) -> Batch:
    """`{"logs": "<lines>"}` (metrics-sender) or bare NDJSON (`journalctl -o json`)."""
    if b"\n" not in body.strip():
        try:
            doc = msgspec.json.decode(body) if body.strip() else None
        except MALFORMED:
            doc = None
        if isinstance(doc, dict) and "logs" in doc:
            logs = doc["logs"]
            if logs is None:
                return Batch()
            if not isinstance(logs, str):
                raise BodyError('"logs" must be a string of journalctl -o json lines')
            return parse_lines(logs.encode("utf-8", "surrogatepass").split(b"\n"))
    return parse_lines(body.split(b"\n"))


class ExportParser:
    """Incremental Journal Export Format parser: feed() bytes, get complete entries.

    An entry's SHA-256 is taken over its bytes as sent, so re-uploading the same
    journal file stores nothing twice.
    """

    def __init__(self, max_entry_bytes: int) -> None:
        self.max_entry_bytes = max_entry_bytes
        self._buf = bytearray()
        self._pos = 0  # start of the current entry in _buf
        self._scan = 0  # parse position inside the current entry
        self._fields: dict[str, Any] = {}
        self.number = 0

    def feed(self, data: bytes, batch: Batch) -> None:
        self._buf += data
        while self._step(batch):
            pass
        if self._pos:
            del self._buf[: self._pos]
            self._scan -= self._pos
            self._pos = 0
        if len(self._buf) > self.max_entry_bytes:
            raise BodyError(f"an export-format entry is larger than {self.max_entry_bytes} bytes")

    def finish(self, batch: Batch) -> None:
        """End of stream: a last entry without its blank line still counts."""
        if self._fields:
            self._emit(bytes(self._buf[self._pos : self._scan]), batch)
        elif self._buf[self._pos :].strip():
            self.number += 1
            batch.reject(self.number, "truncated export-format entry")

    def _emit(self, raw: bytes, batch: Batch) -> None:
        self.number += 1
        fields, self._fields = self._fields, {}
        try:
            batch.add(entry_from_fields(fields, hashlib.sha256(raw).digest()))
        except EntryError as exc:
            batch.reject(self.number, str(exc))

    def _add_field(self, name: bytes, value: bytes) -> None:
        # jsonb cannot hold NUL: written as \x00, as in values that are text.
        key = name.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
        try:
            text: Any = value.decode("utf-8")
            if "\x00" in text:
                text = list(value)
        except UnicodeDecodeError:
            text = list(value)
        old = self._fields.get(key)
        if old is None:
            self._fields[key] = text
        elif isinstance(old, list) and old and isinstance(old[0], (str, list)):
            old.append(text)
        else:
            self._fields[key] = [old, text]

    def _step(self, batch: Batch) -> bool:
        buf, i = self._buf, self._scan
        nl = buf.find(b"\n", i)
        if nl < 0:
            return False
        if nl == i:  # blank line: end of entry
            if self._fields:
                self._emit(bytes(buf[self._pos : i]), batch)
            self._scan = self._pos = nl + 1
            return True
        line = buf[i:nl]
        eq = line.find(b"=")
        if eq >= 0:
            self._add_field(bytes(line[:eq]), bytes(line[eq + 1 :]))
            self._scan = nl + 1
            return True
        # binary field: NAME\n, 8-byte little-endian size, data, \n
        if len(buf) < nl + 9:
            return False
        size = int.from_bytes(buf[nl + 1 : nl + 9], "little")
        if size > self.max_entry_bytes:
            raise BodyError(f"an export-format field is larger than {self.max_entry_bytes} bytes")
        end = nl + 9 + size
        if len(buf) < end + 1:
            return False
        if buf[end] != 0x0A:
            raise BodyError("malformed export-format binary field (no newline after the data)")
        self._add_field(bytes(line), bytes(buf[nl + 9 : end]))
        self._scan = end + 1
        return True


def export_entries(body: bytes, max_entry_bytes: int) -> Batch:
    """A whole export-format body -> Batch (tests and small bodies)."""
    batch = Batch()
    parser = ExportParser(max_entry_bytes)
    parser.feed(body, batch)
    parser.finish(batch)
    return batch


def chunks(entries: list[Entry], size: int) -> Iterator[list[Entry]]:
    for start in range(0, len(entries), size):
        yield entries[start : start + size]
