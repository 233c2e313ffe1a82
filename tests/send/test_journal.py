"""`vigil send journal`: the real journalctl reading a real journal, into a real API.

The journal is written by systemd-journal-remote (Debian package systemd-journal-remote,
installed by scripts/ensure-system-deps test) from the Journal Export Format, with the
lines of the real Linux syslog sample in ../shared/data/loghub (or generated lines of the
same shape when it is absent), stamped now; journalctl reads it with -D.
"""

from __future__ import annotations

import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ApiServer
from tests.send.conftest import Cli, Conn, Sender, count, journal, sender_env
from tests.support.datasets import shared_data_dir
from tests.support.processes import wait_until

REMOTE = Path("/lib/systemd/systemd-journal-remote")
BOOT = b"0123456789abcdef0123456789abcdef"


def syslog_lines(n: int) -> list[bytes]:
    real = shared_data_dir() / "loghub" / "Linux_2k.log"
    if real.exists():
        lines = real.read_bytes().splitlines()
    else:  # the same shape: BSD syslog lines
        lines = [
            f"Jun 14 15:16:{i % 60:02d} combo sshd(pam_unix)[{19000 + i}]: authentication "
            f"failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=10.0.0.{i % 250}".encode()
            for i in range(2000)
        ]
    return (lines * (n // len(lines) + 1))[:n]


def field(name: str, value: bytes) -> bytes:
    if b"\n" in value:
        return name.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
    return name.encode() + b"=" + value + b"\n"


class Journal:
    """A journal directory that systemd-journal-remote appends entries to."""

    def __init__(self, directory: Path) -> None:
        assert REMOTE.exists(), "install systemd-journal-remote: scripts/ensure-system-deps test"
        self.dir = directory
        directory.mkdir()
        self.n = 0
        self.base = int(time.time() * 1_000_000) - 3_600_000_000

    def add(self, lines: list[bytes]) -> None:
        stream = b""
        for line in lines:
            stream += b"".join(
                [
                    field("__REALTIME_TIMESTAMP", str(self.base + self.n * 1000).encode()),
                    field("__MONOTONIC_TIMESTAMP", str(1_000_000 + self.n).encode()),
                    field("_BOOT_ID", BOOT),
                    field("_HOSTNAME", b"combo"),
                    field("SYSLOG_IDENTIFIER", b"sshd"),
                    field("PRIORITY", b"5"),
                    field("MESSAGE", line),
                ]
            )
            stream += b"\n"
            self.n += 1
        subprocess.run(
            [str(REMOTE), f"--output={self.dir / 'remote.journal'}", "-"],
            input=stream,
            check=True,
            capture_output=True,
            timeout=60,
        )


def test_cursor_no_gaps_no_repeats_and_follow(
    api: ApiServer, token: str, conn: Conn, tmp_path: Path, senders: list[Sender], cli: Cli
) -> None:
    lines = syslog_lines(400)
    j = Journal(tmp_path / "journal")
    j.add(lines[:300])
    env = sender_env(tmp_path, api.url, token)
    state = tmp_path / "journal-state.json"
    args = ["journal", "-D", str(j.dir), "--state-file", str(state), "--since", "all"]
    args += ["--batch-lines", "100", "--batch-wait", "0.1"]

    assert cli(["send", *args], env).returncode == 0
    assert count(conn) == 300
    rows = journal(conn)
    assert [r[0] for r in rows] == [line.decode() for line in lines[:300]]
    assert {(r[2], r[3]) for r in rows} == {(None, "combo")}
    assert rows[0][1]["SYSLOG_IDENTIFIER"] == "sshd" and "__CURSOR" in rows[0][1]

    # nothing new: nothing to send (the cursor, not the server's dedupe)
    dry = cli(["send", *args, "--dry-run"], env)
    assert dry.returncode == 0 and dry.stdout == "", dry.stdout
    # new entries: exactly those
    j.add(lines[300:320])
    dry = cli(["send", *args, "--dry-run"], env)
    assert dry.stdout.splitlines()[0] == "POST /journal (20 lines)"
    assert len(dry.stdout.splitlines()) == 21
    assert cli(["send", *args], env).returncode == 0 and count(conn) == 320

    # --follow (a process): entries appear as they are written; stopped, then more written
    follower = Sender([*args, "--follow", "-v"], env, tmp_path / "follow.err")
    senders.append(follower)
    time.sleep(0.5)
    j.add(lines[320:340])
    wait_until(lambda: count(conn) == 340, what="followed entries")
    assert follower.stop() == 0
    assert "(20 in this run)" in follower.stderr()
    j.add(lines[340:400])
    assert cli(["send", *args, "--dry-run"], env).stdout.startswith("POST /journal (60 lines)")
    assert cli(["send", *args], env).returncode == 0 and count(conn) == 400
    assert [r[0] for r in journal(conn)] == [line.decode() for line in lines]


def test_unreachable_keeps_the_cursor(
    tmp_path: Path, cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    j = Journal(tmp_path / "journal")
    j.add(syslog_lines(5))
    env = sender_env(tmp_path, "http://127.0.0.1:9", "t")
    state = tmp_path / "state.json"
    args = ["send", "journal", "-D", str(j.dir), "--state-file", str(state), "--since", "all"]
    assert cli([*args, "--retry-for", "0.5"], env).returncode == 1
    assert "cursor stays before this batch" in caplog.text
    assert not state.exists()
