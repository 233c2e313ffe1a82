"""POST /journal and POST /upload over real HTTP: formats, dedupe, bad lines, limits, auth."""

from __future__ import annotations

import json
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.conftest import ApiServer

Conn = psycopg.Connection[tuple[object, ...]]


def now_us(offset_s: float = 0) -> str:
    return str(int((time.time() + offset_s) * 1_000_000))


def line(message: Any = "hello", **fields: Any) -> str:
    """One journalctl -o json line (all values strings, like journalctl writes them)."""
    obj: dict[str, Any] = {
        "__CURSOR": "s=abc;i=1",
        "__REALTIME_TIMESTAMP": now_us(),
        "_HOSTNAME": "web-1",
        "_SYSTEMD_UNIT": "nginx.service",
        "PRIORITY": "6",
        "MESSAGE": message,
    }
    obj.update(fields)
    return json.dumps(obj, separators=(",", ":"))


def post(
    api: ApiServer,
    token: str | None,
    body: bytes | dict[str, Any],
    path: str = "/journal",
    **headers: str,
) -> httpx.Response:
    if token:
        headers["authorization"] = f"Bearer {token}"
    if isinstance(body, dict):
        headers.setdefault("content-type", "application/json")
        body = json.dumps(body).encode()
    return httpx.post(api.url + path, content=body, headers=headers)


def rows(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "select host, unit, container, priority, message, fields from vigil.journal order by id"
    ).fetchall()


def test_seed_format_stores_and_dedupes(api: ApiServer, token: str, conn: Conn) -> None:
    a = line("first", CONTAINER_NAME="db")
    b = line("second", PRIORITY="3")
    # b twice inside the batch, a blank line, as the seed client sends it
    r = post(api, token, {"logs": f"{a}\n{b}\n{b}\n\n"})
    assert r.status_code == 200
    assert r.json()["accepted"] == 2
    assert r.json()["duplicated"] == 1
    assert r.json()["rejected"] == 0
    stored = rows(conn)
    assert [(h, u, c, p, m) for h, u, c, p, m, _ in stored] == [
        ("web-1", "nginx.service", "db", 6, "first"),
        ("web-1", "nginx.service", None, 3, "second"),
    ]
    fields = stored[0][5]
    assert isinstance(fields, dict)
    assert fields["__CURSOR"] == "s=abc;i=1"
    assert fields["CONTAINER_NAME"] == "db"
    assert "MESSAGE" not in fields  # kept once, in the message column
    # the same batch again: all duplicates
    r = post(api, token, {"logs": f"{a}\n{b}"})
    assert (r.json()["accepted"], r.json()["duplicated"]) == (0, 2)
    assert len(rows(conn)) == 2


def test_mixed_batch_keeps_valid_lines_and_says_why(api: ApiServer, token: str, conn: Conn) -> None:
    good = line("good")
    logs = "\n".join(
        [
            "not json at all",
            good,
            json.dumps({"MESSAGE": "no timestamp"}),
            json.dumps({"MESSAGE": "bad ts", "__REALTIME_TIMESTAMP": "12abc"}),
            "[1,2,3]",
            line("too old", __REALTIME_TIMESTAMP=now_us(-30 * 86400)),
            line("future", __REALTIME_TIMESTAMP=now_us(5 * 86400)),
        ]
    )
    r = post(api, token, {"logs": logs})
    assert r.status_code == 200
    body = r.json()
    assert (body["accepted"], body["duplicated"], body["rejected"]) == (1, 0, 6)
    assert body["reasons"]["not valid JSON"] == 1
    assert body["reasons"]["no integer __REALTIME_TIMESTAMP"] == 2
    assert body["reasons"]["not a JSON object"] == 1
    assert body["reasons"]["older than the retention (14 days)"] == 1
    assert any("future" in reason for reason in body["reasons"])
    assert {"line": 1, "reason": "not valid JSON"} in body["rejected_lines"]
    assert [m for *_, m, _f in rows(conn)] == ["good"]


def test_byte_array_message_and_invalid_utf8(api: ApiServer, token: str, conn: Conn) -> None:
    valid = list("grüße".encode())
    invalid = [*b"bad ", 0xFF, 0xFE, *b" end", 0, *b"!"]
    r = post(api, token, {"logs": line(valid) + "\n" + line(invalid)})
    assert r.json()["accepted"] == 2
    stored = rows(conn)
    assert stored[0][4] == "grüße"
    assert stored[1][4] == "bad \\xff\\xfe end\\x00!"
    fields = stored[1][5]
    assert isinstance(fields, dict)
    assert fields["MESSAGE"] == invalid  # the original bytes are kept


def test_nul_and_arrays_in_string_fields(api: ApiServer, token: str, conn: Conn) -> None:
    raw = line("a\u0000b", TAG=["x", "y"], _HOSTNAME=["h1", "h2"])
    r = post(api, token, {"logs": raw})
    assert r.json()["accepted"] == 1
    host, _u, _c, _p, message, fields = rows(conn)[0]
    assert (host, message) == ("h1", "a\\x00b")
    assert isinstance(fields, dict)
    assert fields["TAG"] == ["x", "y"]


def test_bare_ndjson(api: ApiServer, token: str, conn: Conn) -> None:
    body = (line("one") + "\n" + line("two") + "\n").encode()
    r = post(api, token, body, **{"content-type": "application/x-ndjson"})
    assert r.json()["accepted"] == 2
    # one line alone is NDJSON too (it has no "logs" key)
    r = post(api, token, line("three").encode(), **{"content-type": "application/json"})
    assert r.json()["accepted"] == 1
    assert sorted(m for *_, m, _f in rows(conn)) == ["one", "three", "two"]


def test_empty_batch_and_bad_bodies(api: ApiServer, token: str) -> None:
    r = post(api, token, {"logs": ""})
    assert (r.status_code, r.json()["accepted"]) == (200, 0)
    r = post(api, token, {"logs": 5})
    assert r.status_code == 400
    assert "logs" in r.text
    r = post(api, token, b"\xff\xfe garbage", **{"content-type": "application/json"})
    assert r.status_code == 200
    assert r.json()["reasons"] == {"not valid JSON": 1}


def test_auth_and_token_prefix(api: ApiServer, token: str, conn: Conn) -> None:
    assert post(api, None, {"logs": line()}).status_code == 401
    assert post(api, "wrong", {"logs": line()}).status_code == 401
    r = post(api, None, {"logs": line("via prefix")}, path=f"/t/{token}/journal")
    assert (r.status_code, r.json()["accepted"]) == (200, 1)
    assert post(api, None, b"", path="/upload").status_code == 401
    assert len(rows(conn)) == 1


def test_body_limit(api_limit: ApiServer, token: str, conn: Conn) -> None:
    big = line("x" * 70_000)
    r = post(api_limit, token, {"logs": big})
    assert r.status_code == 413
    r = post(api_limit, token, {"logs": line("small")})
    assert r.status_code == 200


def export_entry(fields: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for name, value in fields:
        if b"\n" in value or not value.isascii():
            out += name.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
        else:
            out += name.encode() + b"=" + value + b"\n"
    return out + b"\n"


def test_export_format_by_hand(api: ApiServer, token: str, conn: Conn) -> None:
    ts = now_us().encode()
    e1 = export_entry(
        [
            ("__REALTIME_TIMESTAMP", ts),
            ("_HOSTNAME", b"db-1"),
            ("PRIORITY", b"2"),
            ("MESSAGE", b"two\nlines"),
            ("TAG", b"a"),
            ("TAG", b"b"),
        ]
    )
    e2 = export_entry([("__REALTIME_TIMESTAMP", ts), ("MESSAGE", b"bin \xff")])
    e3 = export_entry([("MESSAGE", b"no time")])
    body = e1 + e2 + e3 + e1

    def gen() -> Any:  # chunked, split at awkward places
        for i in range(0, len(body), 7):
            yield body[i : i + 7]

    r = httpx.post(
        f"{api.url}/t/{token}/upload",
        content=gen(),
        headers={"content-type": "application/vnd.fdo.journal"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["duplicated"], r.json()["rejected"]) == (2, 1, 1)
    stored = rows(conn)
    assert stored[0][0] == "db-1"
    assert stored[0][3] == 2
    assert stored[0][4] == "two\nlines"
    fields = stored[0][5]
    assert isinstance(fields, dict)
    assert fields["TAG"] == ["a", "b"]
    assert stored[1][4] == "bin \\xff"
    r = post(api, token, b"x", path="/upload", **{"content-type": "text/plain"})
    assert r.status_code == 400


UPLOAD = Path("/lib/systemd/systemd-journal-upload")
REMOTE = Path("/lib/systemd/systemd-journal-remote")


def test_real_systemd_journal_upload(
    api: ApiServer, token: str, conn: Conn, tmp_path: Path
) -> None:
    """systemd-journal-remote writes a .journal file; systemd-journal-upload sends it.
    Both come from the Debian package systemd-journal-remote, which `make test` installs
    (scripts/ensure-system-deps test): without it this test fails rather than skips."""
    assert UPLOAD.exists() and REMOTE.exists(), (
        "install systemd-journal-remote: scripts/ensure-system-deps test (make test does)"
    )
    base = int(time.time() * 1_000_000)
    stream = b"".join(
        export_entry(
            [
                ("__REALTIME_TIMESTAMP", str(base + i).encode()),
                ("__MONOTONIC_TIMESTAMP", str(1000 + i).encode()),
                ("_BOOT_ID", b"0123456789abcdef0123456789abcdef"),
                ("_HOSTNAME", b"upload-host"),
                ("_SYSTEMD_UNIT", b"cron.service"),
                ("PRIORITY", b"5"),
                ("MESSAGE", f"real upload line {i}".encode() if i else b"multi\nline \xff"),
            ]
        )
        for i in range(50)
    )
    journal = tmp_path / "remote.journal"
    subprocess.run(
        [str(REMOTE), f"--output={journal}", "-"],
        input=stream,
        check=True,
        capture_output=True,
        timeout=60,
    )
    for attempt in range(2):  # the second upload of the same file stores nothing new
        done = subprocess.run(
            [
                str(UPLOAD),
                f"--file={journal}",
                f"--url={api.url}/t/{token}",
                "--follow=no",
                f"--save-state={tmp_path}/state{attempt}",
            ],
            capture_output=True,
            timeout=60,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    stored = conn.execute(
        "select count(*), count(distinct message), min(host), min(unit), min(priority)"
        " from vigil.journal"
    ).fetchone()
    assert stored == (50, 50, "upload-host", "cron.service", 5)
    row = conn.execute(
        "select message, fields ? '__CURSOR', fields ->> '_BOOT_ID' from vigil.journal"
        " where message like 'multi%'"
    ).fetchone()
    assert row == ("multi\nline \\xff", True, "0123456789abcdef0123456789abcdef")
