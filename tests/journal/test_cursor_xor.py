"""What docs/journal.md says of the cursor's x= (stored as journal_lines.xor_hash): journald
computes it from the entry's fields (the XOR of the unkeyed Jenkins lookup3 hash of every
FIELD=value, also in journal files with keyed hashes), so the fields Vigil keeps determine
it, except for an entry that repeats a field with the same value (journalctl shows the
value once). Checked on a journal file written by the real systemd-journal-remote, read
back from vigil.journal in both modes."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from api.journal import QUERIES
from api.journal.formats.journald import parse_lines
from api.journal.store import array_params
from tests.journal.test_ingest import REMOTE, export_entry

Conn = psycopg.Connection[tuple[object, ...]]
M32 = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & M32


def jenkins_hash64(data: bytes) -> int:
    """systemd's jenkins_hash64: lookup3 hashlittle2 with both seeds 0, (c << 32) | b."""
    n = len(data)
    a = b = c = (0xDEADBEEF + n) & M32
    i = 0
    while n > 12:
        a = (a + int.from_bytes(data[i : i + 4], "little")) & M32
        b = (b + int.from_bytes(data[i + 4 : i + 8], "little")) & M32
        c = (c + int.from_bytes(data[i + 8 : i + 12], "little")) & M32
        a = (a - c) & M32 ^ _rot(c, 4)
        c = (c + b) & M32
        b = (b - a) & M32 ^ _rot(a, 6)
        a = (a + c) & M32
        c = (c - b) & M32 ^ _rot(b, 8)
        b = (b + a) & M32
        a = (a - c) & M32 ^ _rot(c, 16)
        c = (c + b) & M32
        b = (b - a) & M32 ^ _rot(a, 19)
        a = (a + c) & M32
        c = (c - b) & M32 ^ _rot(b, 4)
        b = (b + a) & M32
        n -= 12
        i += 12
    if n == 0:
        return (c << 32) | b
    tail = data[i:] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & M32
    b = (b + int.from_bytes(tail[4:8], "little")) & M32
    c = (c + int.from_bytes(tail[8:12], "little")) & M32
    c = (c ^ b) - _rot(b, 14) & M32
    a = (a ^ c) - _rot(c, 11) & M32
    b = (b ^ a) - _rot(a, 25) & M32
    c = (c ^ b) - _rot(b, 16) & M32
    a = (a ^ c) - _rot(c, 4) & M32
    b = (b ^ a) - _rot(a, 14) & M32
    c = (c ^ b) - _rot(b, 24) & M32
    return (c << 32) | b


def _value_bytes(value: Any) -> bytes:
    return bytes(value) if isinstance(value, list) else str(value).encode()


def fields_xor(fields: dict[str, Any], message: str) -> int:
    """The XOR of the hashes of every FIELD=value of a line as vigil.journal returns it."""
    payloads: list[bytes] = []
    if "MESSAGE" not in fields:
        payloads.append(b"MESSAGE=" + message.encode())
    for name, value in fields.items():
        if name.startswith("__"):
            continue  # cursor and timestamps: the entry's header, no data objects
        if isinstance(value, list) and value and not all(isinstance(v, int) for v in value):
            values = value  # a repeated field: one value per data object
        else:
            values = [value]
        payloads += [name.encode() + b"=" + _value_bytes(v) for v in values]
    out = 0
    for payload in payloads:
        out ^= jenkins_hash64(payload)
    return out


def test_jenkins_hash64_reference_values() -> None:
    """lookup3 hashlittle2 of the empty string with zero seeds is 0xdeadbeef twice."""
    assert jenkins_hash64(b"") == 0xDEADBEEFDEADBEEF
    assert jenkins_hash64(b"Four score and seven years ago") != jenkins_hash64(b"Four score")


def test_cursor_xor_is_derived_from_the_stored_fields(db: Conn, tmp_path: Path) -> None:
    assert REMOTE.exists(), (
        "install systemd-journal-remote: scripts/ensure-system-deps test (make test does)"
    )
    base = int(time.time() * 1_000_000) - 60_000_000
    messages = [
        b"",
        b"exactly12byt",
        b"Accepted publickey for root from 10.0.0.7 port 50122 ssh2: ED25519 SHA256:x",
        b"binary \xff and a\nsecond line",
        "unicode \u00e9\u4e2d".encode(),
    ]
    entries = []
    for i, message in enumerate(messages):
        fields = [
            ("__REALTIME_TIMESTAMP", str(base + i).encode()),
            ("__MONOTONIC_TIMESTAMP", str(7_000 + i).encode()),
            ("_BOOT_ID", b"0123456789abcdef0123456789abcdef"),
            ("_HOSTNAME", b"xor-host"),
            ("_SYSTEMD_UNIT", b"ssh.service"),
            ("PRIORITY", b"6"),
            ("_PID", str(400 + i).encode()),
            ("MESSAGE", message),
        ]
        if i == 1:
            fields += [("TAG", b"a"), ("TAG", b"b")]  # a field with two values
        if i == 4:
            fields += [("TAG", b"same"), ("TAG", b"same")]  # repeated with the same value
        entries.append(export_entry(fields))
    journal = tmp_path / "xor.journal"
    subprocess.run(
        [str(REMOTE), f"--output={journal}", "-"],
        input=b"".join(entries),
        check=True,
        capture_output=True,
        timeout=60,
    )
    lines = subprocess.run(
        ["journalctl", f"--file={journal}", "-o", "json", "--all"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout.splitlines()
    assert len(lines) == len(messages)
    db.execute(QUERIES["journal_ingest_arrays"], array_params(parse_lines(lines).entries))
    rows = db.execute(
        "select message, fields from vigil.journal where host = 'xor-host' order by at"
    ).fetchall()
    assert len(rows) == len(messages)
    derived: list[bool] = []
    for text, stored in rows:
        assert isinstance(stored, dict) and isinstance(text, str)
        x = dict(p.split("=", 1) for p in stored["__CURSOR"].split(";"))["x"]
        derived.append(fields_xor(stored, text) == int(x, 16))
    # the last entry's TAG=same twice cancels out of x=, and journalctl shows it once
    assert derived == [True, True, True, True, False]
    assert json.loads(lines[4])["TAG"] == "same"
