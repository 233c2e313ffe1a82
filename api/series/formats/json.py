"""Series points as JSON: one object, a JSON array, or NDJSON (one point per line).

Pure parsing, no I/O: a body becomes a Batch of accepted points and rejections with
their positions. The compiled decoder takes the common form; every other body takes the
per-point path, which says what is wrong with which point.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import groupby
from operator import attrgetter
from typing import Annotated

import msgspec

from api.core.decoding import MALFORMED
from api.core.timestamps import EPOCH, ONE_US, PG_EPOCH_US, TimestampError, parse_rfc3339, unix_us
from api.series.formats.points import (
    MAX_FUTURE_US,
    MAX_NAME,
    MIN_AT_US,
    Batch,
    PointError,
    check_at,
    check_name,
    check_value,
    decode_compiled,
    labels_key,
    now_us,
)

NO_LABELS = msgspec.Raw(b"")


class PointIn(msgspec.Struct, gc=False):
    """One point. timestamp: RFC 3339 string or Unix seconds; missing = now. labels: an
    object of strings (kept raw: validated once per distinct label text in a batch)."""

    name: str
    value: float
    timestamp: str | float | None = None
    labels: msgspec.Raw = NO_LABELS


class CleanPointIn(msgspec.Struct, gc=False):
    """PointIn for the fast path of a JSON array: name and value are checked by msgspec (in
    C) so that any invalid point fails the whole decode and the batch takes the per-point
    path, which says what is wrong with which point."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME)]
    value: Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
    timestamp: str | float | None = None
    labels: msgspec.Raw = NO_LABELS


_name_labels = attrgetter("name", "labels")
_point = msgspec.json.Decoder(PointIn)
_clean_points = msgspec.json.Decoder(list[CleanPointIn])
_clean_point = msgspec.json.Decoder(CleanPointIn)
_points = msgspec.json.Decoder(list[PointIn])
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_labels = msgspec.json.Decoder(dict[str, str] | None)


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T")
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])Z")
MAX_DAYS_CACHED = 10_000


class _DayUs(dict[str, int]):
    """Microseconds since 2000-01-01 (PostgreSQL's epoch) of the "YYYY-MM-DDT" start of a
    timestamp (ASCII digits), by datetime.fromisoformat on first use; KeyError or ValueError
    for any other text."""

    def __missing__(self, day: str) -> int:
        if not _DAY.fullmatch(day):
            raise KeyError(day)
        value = unix_us(datetime.fromisoformat(day + "00:00:00+00:00")) - PG_EPOCH_US
        if len(self) >= MAX_DAYS_CACHED:
            self.clear()
        self[day] = value
        return value


class _TimeUs(dict[str, int]):
    """Microseconds of the "HH:MM:SSZ" end of a timestamp (at most 86,400 texts); KeyError
    for anything else (fractions, offsets, "z", second 60), left to the general parser."""

    def __missing__(self, text: str) -> int:
        match = _TIME.fullmatch(text)
        if not match:
            raise KeyError(text)
        hour, minute, second = map(int, match.groups())
        value = self[text] = ((hour * 60 + minute) * 60 + second) * 1_000_000
        return value


_day_us = _DayUs()
_time_us = _TimeUs()
WHOLE_SECOND_LEN = len("2026-11-22T10:00:00Z")


def whole_second_pg_us(stamps: list[str | float | None]) -> list[int]:
    """Microseconds since 2000-01-01 (PostgreSQL's epoch) of timestamps that are all
    "YYYY-MM-DDTHH:MM:SSZ" (whole seconds, UTC: what most senders write): two cached
    look-ups per point, no datetime objects. Raises KeyError, ValueError or TypeError if any
    timestamp has another form (the caller then takes the general path); equal to
    datetime.fromisoformat for all it accepts."""
    day, time_of_day = _day_us, _time_us
    return [day[ts[:11]] + time_of_day[ts[11:]] for ts in stamps]  # type: ignore[index]


_JSON_ARRAY = re.compile(rb"[ \t\n\r\x0b\x0c]*\[")  # what bytes.lstrip() strips, then [


def point_at_us(timestamp: str | float | None, now: int) -> int:
    if timestamp is None or timestamp == "":
        return now
    if isinstance(timestamp, str):
        try:
            at = datetime.fromisoformat(timestamp)
        except ValueError:
            try:
                parsed = parse_rfc3339(timestamp)
            except TimestampError as exc:
                raise PointError(str(exc)) from None
            if parsed is None:
                return now
            at = parsed
        if at.tzinfo is None:
            raise PointError("timestamp needs an offset or Z (RFC 3339)")
        return check_at(unix_us(at), now)
    at_us = timestamp * 1_000_000
    if not math.isfinite(at_us):
        raise PointError("timestamp must be a finite number of Unix seconds")
    return check_at(round(at_us), now)


# Label JSON text as sent -> canonical labels JSON, shared by every request of the process:
# a pure function of the text, so always valid. Bounded.
LABEL_KEYS: dict[bytes, str] = {}
LABEL_KEYS_MAX = 300_000


class PointParser:
    """Validates points into a Batch; label sets are checked once per distinct JSON text (in
    the process: LABEL_KEYS)."""

    def __init__(self) -> None:
        self.batch = Batch()
        self.now = now_us()
        self._labels = LABEL_KEYS

    def labels(self, raw: msgspec.Raw) -> str:
        text = bytes(raw)
        if not text:
            return "{}"
        key = self._labels.get(text)
        if key is None:
            try:
                key = labels_key(_labels.decode(text))
            except MALFORMED:
                raise PointError("labels must be an object of strings") from None
            if len(self._labels) >= LABEL_KEYS_MAX:
                self._labels.clear()
            self._labels[text] = key
        return key

    def canonical_keys(self, raw_keys: Iterable[tuple[str, bytes]]) -> list[int] | None:
        """Each (name, label text as sent) as the index of its canonical key in the batch's
        keys (added as needed); None if a label text is invalid (the per-point path says
        which point)."""
        keys = self.batch.keys
        try:
            return [
                keys.setdefault((check_name(name), self.labels(msgspec.Raw(text))), len(keys))
                for name, text in raw_keys
            ]
        except PointError:
            return None

    def add(self, point: PointIn) -> None:
        self.batch.add(
            check_name(point.name),
            self.labels(point.labels),
            point_at_us(point.timestamp, self.now),
            check_value(point.value),
        )

    def add_all(self, points: list[PointIn]) -> None:
        """The hot path of a batch: well-formed points inline, anything else via add()."""
        batch = self.batch
        keys, series, ats, values = batch.keys, batch.series, batch.at_us, batch.values
        low, high = MIN_AT_US, self.now + MAX_FUTURE_US
        known = self._labels
        fromiso, isfinite = datetime.fromisoformat, math.isfinite
        for i, point in enumerate(points):
            name, ts, value = point.name, point.timestamp, point.value
            labels = known.get(bytes(point.labels))
            if (
                labels is not None
                and 0 < len(name) <= MAX_NAME
                and isfinite(value)
                and ("\x00" not in name)
            ):
                try:
                    if isinstance(ts, str):
                        at = fromiso(ts)
                        at_us = (at - EPOCH) // ONE_US if at.tzinfo is not None else -1
                    elif ts is None:
                        at_us = self.now
                    else:
                        at_us = round(ts * 1_000_000)
                except (ValueError, TypeError, OverflowError):
                    at_us = -1  # add() says what is wrong
                if low <= at_us <= high:
                    key = (name, labels)
                    index = keys.get(key)
                    if index is None:
                        index = keys[key] = len(keys)
                    series.append(index)
                    ats.append(at_us)
                    values.append(value)
                    continue
            try:
                self.add(point)
            except PointError as exc:
                batch.reject(i, str(exc))


def general_at_us(stamps: list[str | float | None], now: int, base: int = 0) -> list[int] | None:
    """Microseconds since the Unix time `base` of RFC 3339 texts (datetime.fromisoformat),
    Unix seconds or None (now); None if any text is bad, empty or without an offset."""
    fromiso, epoch = datetime.fromisoformat, EPOCH + timedelta(microseconds=base)

    def other_at(timestamp: float | None) -> timedelta:
        at = now if timestamp is None else round(timestamp * 1_000_000)
        return timedelta(microseconds=at - base)

    try:
        # Via days/seconds/microseconds: cheaper than timedelta // timedelta.
        return [
            (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
            for delta in [
                fromiso(ts) - epoch if isinstance(ts, str) else other_at(ts) for ts in stamps
            ]
        ]
    except (ValueError, TypeError, OverflowError):  # bad, empty or naive (TypeError) text
        return None


def clean_array(body: bytes) -> Batch | None:
    """The batch of a JSON array whose points are all valid, None if any is not (or if the
    body is malformed): the fast path, column by column, with no per-point branches.

    Raises msgspec.DecodeError (not ValidationError) for malformed JSON.
    """
    try:
        points = _clean_points.decode(body)
    except msgspec.ValidationError:
        return None
    return clean_points(points)


def clean_points(points: list[CleanPointIn]) -> Batch | None:
    """The batch of decoded points if all are valid, None otherwise (see clean_array)."""
    parser = PointParser()
    now = parser.now
    stamps = [point.timestamp for point in points]
    at_us: list[int] | None
    try:
        if not (stamps and isinstance(stamps[0], str) and len(stamps[0]) == WHOLE_SECOND_LEN):
            raise KeyError  # other forms: fromisoformat
        at_us = whole_second_pg_us(stamps)
    except (KeyError, ValueError, TypeError):
        at_us = general_at_us(stamps, now, PG_EPOCH_US)
    if at_us is None:
        return None
    # Counted from PostgreSQL's epoch (what COPY wants), so the bounds are too.
    low, high = MIN_AT_US - PG_EPOCH_US, now + MAX_FUTURE_US - PG_EPOCH_US
    if at_us and (min(at_us) < low or max(at_us) > high):
        return None
    # Series per (name, label text as sent), one dict look-up per run of points of the same
    # series (senders mostly send runs); label texts validated once per distinct text.
    raw_keys: dict[tuple[str, bytes], int] = {}
    series: list[int] = []
    for (name, labels), run in groupby(map(_name_labels, points)):
        key = (name, bytes(labels))
        series += [raw_keys.setdefault(key, len(raw_keys))] * len(list(run))
    batch = parser.batch
    index = parser.canonical_keys(raw_keys)
    if index is None:
        return None
    if len(batch.keys) != len(raw_keys):  # label texts that differ only in order or spacing
        series = [index[i] for i in series]
    batch.series, batch.at_us, batch.values = series, at_us, [p.value for p in points]
    batch.at_base_us = PG_EPOCH_US
    return batch


def compiled_batch(body: bytes, ndjson: bool) -> Batch | None:
    """The batch of a body whose points are all valid and in the common form that the
    compiled decoder takes (api/series/_fastpoints.c: COPY rows straight from the JSON), None for
    any other body (or without the compiled module): the Python paths then decide."""
    parser = PointParser()
    decoded = decode_compiled(body, ndjson, parser.now)
    if decoded is None:
        return None
    raw_keys, rows = decoded
    index = parser.canonical_keys(raw_keys)
    if index is None:
        return None
    parser.batch.rows, parser.batch.raw_keys = rows, index
    return parser.batch


def parse_json_batch(body: bytes) -> Batch:
    """A JSON array of points, or NDJSON (one point per line); rejections per position."""
    is_array = _JSON_ARRAY.match(body) is not None  # not body.lstrip(): that copies the body
    fast = compiled_batch(body, ndjson=not is_array)
    if fast is not None:
        return fast
    return python_json_batch(body, is_array)


def python_json_batch(body: bytes, is_array: bool) -> Batch:
    """parse_json_batch without the compiled decoder: the reference for every body."""
    parser = PointParser()
    if is_array:
        try:
            batch = clean_array(body)
            if batch is not None:
                return batch
            parser.add_all(_points.decode(body))
            return parser.batch
        except (msgspec.ValidationError, UnicodeDecodeError, RecursionError):
            pass  # some item is invalid, not UTF-8 or too deep: decode one by one to say which
        except msgspec.DecodeError as exc:
            raise PointError(f"malformed JSON array: {exc}") from None
        parser = PointParser()
        try:
            raws = _raw_list.decode(body)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise PointError(f"malformed JSON array: {exc}") from None
        for i, raw in enumerate(raws):
            try:
                parser.add(_point.decode(raw))
            except (*MALFORMED, PointError) as exc:
                parser.batch.reject(i, str(exc))
        return parser.batch
    lines = body.split(b"\n")
    batch = clean_ndjson(lines)
    if batch is not None:
        return batch
    return parse_ndjson_lines(lines)


def parse_ndjson_lines(lines: list[bytes]) -> Batch:
    """NDJSON line by line (the reference semantics; positions are line indexes)."""
    parser = PointParser()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            parser.add(_point.decode(line))
        except (*MALFORMED, PointError) as exc:
            parser.batch.reject(i, f"line {i + 1}: {exc}")
    return parser.batch


def clean_ndjson(lines: list[bytes]) -> Batch | None:
    """The batch of NDJSON whose points are all valid, None otherwise: each non-blank line
    decoded on its own (as parse_ndjson_lines does), then the column-wise fast path of JSON
    arrays."""
    decode = _clean_point.decode
    try:
        points = [decode(line) for line in lines if line.strip()]
    except MALFORMED:  # ValidationError included
        return None
    return clean_points(points) if points else None
