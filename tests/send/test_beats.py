"""`vigil send ping|disk|docker|run` against a real API (heartbeats, push checks)."""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path

import pytest

from tests.conftest import ApiServer
from tests.send.conftest import Cli, Conn, journal, sender_env


@pytest.fixture
def send(cli: Cli) -> Cli:
    """`vigil send ARGS` (or `vigil check ...`) in this process."""
    return lambda args, env: cli(args if args[0] == "check" else ["send", *args], env)


def metrics(conn: Conn) -> dict[tuple[str, str], tuple[str, str | None]]:
    rows = conn.execute("select host, name, type, value from vigil.metrics").fetchall()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def fake_docker(tmp_path: Path, names: str, status: int = 0) -> dict[str, str]:
    """A `docker` executable on PATH answering `docker ps --format {{.Names}}`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "docker"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1 $2 $3" = "ps --format {{.Names}}" ] || { echo "unexpected: $*" >&2; exit 64; }\n'
        f"printf '{names}'\n"
        + (f"echo 'Cannot connect to the Docker daemon' >&2; exit {status}\n" if status else "")
    )
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_ping_disk_docker(
    api: ApiServer, token: str, conn: Conn, tmp_path: Path, send: Cli
) -> None:
    env = sender_env(tmp_path, api.url, token)
    r = send(["ping", "backup", "--minutes", "1440", "--host", "web-1"], env)
    assert r.returncode == 0, r.stderr
    r = send(["disk", "--mounts", "/", str(tmp_path / "missing"), "--host", "web-1"], env)
    assert r.returncode == 0, r.stderr
    r = send(["docker", "--host", "web-1"], {**env, **fake_docker(tmp_path, "web\\nshop db\\n")})
    assert r.returncode == 0, r.stderr
    got = metrics(conn)
    st = os.statvfs("/")
    used = st.f_blocks - st.f_bfree
    df = math.ceil(used * 100 / (used + st.f_bavail))
    assert got.pop(("web-1", "/"))[1] in {str(df - 1), str(df), str(df + 1)}
    assert got == {
        ("web-1", "backup"): ("ping", "1440"),
        ("web-1", str(tmp_path / "missing")): ("disk", "100"),  # not measurable: alerts
        ("web-1", "container web"): ("ping", None),
        ("web-1", "container shop db"): ("ping", None),
    }
    # docker failing: a clear message, exit 1
    r = send(["docker"], {**env, **fake_docker(tmp_path, "", status=1)})
    assert r.returncode == 1 and "docker ps failed (1)" in r.stderr
    # a bad token: refused, said so, exit 2
    r = send(["ping", "x", "--token", "vgl_wrong"], env)
    assert r.returncode != 0 and "401" in r.stderr
    # --dry-run needs no server
    r = send(["ping", "x", "--dry-run", "--host", "h"], sender_env(tmp_path, None, None))
    assert r.returncode == 0
    assert r.stdout == 'POST /metric\n{"host": "h", "name": "x", "type": "ping"}\n'


def test_run_heartbeat_and_push_check(
    api: ApiServer, token: str, conn: Conn, dsn: str, tmp_path: Path, send: Cli
) -> None:
    env = sender_env(tmp_path, api.url, token)
    job = ["sh", "-c", 'echo "out $0"; echo err >&2; exit "$0"']
    # without a push check: a heartbeat on success, a journal line either way
    failed = send(["run", "--name", "nightly", "--minutes", "60", "--", *job, "3"], env)
    assert failed.returncode == 3
    assert failed.stdout == "out 3\nerr\n"  # passed through (stdout and stderr merged)
    assert ("vm", "nightly") not in metrics(conn) and not any(
        name == "nightly" for _, name in metrics(conn)
    )
    ok = send(
        ["run", "--name", "nightly", "--minutes", "60", "--host", "cron-1", "--", *job, "0"], env
    )
    assert ok.returncode == 0, ok.stderr
    assert metrics(conn)[("cron-1", "nightly")] == ("ping", "60")
    lines = {r[1]["EXIT_STATUS"]: r for r in journal(conn)}
    assert lines["3"][0].startswith("job nightly failed: exit status 3 after ")
    assert lines["3"][1]["OUTPUT_TAIL"] == "out 3\nerr\n" and lines["3"][1]["PRIORITY"] == "3"
    assert lines["0"][0].startswith("job nightly succeeded: exit status 0")
    # a push check (Healthchecks-style pings: start, then the exit status with the output)
    added = send(["check", "add", "nightly-push"], {**env, "DATABASE_URL": dsn})
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip().splitlines()[-1].rsplit("/", 1)[-1]
    assert send(["run", "--check", secret, "--", *job, "0"], env).returncode == 0
    assert send(["run", "--check", secret, "--", *job, "2"], env).returncode == 2
    pings = conn.execute(
        "select kind, exit_status, rid, duration is not null, body from vigil.push_pings order by n"
    ).fetchall()
    assert [(p[0], p[1], p[3], p[4]) for p in pings] == [
        ("start", None, False, None),
        ("success", 0, True, "out 0\nerr\n"),
        ("start", None, False, None),
        ("fail", 2, True, "out 2\nerr\n"),
    ]
    assert pings[0][2] == pings[1][2] != pings[2][2] == pings[3][2]
    assert isinstance(pings[0][2], uuid.UUID)
    # a command that does not exist: 127, like a shell
    missing = send(["run", "--name", "x", "--", str(tmp_path / "nope")], env)
    assert missing.returncode == 127 and "cannot start" in missing.stdout
