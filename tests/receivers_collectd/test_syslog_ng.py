"""The real syslog-ng 3.38 (Debian syslog-ng-core + syslog-ng-mod-http, installed by make
test) with the http() destination of docs/senders.md, posting to POST /journal: every line
arrives once, identical lines received together included."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.receivers_collectd.conftest import Vigil, poll

SYSLOG_NG = "/usr/sbin/syslog-ng"

# The destination exactly as docs/senders.md gives it (URL and token filled in), behind a TCP
# syslog source.
CONFIG = """\
@version: 3.38
options {{ keep-hostname(yes); use-uniqid(yes); }};
source s_net {{ network(ip("127.0.0.1") port({port}) transport("tcp")); }};
destination d_vigil {{
  http(
    url("{url}/journal")
    method("POST")
    user("syslog-ng")
    password("{token}")
    headers("Content-Type: application/x-ndjson")
    batch-lines(500)
    batch-timeout(1000)
    body-suffix("\\n")
    body("$(format-json --scope none
      __REALTIME_TIMESTAMP=${{R_UNIXTIME}}${{R_USEC}}
      SYSLOG_UNIQID=${{UNIQID}}
      _HOSTNAME=${{HOST}}
      SYSLOG_IDENTIFIER=${{PROGRAM}}
      SYSLOG_PID=${{PID}}
      SYSLOG_FACILITY=${{FACILITY_NUM}}
      PRIORITY=${{LEVEL_NUM}}
      MESSAGE=${{MESSAGE}})")
  );
}};
log {{ source(s_net); destination(d_vigil); }};
"""

LINES = [
    b"<14>Nov 30 08:00:00 web-1 app[42]: the same line\n",
    b"<14>Nov 30 08:00:00 web-1 app[42]: the same line\n",
    b"<14>Nov 30 08:00:00 web-1 app[42]: the same line\n",
    b"<11>Nov 30 08:00:00 web-2 cron: another line\n",
]


@pytest.fixture(scope="module")
def syslog_ng(vigil: Vigil, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A running syslog-ng posting to the test Vigil: its TCP syslog port."""
    assert shutil.which(SYSLOG_NG) or Path(SYSLOG_NG).exists(), (
        "install syslog-ng-core and syslog-ng-mod-http: scripts/ensure-system-deps test"
    )
    base = tmp_path_factory.mktemp("syslog-ng")
    port = free_port()
    conf = base / "syslog-ng.conf"
    conf.write_text(CONFIG.format(port=port, url=vigil.url, token=vigil.token))
    command = [SYSLOG_NG, "-F", "-f", str(conf), "-R", str(base / "persist"),
               "-p", str(base / "pid"), "-c", str(base / "ctl")]  # fmt: skip
    with (base / "stdout").open("wb") as out:
        daemon = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        poll(lambda: daemon.poll() is not None or _listening(port), timeout=15)
        assert daemon.poll() is None, (base / "stdout").read_text()
        yield port
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def journal(vigil: Vigil) -> list[tuple[Any, ...]]:
    return vigil.conn.execute(
        "select host, priority, message, fields ->> 'SYSLOG_IDENTIFIER', at from vigil.journal"
        " where fields ? 'SYSLOG_UNIQID' order by id"
    ).fetchall()


def test_every_line_arrives_once(vigil: Vigil, syslog_ng: int) -> None:
    with socket.create_connection(("127.0.0.1", syslog_ng), timeout=5) as s:
        s.sendall(b"".join(LINES))  # one read: one received time for all four

    def complete() -> list[tuple[Any, ...]]:
        rows = journal(vigil)
        return rows if len(rows) >= len(LINES) else []

    rows = poll(complete, timeout=30)
    assert sorted(row[:4] for row in rows) == [
        ("web-1", 6, "the same line", "app"),
        ("web-1", 6, "the same line", "app"),
        ("web-1", 6, "the same line", "app"),
        ("web-2", 3, "another line", "cron"),
    ]
    assert len({row[4] for row in rows}) == 1  # the same microsecond: kept apart by UNIQID
    with socket.create_connection(("127.0.0.1", syslog_ng), timeout=5) as s:
        s.sendall(LINES[0])
    poll(lambda: len(journal(vigil)) == len(LINES) + 1, timeout=30)
