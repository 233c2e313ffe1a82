"""`vigil send file --format combined|common|nginx-json`: the real sender process posting a
file to a real API's /v1/requests; sent again, nothing is stored twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import ApiServer
from tests.requests.data import access_lines
from tests.requests.test_api import NOW, restamped
from tests.send.conftest import Conn, send, sender_env

FAST = ["--poll", "0.05", "--batch-wait", "0.1", "--partial-timeout", "0.3"]


def test_send_file_combined_and_resend(
    api: ApiServer, token: str, conn: Conn, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    lines = restamped(access_lines()[:1000])
    health = (
        f'10.9.9.9 - - [{NOW:%d/%b/%Y:%H:%M:%S} +0000] "GET /health HTTP/1.1" 200 2 "-" "lb"'
    ).encode()
    odd = (
        f'10.9.9.8 - - [{NOW:%d/%b/%Y:%H:%M:%S} +0000] "GET /caf\xe9 HTTP/1.1" 404 0 "-" "-"'
    ).encode("latin-1")  # not UTF-8
    body = [*lines, health, health, health, b"garbage, not a request", odd]
    log.write_bytes(b"\n".join(body) + b"\n")
    env = sender_env(tmp_path, api.url, token)
    args = ["file", str(log), "--format", "combined", "--host", "web-7", *FAST]
    first = send([*args, "--state-file", str(tmp_path / "a.json")], env)
    assert first.returncode == 0, first.stderr
    assert conn.execute("select count(*), min(host), max(host) from vigil.requests").fetchone() == (
        1004, "web-7", "web-7"
    )  # fmt: skip
    # identical health checks in one second: all three kept (distinct offsets)
    assert conn.execute(
        "select count(*) from vigil.requests where path = '/health'"
    ).fetchone() == (3,)
    assert conn.execute(
        "select path from vigil.requests where status = 404 and ip = '10.9.9.8'"
    ).fetchone() == ("/caf\\xe9",)
    # the unparsable line is a journal line with the reason
    assert conn.execute(
        "select message, fields ->> 'VIGIL_REASON', fields ->> 'VIGIL_OFFSET' from vigil.journal"
    ).fetchall() == [
        ("garbage, not a request", "not a common or combined log line",
         str(sum(len(b) + 1 for b in body[:-2])))
    ]  # fmt: skip
    # a crash after sending, before the position was saved: everything is sent again from
    # the same file incarnation, and nothing is stored twice
    state_path = tmp_path / "a.json"
    state = json.loads(state_path.read_text())
    (position,) = state["files"].values()
    assert position["offset"] == log.stat().st_size
    position["offset"] = 0
    state_path.write_text(json.dumps(state))
    again = send([*args, "--state-file", str(state_path)], env)
    assert again.returncode == 0, again.stderr
    assert conn.execute("select count(*) from vigil.requests").fetchone() == (1004,)
    # (the unparsable line has no time of its own: re-read, it has a new read time, and the
    # journal keeps it again, as it does for a plain text line without a time)


def test_send_file_nginx_json_now(api: ApiServer, token: str, conn: Conn, tmp_path: Path) -> None:
    log = tmp_path / "access.json"
    old = NOW - timedelta(days=300)  # past the retention: --now restamps it
    record = {"time_iso8601": old.isoformat(), "remote_addr": "10.0.0.1",
              "request": "GET /x HTTP/1.1", "status": 200, "request_id": "r-1"}  # fmt: skip
    log.write_text(json.dumps(record) + "\n")
    env = sender_env(tmp_path, api.url, token)
    args = ["file", str(log), "--format", "nginx-json", "--now", *FAST]
    result = send([*args, "--state-file", str(tmp_path / "s.json")], env)
    assert result.returncode == 0, result.stderr
    row = conn.execute("select at, request_id from vigil.requests").fetchone()
    assert row is not None and row[1] == "r-1"
    assert abs(row[0] - datetime.now(UTC)) < timedelta(minutes=5)  # the read time, restamped
