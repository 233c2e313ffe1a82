"""File lines -> journal entries (pure functions, no I/O).

A line format turns one line of a file (bytes, without its newline) into one record for a
Vigil route. The journal formats (`text`, `json`, and `auto`, which picks one per line)
produce `journalctl -o json`-style objects for `POST /journal`; the web access log formats
(`combined`, `common`, `nginx-json`) send the raw line to `POST /v1/requests`; a batch is
per route.

Every record carries where it came from (`VIGIL_FILE`, `VIGIL_FILE_ID`, `VIGIL_OFFSET`): the
server drops a line it already stores (same raw line and time), so a batch sent again after
a crash stores nothing twice, while identical lines at different places of a file differ
and are all kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

JOURNAL_ROUTE = "/journal"

# Syslog severities (journald's PRIORITY) for level names used by common loggers.
LEVELS = {
    "emerg": 0, "emergency": 0, "panic": 0,
    "alert": 1,
    "crit": 2, "critical": 2, "fatal": 2,
    "err": 3, "error": 3,
    "warn": 4, "warning": 4,
    "notice": 5,
    "info": 6, "information": 6, "informational": 6,
    "debug": 7, "trace": 7, "verbose": 7,
}  # fmt: skip
TIME_KEYS = ("@timestamp", "timestamp", "time", "ts", "date", "datetime")
MESSAGE_KEYS = ("message", "msg", "log", "text")
LEVEL_KEYS = ("level", "severity", "lvl", "loglevel", "log.level")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
)}  # fmt: skip
# 2026-11-30T08:00:01.123Z, 2026-11-30 08:00:01,123 +01:00, ... at the start of a line
_ISO = re.compile(
    rb"\[?(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    rb"\s?(Z|[+-]\d\d:?\d\d)?(?![\d])"
)
# Nov 30 08:00:01 (BSD syslog, no year, local time)
_SYSLOG = re.compile(rb"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?![\d])")


@dataclass(frozen=True)
class Source:
    """Where lines come from: sent with every line."""

    path: str  # the followed path, absolute
    file_id: str  # one incarnation of the file (changes on rotation and truncation)
    host: str
    group: str | None = None


@dataclass(frozen=True)
class Stamp:
    """Time decisions: the microseconds to use when a line has no time of its own, and
    whether to use them for every line (`--now`)."""

    read_us: int
    now: bool = False
    local: Any = None  # the local tzinfo for times without a zone (None: the machine's)


LineFormat = Callable[[bytes, int, Source, Stamp], tuple[str, dict[str, Any]]]


def us_of(dt: datetime) -> int:
    return (dt - EPOCH) // timedelta(microseconds=1)


def _local(naive: datetime, stamp: Stamp) -> datetime:
    return naive.replace(tzinfo=stamp.local) if stamp.local else naive.astimezone()


def text_time(line: bytes, stamp: Stamp) -> int | None:
    """Microseconds of an ISO 8601 or BSD syslog time at the start of line, if any."""
    head = line[:64]
    m = _ISO.match(head)
    if m:
        y, mo, d, h, mi, s, frac, zone = m.groups()
        try:
            dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
        except ValueError:
            return None
        micros = int((frac or b"0").decode()[:6].ljust(6, "0"))
        dt = dt.replace(microsecond=micros)
        if zone in (None, b""):
            dt = _local(dt, stamp)
        elif zone == b"Z":
            dt = dt.replace(tzinfo=UTC)
        else:
            z = zone.replace(b":", b"").decode()
            offset = timedelta(hours=int(z[1:3]), minutes=int(z[3:5]))
            dt = dt.replace(tzinfo=UTC) - (offset if z[0] == "+" else -offset)
        return us_of(dt)
    m = _SYSLOG.match(head)
    if m and (month := MONTHS.get(m.group(1).decode().lower())):
        read = EPOCH + timedelta(microseconds=stamp.read_us)
        for year in (read.year, read.year - 1):  # no year: the latest not in the future
            try:
                day, hour, minute, second = (int(g) for g in m.groups()[1:])
                dt = _local(datetime(year, month, day, hour, minute, second), stamp)
            except ValueError:
                return None
            if us_of(dt) <= stamp.read_us + 86_400_000_000:
                return us_of(dt)
    return None


def _value_time(value: Any, stamp: Stamp) -> int | None:
    """A JSON time value: RFC 3339 text, or epoch seconds / ms / µs / ns as a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        v = float(value)
        for scale in (1e6, 1e3, 1.0, 1e-3):  # s, ms, µs, ns -> µs
            us = v * scale
            if us < 1e17:  # before the year 5138
                return int(us)
        return None
    if isinstance(value, str):
        return text_time(value.encode(), stamp)
    return None


def _priority(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 7:
        return str(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if len(v) == 1 and "0" <= v <= "7":
            return v
        if v in LEVELS:
            return str(LEVELS[v])
    return None


def _base(source: Source, offset: int, us: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "__REALTIME_TIMESTAMP": str(us),
        "_HOSTNAME": source.host,
    }
    if source.group:
        entry["_SYSTEMD_UNIT"] = source.group
        entry["VIGIL_GROUP"] = source.group
    entry["VIGIL_FILE"] = source.path
    entry["VIGIL_FILE_ID"] = source.file_id
    entry["VIGIL_OFFSET"] = str(offset)
    return entry


def _message(line: bytes) -> str | list[int]:
    """Text as a string; bytes that are not UTF-8 as journald does: an array of byte numbers
    (the server decodes it and keeps the original)."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return list(line)


def text_line(line: bytes, offset: int, source: Source, stamp: Stamp) -> tuple[str, dict[str, Any]]:
    """A plain text line: the whole line is the message; its leading time, if any."""
    us = stamp.read_us if stamp.now else (text_time(line, stamp) or stamp.read_us)
    entry = _base(source, offset, us)
    entry["MESSAGE"] = _message(line)
    return JOURNAL_ROUTE, entry


def json_line(line: bytes, offset: int, source: Source, stamp: Stamp) -> tuple[str, dict[str, Any]]:
    """A JSON object line (structured logs): its time, message and level are recognised,
    every other member is kept as a field. A journald entry (`__REALTIME_TIMESTAMP`) is
    passed on as it is. Anything else is a text line."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return text_line(line, offset, source, stamp)
    if not isinstance(obj, dict):
        return text_line(line, offset, source, stamp)
    us: int | None = None
    journald = "__REALTIME_TIMESTAMP" in obj
    if journald:  # already a journald entry (journalctl -o json)
        raw = obj.pop("__REALTIME_TIMESTAMP")
        us = int(raw) if isinstance(raw, str) and raw.isdigit() else _value_time(raw, stamp)
    else:
        for key in TIME_KEYS:
            if key in obj and (us := _value_time(obj[key], stamp)) is not None:
                break
    if stamp.now or us is None:
        us = stamp.read_us
    entry = _base(source, offset, us)
    if "MESSAGE" not in obj:
        for key in MESSAGE_KEYS:
            if isinstance(obj.get(key), str):
                entry["MESSAGE"] = obj.pop(key)
                break
        else:
            entry["MESSAGE"] = _message(line)
    if "PRIORITY" not in obj:
        for key in LEVEL_KEYS:
            if key in obj and (prio := _priority(obj[key])) is not None:
                entry["PRIORITY"] = prio
                break
    for key, value in obj.items():
        if key.startswith("VIGIL_"):
            continue  # where the line came from is ours to say
        # "logs" would make a one-line batch look like metrics-sender's {"logs": ...}
        key = "LOGS" if key == "logs" else key
        if journald:
            entry[key] = value  # a journald entry keeps its own host and unit
        else:
            entry.setdefault(key, value)
    return JOURNAL_ROUTE, entry


def auto_line(line: bytes, offset: int, source: Source, stamp: Stamp) -> tuple[str, dict[str, Any]]:
    """JSON object lines as `json`, every other line as `text`."""
    if line.lstrip()[:1] == b"{":
        return json_line(line, offset, source, stamp)
    return text_line(line, offset, source, stamp)


REQUESTS_ROUTE = "/v1/requests"


def access_format(name: str) -> LineFormat:
    """A web access log format (`combined`, `common`, `nginx-json`): the raw line goes to
    `POST /v1/requests`, which parses it (vigil/accesslog.py) and keeps a line it cannot
    read as a journal line. Bytes that are not UTF-8 travel as JSON escapes of
    surrogateescape and arrive unchanged."""

    def access_line(
        line: bytes, offset: int, source: Source, stamp: Stamp
    ) -> tuple[str, dict[str, Any]]:
        record: dict[str, Any] = {
            "line": line.decode("utf-8", "surrogateescape"),
            "format": name,
            "host": source.host,
            "file": source.path,
            "file_id": source.file_id,
            "offset": offset,
            "time": stamp.read_us,
        }
        if stamp.now:
            record["now"] = True  # --now: the request's time is the read time
        if source.group:
            record["group"] = source.group
        return REQUESTS_ROUTE, record

    return access_line


FORMATS: dict[str, LineFormat] = {
    "auto": auto_line,
    "text": text_line,
    "json": json_line,
    **{name: access_format(name) for name in ("combined", "common", "nginx-json")},
}
