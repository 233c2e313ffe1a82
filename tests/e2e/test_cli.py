"""The `vigil` console script: tokens, migrate, and `vigil run` on the embedded default."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.conftest import free_port
from tests.support.processes import VIGIL, vigil_env, wait_http


def vigil(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VIGIL, *args], env=vigil_env(dsn), capture_output=True, text=True, check=False, timeout=60
    )


def test_token_lifecycle(dsn: str) -> None:
    created = vigil(dsn, "token", "create", "backup-host")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"vgl_[A-Za-z0-9_-]{43}", token)
    listed = vigil(dsn, "token", "list")
    assert "backup-host" in listed.stdout and token not in listed.stdout
    duplicate = vigil(dsn, "token", "create", "backup-host")
    assert duplicate.returncode == 1
    assert 'an active token named "backup-host" exists already' in duplicate.stderr
    assert vigil(dsn, "token", "revoke", "backup-host").returncode == 0
    assert vigil(dsn, "token", "revoke", "backup-host").returncode == 1
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "select token_hash, revoked_at is not null from vigil.api_tokens"
        ).fetchone()
    assert row is not None and row[1] is True
    assert token.encode() not in bytes(row[0])


def test_migrate_is_idempotent(dsn: str) -> None:
    result = vigil(dsn, "migrate")
    assert result.returncode == 0, result.stderr
    assert "portable mode" in result.stdout


def test_bad_setting_is_a_clear_error(dsn: str) -> None:
    result = subprocess.run(
        [VIGIL, "migrate"],
        env={**vigil_env(dsn), "VIGIL_PORT": "x"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "vigil: VIGIL_PORT='x' is not an integer" in result.stderr


# Generous deadlines: `vigil run` creates a cluster, migrates it and starts three processes,
# and the tests run on a machine shared with other work. Every wait ends as soon as its
# condition holds, so a generous deadline costs nothing when the machine is idle.
START_SECONDS = 180.0
WAIT_SECONDS = 180.0
HTTP_SECONDS = 60.0


@contextmanager
def vigil_run() -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    """`vigil run` on its own embedded cluster: (API port, data dir, process); SIGTERM at
    the end, and the cluster must be gone then."""
    data = Path(tempfile.mkdtemp(prefix="vigil-run-"))
    data.chmod(0o755)
    port = free_port()
    env = vigil_env(
        "", VIGIL_DATA_DIR=str(data), VIGIL_PORT=str(port), VIGIL_EMBEDDED_PG_PORT=str(free_port())
    )
    del env["DATABASE_URL"]
    out = data / "run.log"
    with out.open("wb") as log:
        proc = subprocess.Popen([VIGIL, "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=START_SECONDS)
        yield port, data, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=WAIT_SECONDS)
    assert not (data / "pg" / "data" / "postmaster.pid").exists()
    subprocess.run(["rm", "-rf", str(data)], check=False)


def test_run_on_the_embedded_default(pg_cluster: object) -> None:
    """`vigil run` without DATABASE_URL: private cluster, migrated, API + notifier, a
    ready curl line with a working token; SIGTERM stops it all, the cluster included."""
    with vigil_run() as (port, data, _):
        out = data / "run.log"
        _wait(lambda: "Bearer vgl_" in out.read_text(), what="the curl line")
        token = re.search(r"Bearer (vgl_[A-Za-z0-9_-]+)", out.read_text())
        assert token, out.read_text()
        r = httpx.post(
            f"http://127.0.0.1:{port}/metric",
            headers={"authorization": f"Bearer {token.group(1)}"},
            content=b'{"host":"web-1","name":"backup","type":"ping","value":"5"}',
            timeout=HTTP_SECONDS,
        )
        assert (r.status_code, r.text) == (200, "ok")
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=HTTP_SECONDS).json()
        assert health["mode"] == "portable"
        roles = {r["name"]: r for r in health["resources"]}
        assert {n: (r["status"], r["restarts"]) for n, r in roles.items() if "restarts" in r} == {
            "role:api": ("up", 0),
            "role:notifier": ("up", 0),
            "role:prober": ("up", 0),
            "role:database": ("up", 0),
        }


def _roles(data: Path) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in json.loads((data / "run-status.json").read_text())["roles"]}


def _running(data: Path, role: str) -> int | None:
    """The pid of the role while it is up, per the status file."""
    pid = _roles(data)[role]["pid"]
    return int(pid) if pid else None


def _restarted(data: Path, role: str, old_pid: int) -> bool:
    return _running(data, role) not in (None, old_pid)


def _wait(condition: Callable[[], object], timeout: float = WAIT_SECONDS, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except (httpx.HTTPError, KeyError, ValueError, OSError):
            pass  # not answering yet (the database restarting), or a status file mid-write
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.1)


def test_run_restarts_a_killed_role_while_the_others_serve(pg_cluster: object) -> None:
    """kill -9 of the notifier, then of the prober, then of PostgreSQL: each comes back,
    the API answers throughout, and /health counts the restarts."""
    with vigil_run() as (port, data, proc):
        health_url = f"http://127.0.0.1:{port}/health"
        for role in ("notifier", "prober"):
            _wait(partial(_running, data, role), what=f"the {role} to be up")
            pid = _running(data, role)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            # the API keeps serving
            assert httpx.get(health_url, timeout=HTTP_SECONDS).status_code == 200
            _wait(partial(_restarted, data, role, pid), what=f"the {role} to be restarted")
            assert proc.poll() is None
        postmaster = int((data / "pg" / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGKILL)
        _wait(
            lambda: (
                httpx.get(health_url, timeout=HTTP_SECONDS).status_code == 200
                and _roles(data)["database"]["restarts"] >= 1
            ),
            what="the database to be restarted and the API to answer",
        )
        restarts = {
            r["name"]: r["restarts"]
            for r in httpx.get(health_url, timeout=HTTP_SECONDS).json()["resources"]
            if "restarts" in r
        }
        assert restarts == {
            "role:api": 0,
            "role:notifier": 1,
            "role:prober": 1,
            "role:database": 1,
        }
        assert "notifier exited with status -9; restarting" in (data / "run.log").read_text()
