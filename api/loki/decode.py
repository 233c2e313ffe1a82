"""A Loki push body -> journal entries (api/journal/formats/journald.py's Batch). Pure: no I/O.

Two encodings of the same PushRequest:
- JSON: `{"streams": [{"stream": {labels}, "values": [["<ns>", "line", {metadata}]]}]}`,
  timestamps as strings of nanoseconds since 1970, the metadata object optional.
- protobuf (proto/push.proto), snappy block-compressed: each stream's labels as the text
  `{name="value", ...}`, entries with a Timestamp and structured metadata as name/value pairs.

Mapping: labels fill the journal's columns where one maps (host, unit, container, priority:
see HOST_LABELS ...; a level names a syslog severity, PRIORITY's 0-7), and every label and
every structured metadata pair is kept in `fields` under its own name (a metadata name that a
label already has gets the suffix `_metadata`). Timestamps keep microseconds (the journal's
precision). An entry's identity (the dedupe hash) is its stream's labels, its nanosecond
timestamp, its line and its metadata: pushing the same entry twice stores it once, as Loki
does. PostgreSQL text cannot hold NUL: it is shown as the four characters `\\x00`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

import msgspec
from google.protobuf.message import DecodeError

from api.core.decoding import MALFORMED
from api.journal.formats.journald import MAX_US, MIN_US, Batch, Entry
from api.loki.proto.push_pb2 import PushRequest

HOST_LABELS = ("host", "hostname")
UNIT_LABELS = ("unit", "systemd_unit", "service_name")
CONTAINER_LABELS = ("container", "container_name")
LEVEL_LABELS = ("level", "severity", "priority", "detected_level", "lvl")
# Log levels as loggers and shippers spell them -> syslog severity (journald's PRIORITY).
LEVELS = {
    "emerg": 0, "emergency": 0, "panic": 0,
    "alert": 1,
    "crit": 2, "critical": 2, "fatal": 2,
    "err": 3, "error": 3, "eror": 3,
    "warn": 4, "warning": 4,
    "notice": 5,
    "info": 6, "information": 6, "informational": 6, "http": 6,
    "debug": 7, "dbug": 7, "trace": 7, "verbose": 7, "silly": 7,
}  # fmt: skip
METADATA_SUFFIX = "_metadata"
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class BodyError(ValueError):
    """The body as a whole cannot be read (a 400); the message says why."""


class LineError(ValueError):
    """One entry, or every entry of a stream, that cannot be stored; the message is why."""


def _clean(text: str) -> str:
    return text.replace("\x00", "\\x00") if "\x00" in text else text


def priority_of(level: str) -> int | None:
    """The syslog severity of a level label (`warning`, `ERROR`, `4`), or None."""
    text = level.strip().lower()
    if len(text) == 1 and "0" <= text <= "7":
        return int(text)
    return LEVELS.get(text)


def _first(labels: dict[str, str], names: Iterable[str]) -> str | None:
    for name in names:
        value = labels.get(name)
        if value:
            return value
    return None


def _level(labels: dict[str, str]) -> int | None:
    for name in LEVEL_LABELS:
        value = labels.get(name)
        if value and (priority := priority_of(value)) is not None:
            return priority
    return None


class Stream:
    """One stream's labels, with what every entry of it shares."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = {_clean(k): _clean(v) for k, v in labels.items()}
        self.host = _first(self.labels, HOST_LABELS)
        self.unit = _first(self.labels, UNIT_LABELS)
        self.container = _first(self.labels, CONTAINER_LABELS)
        self.priority = _level(self.labels)
        self.identity = _encode(dict(sorted(self.labels.items())))

    def entry(self, ns: int, line: str, metadata: dict[str, str] | None) -> Entry:
        if not MIN_US * 1000 <= ns <= MAX_US * 1000:
            raise LineError("timestamp out of range")
        fields = dict(self.labels)
        priority = self.priority
        meta = b""
        if metadata:
            clean = {_clean(k): _clean(v) for k, v in metadata.items()}
            for name, value in clean.items():
                fields[name + METADATA_SUFFIX if name in self.labels else name] = value
            if priority is None:
                priority = _level(clean)
            meta = _encode(dict(sorted(clean.items())))
        line = _clean(line)
        digest = hashlib.sha256(
            b"\n".join((self.identity, str(ns).encode(), meta, line.encode()))
        ).digest()
        return Entry(
            ns // 1000,
            digest,
            self.host,
            self.unit,
            self.container,
            priority,
            line,
            _encode(fields),
        )


def _add(batch: Batch, number: int, make: Any, *args: Any) -> None:
    try:
        batch.add(make(*args))
    except LineError as exc:
        batch.reject(number, str(exc))


def _string_map(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(type(v) is str for v in value.values()):
        raise LineError(f"{what} must be an object of string values")
    return value


def parse_json(body: bytes) -> Batch:
    """A JSON push body: every entry accepted or rejected with its reason; numbers are the
    entry's position in the body (1-based, across streams)."""
    try:
        obj = _decode(body) if body.strip() else {"streams": []}
    except MALFORMED as exc:
        raise BodyError(f"malformed JSON: {exc}") from None
    streams = obj.get("streams") if isinstance(obj, dict) else None
    if not isinstance(streams, list):
        raise BodyError('the body must be a JSON object {"streams": [...]}')
    batch = Batch()
    number = 0
    for index, item in enumerate(streams):
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list):
            number += 1
            batch.reject(number, f'stream {index}: must be {{"stream": {{...}}, "values": [...]}}')
            continue
        try:
            stream = Stream(_string_map(item.get("stream", {}), f"stream {index}: labels"))
        except LineError as exc:
            for _ in values or [None]:
                number += 1
                batch.reject(number, str(exc))
            continue
        for value in values:
            number += 1
            _add(batch, number, _json_entry, stream, value)
    return batch


def _json_entry(stream: Stream, value: Any) -> Entry:
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise LineError('an entry must be ["<timestamp ns>", "<line>"] or with a third member, '
                        "an object of structured metadata")  # fmt: skip
    ts, line = value[0], value[1]
    # (at most 32 digits: int() of thousands of digits is slow, and past 4300 it raises)
    if type(ts) is str and len(ts) <= 32 and ts.isascii() and ts.isdigit():
        ns = int(ts)
    elif type(ts) is int and ts >= 0:
        ns = ts
    else:
        raise LineError("the timestamp must be a string of nanoseconds since 1970")
    if type(line) is not str:
        raise LineError("the line must be a string")
    metadata = _string_map(value[2], "structured metadata") if len(value) == 3 else None
    return stream.entry(ns, line, metadata)


# A label set as Prometheus and Loki write it: {name="value", ...}, values in Go's quoting.
_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})', re.S)
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.S)
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _unescape(match: re.Match[str]) -> str:
    text = match.group(0)[1:]
    if len(text) == 1:
        return _SIMPLE.get(text, text)
    code = int(text, 8) if text[0] in "01234567" else int(text[1:], 16)
    return "\ufffd" if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF else chr(code)


def parse_labels(text: str) -> dict[str, str]:
    """`{job="api", host="web-1"}` -> {"job": "api", "host": "web-1"}; LineError if it is not
    a label set."""
    text = text.strip()
    if not text.startswith("{"):
        raise LineError(f'labels {text[:60]!r} are not a label set {{name="value", ...}}')
    labels: dict[str, str] = {}
    pos = 1
    if text[1:].strip() == "}":
        return labels
    while True:
        match = _PAIR.match(text, pos)
        if match is None:
            raise LineError(f'labels {text[:60]!r} are not a label set {{name="value", ...}}')
        value = match.group(2)
        labels[match.group(1)] = _ESCAPE.sub(_unescape, value) if "\\" in value else value
        pos = match.end()
        if match.group(3) == "}":
            if text[pos:].strip():
                raise LineError(f"labels {text[:60]!r}: text after the closing brace")
            return labels


def parse_protobuf(data: bytes) -> Batch:
    """A decompressed protobuf PushRequest, as parse_json."""
    request = PushRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        raise BodyError(f"body is not a Loki PushRequest (protobuf): {exc}") from None
    batch = Batch()
    number = 0
    for index, item in enumerate(request.streams):
        try:
            stream = Stream(parse_labels(item.labels))
        except LineError as exc:
            for _ in item.entries or [None]:
                number += 1
                batch.reject(number, f"stream {index}: {exc}")
            continue
        for entry in item.entries:
            number += 1
            ts = entry.timestamp
            metadata = {pair.name: pair.value for pair in entry.structuredMetadata}
            _add(batch, number, stream.entry, ts.seconds * 1_000_000_000 + ts.nanos, entry.line,
                 metadata)  # fmt: skip
    return batch
