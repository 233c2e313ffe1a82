"""The real logs as rows for the log-metric tests: the loghub samples (../shared/data/loghub,
or generated lines of the same shape) as journal lines, the Apache combined access log
(tests/requests/data.py) as request records; their times moved into the retention window."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from api.requests.store import Origin, dedupe_key, json_row
from tests.requests.data import access_lines
from tests.support.datasets import loghub_text
from vigil.accesslog import Record, parse_line

Conn = psycopg.Connection[tuple[object, ...]]

SPAN = timedelta(hours=40)  # a file's lines are spread over at most this, ending END_AGO ago
END_AGO = timedelta(hours=1)


@dataclasses.dataclass(frozen=True)
class Line:
    """One journal line: what vigil.journal_ingest takes."""

    at: datetime
    host: str
    unit: str | None
    identifier: str
    priority: int
    message: str
    raw: bytes
    pid: str | None = None

    def fields(self) -> dict[str, str]:
        fields = {
            "_HOSTNAME": self.host,
            "SYSLOG_IDENTIFIER": self.identifier,
            "PRIORITY": str(self.priority),
            "_TRANSPORT": "syslog",
        }
        if self.pid is not None:
            fields["SYSLOG_PID"] = self.pid  # not a shared field: stored per line
        return fields


SYSLOG = re.compile(r"^(\w{3} +\d+ [\d:]{8}) (\S+) ([^:\[]+)(?:\[(\d+)\])?: ?(.*)$")
APACHE = re.compile(r"^\[(\w{3} \w{3} \d\d [\d:]{8} \d{4})\] \[(\w+)\] (.*)$")
HDFS = re.compile(r"^(\d{6} \d{6}) \d+ (\w+) ([^:]+): (.*)$")
LEVELS = {"emerg": 0, "alert": 1, "crit": 2, "error": 3, "warn": 4, "warning": 4,
          "notice": 5, "info": 6, "debug": 7, "fatal": 2}  # fmt: skip


def _syslog_priority(message: str) -> int:
    low = message.lower()
    if "error" in low or "failure" in low or "failed" in low:
        return 3
    if "invalid" in low or "warn" in low:
        return 4
    return 6


Parsed = tuple[datetime, str, str | None, str, int, str, str | None]


def parse_loghub(name: str, raw: bytes) -> Parsed:
    """(original time, host, unit, identifier, priority, message, pid) of one loghub line."""
    text = raw.decode("utf-8", "replace").rstrip()
    if name == "Apache":
        m = APACHE.match(text)
        assert m, text
        at = datetime.strptime(m[1], "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
        return at, "www", "apache2.service", "httpd", LEVELS.get(m[2], 6), m[3], None
    if name == "HDFS":
        m = HDFS.match(text)
        assert m, text
        at = datetime.strptime(m[1], "%y%m%d %H%M%S").replace(tzinfo=UTC)
        ident = m[3].split("$")[0]
        return at, "hdfs-1", "hdfs.service", ident, LEVELS.get(m[2].lower(), 6), m[4], None
    m = SYSLOG.match(text)
    assert m, text
    at = datetime.strptime("2026 " + m[1], "%Y %b %d %H:%M:%S").replace(tzinfo=UTC)
    ident = m[3].strip()
    unit = None if ident == "kernel" else re.sub(r"\(.*", "", ident) + ".service"
    return at, m[2], unit, ident, _syslog_priority(m[5]), m[5], m[4]


def loghub_lines(names: tuple[str, ...], per_file: int, end: datetime) -> list[Line]:
    """The first per_file lines of each loghub file, each file's times kept relative to its
    first line (compressed into SPAN when longer), its last line END_AGO before `end`."""
    lines: list[Line] = []
    for name in names:
        raws = [t.encode() for t in loghub_text(name).splitlines()]
        parsed = [(raw, *parse_loghub(name, raw)) for raw in raws[:per_file] if raw.strip()]
        first, last = parsed[0][1], max(p[1] for p in parsed)
        span = max(last - first, timedelta(seconds=1))
        scale = min(1.0, SPAN / span)
        base = end - END_AGO - (last - first) * scale
        for raw, at, host, unit, ident, prio, message, pid in parsed:
            moved = base + (at - first) * scale
            lines.append(Line(moved, host, unit, ident, prio, message, raw, pid))
    return lines


def ingest_journal(conn: Conn, lines: list[Line], salt: bytes = b"") -> tuple[int, ...]:
    """vigil.journal_ingest (works in both lanes); the dedupe key hashes the raw line, its
    position and `salt`."""
    row = conn.execute(
        "select * from vigil.journal_ingest(%s::timestamptz[], %s::bytea[], %s::text[],"
        " %s::text[], %s::text[], %s::smallint[], %s::text[], %s::jsonb)",
        (
            [x.at for x in lines],
            [hashlib.sha256(salt + x.raw + x.at.isoformat().encode()).digest() for x in lines],
            [x.host for x in lines],
            [x.unit for x in lines],
            [None for _ in lines],
            [x.priority for x in lines],
            [x.message for x in lines],
            json.dumps([x.fields() for x in lines]),
        ),
    ).fetchone()
    assert row is not None
    return tuple(int(str(v)) for v in row)


def ip_network() -> str:
    """The network an ip-filtered metric counts: Googlebot's 66.249.0.0/16 when the access log
    has it (the real one does), else the /8 of the log's first address (the generated log's
    addresses are random; its first line is in every sample request_records takes)."""
    lines = access_lines()
    if any(line.startswith(b"66.249.") for line in lines):
        return "66.249.0.0/16"
    return f"{parse_line(lines[0]).ip.split('.')[0]}.0.0.0/8"


def request_records(count: int, end: datetime) -> list[tuple[Record, int, str]]:
    """About `count` lines of the access log (every n-th, and every 5xx: the log has two) as
    (record, dedupe key, host): moved so the last is END_AGO before `end`; hosts web-1/web-2
    alternate; request_time derived from the line (the combined format has none)."""
    every = access_lines()
    stride = max(1, len(every) // count)
    pairs = [(r, parse_line(r)) for r in every]
    pairs = [p for i, p in enumerate(pairs) if i % stride == 0 or p[1].status >= 500]
    raws, recs = [p[0] for p in pairs], [p[1] for p in pairs]
    shift = int((end - END_AGO).timestamp() * 1_000_000) - max(r.us for r in recs)
    out = []
    for i, (raw, rec) in enumerate(zip(raws, recs, strict=True)):
        host = ("web-1", "web-2")[i % 2]
        rec = dataclasses.replace(
            rec, us=rec.us + shift, request_time=(zlib.crc32(raw) % 4000) / 1000
        )
        out.append((rec, dedupe_key(raw, Origin(host, "access.log", i)), host))
    return out


def ingest_requests(conn: Conn, records: list[tuple[Record, int, str]]) -> tuple[int, ...]:
    rows: list[dict[str, Any]] = [json_row(*r) for r in records]
    row = conn.execute("select * from vigil.requests_ingest(%s::jsonb)", (json.dumps(rows),))
    found = row.fetchone()
    assert found is not None
    return tuple(int(str(v)) for v in found)
