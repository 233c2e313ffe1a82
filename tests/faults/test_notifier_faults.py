"""The notifier process under faults: killed with SIGKILL five times while 1,000 transitions
are delivered, and its LISTEN connection killed: nothing lost, few duplicates, and per
alert never a superseded message after its successor."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from tests.support.fake_telegram import FakeTelegram
from tests.support.processes import VIGIL, vigil_env

Conn = psycopg.Connection[tuple[object, ...]]
HOSTS = 500


def notifier(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([VIGIL, "notifier"], env=env, stdout=out, stderr=subprocess.STDOUT)


def transitions(conn: Conn) -> None:
    """HOSTS disks over the threshold, then all back: 2 * HOSTS transitions, each with its
    outbox message (Alert, then OK again, per host)."""
    hosts = [f"h{i:03d}" for i in range(HOSTS)]
    for value in ("95", "40"):
        conn.execute(
            "select count(*) from vigil.ingest_metrics(%s::text[], %s::text[], %s::text[],"
            " %s::text[], %s::timestamptz[])",
            (hosts, ["disk"] * HOSTS, ["disk"] * HOSTS, [value] * HOSTS, [None] * HOSTS),
        )


def settled(conn: Conn) -> bool:
    row = conn.execute("select count(*) from vigil.outbox where status = 'pending'").fetchone()
    return row == (0,)


def test_notifier_killed_five_times_delivers_everything_in_order(
    dsn: str, conn: Conn, telegram: FakeTelegram, tmp_path: Path
) -> None:
    env = vigil_env(
        dsn,
        **telegram.env(),
        VIGIL_LEASE_SECONDS="2",
        VIGIL_RETRY_BASE_SECONDS="0.1",
        VIGIL_RETRY_MAX_SECONDS="0.5",
    )
    telegram.delay = 0.002
    transitions(conn)
    total = conn.execute("select count(*) from vigil.outbox").fetchone()
    assert total == (2 * HOSTS,)
    log = tmp_path / "notifier.log"
    proc = notifier(env, log)
    kills = 0
    try:
        while kills < 5:
            time.sleep(0.6)
            if settled(conn):
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            proc = notifier(env, log)
        deadline = time.monotonic() + 90
        while not settled(conn):
            assert time.monotonic() < deadline, "outbox not settled"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert kills >= 3, "the notifier finished before it could be killed enough times"
    statuses: dict[str, int] = {
        str(status): int(str(n))
        for status, n in conn.execute(
            "select status, count(*) from vigil.outbox group by status"
        ).fetchall()
    }
    assert set(statuses) <= {"delivered", "superseded"}, statuses
    texts = [r.body["text"] for r in telegram.delivered]
    # Lost: none. Every message is delivered, or superseded by a newer one that was.
    per_host: dict[str, list[str]] = {}
    for text in texts:
        host = text.split(": ", 1)[1].split(" - ", 1)[0]
        per_host.setdefault(host, []).append("alert" if text.startswith("Alert") else "ok")
    assert len(per_host) == HOSTS
    for host, seen in per_host.items():
        assert seen[-1] == "ok", (host, seen)  # never a stale Alert after its OK again
        assert "alert" not in seen[seen.index("ok") :], (host, seen)
    duplicates = len(texts) - len(set(texts))
    assert duplicates <= 0.01 * 2 * HOSTS, duplicates
    print(f"kills={kills} delivered={len(texts)} duplicates={duplicates} statuses={statuses}")


def listen_backend(conn: Conn) -> int:
    deadline = time.monotonic() + 15
    while True:
        row = conn.execute(
            "select pid from pg_stat_activity"
            " where query ilike 'listen%' and pid <> pg_backend_pid()"
        ).fetchone()
        if row is not None:
            return int(str(row[0]))
        assert time.monotonic() < deadline, "the notifier never listened"
        time.sleep(0.1)


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_listen_connection_lost_is_backstopped_by_the_poll(
    dsn: str, conn: Conn, telegram: FakeTelegram, tmp_path: Path, fault: str
) -> None:
    """The LISTEN connection terminated, or frozen (its server process stopped: no
    notification arrives and nothing errors): messages still go out within the poll."""
    env = vigil_env(
        dsn,
        **telegram.env(),
        VIGIL_POLL_SECONDS="1",
    )
    proc = notifier(env, tmp_path / "notifier.log")
    pid = listen_backend(conn)
    try:
        if fault == "killed":
            assert conn.execute("select pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        else:
            os.kill(pid, signal.SIGSTOP)
        for n, host in enumerate(("web-1", "web-2"), start=1):
            conn.execute(
                "select vigil.ingest_metrics(array[%s], array['disk'], array['disk'],"
                " array['99'], array[null]::timestamptz[])",
                (host,),
            )
            started = time.monotonic()
            assert telegram.wait_for(n, timeout=15)[-1] == f"Alert: {host} - disk Value: 99"
            assert time.monotonic() - started < 1 + 5  # poll interval + reconnect backoff
    finally:
        if fault == "frozen":
            os.kill(pid, signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
