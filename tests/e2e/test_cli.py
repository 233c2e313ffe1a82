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
        wait_http(f"http://127.0.0.1:{port}/health", timeout=60)
        yield port, data, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert not (data / "pg" / "data" / "postmaster.pid").exists()
    subprocess.run(["rm", "-rf", str(data)], check=False)


def test_run_on_the_embedded_default(pg_cluster: object) -> None:
    """`vigil run` without DATABASE_URL: private cluster, migrated, API + notifier, a
    ready curl line with a working token; SIGTERM stops it all, the cluster included."""
    with vigil_run() as (port, data, _):
        out = data / "run.log"
        deadline = time.monotonic() + 10
        while "Bearer vgl_" not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        token = re.search(r"Bearer (vgl_[A-Za-z0-9_-]+)", out.read_text())
        assert token, out.read_text()
        r = httpx.post(
            f"http://127.0.0.1:{port}/metric",
            headers={"authorization": f"Bearer {token.group(1)}"},
            content=b'{"host":"web-1","name":"backup","type":"ping","value":"5"}',
        )
        assert (r.status_code, r.text) == (200, "ok")
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
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


def _restarted(data: Path, role: str, old_pid: int) -> bool:
    return _roles(data)[role]["pid"] not in (None, old_pid)


def _wait(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass  # not answering yet (the database restarting), or a status file mid-write
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_run_restarts_a_killed_role_while_the_others_serve(pg_cluster: object) -> None:
    """kill -9 of the notifier, then of the prober, then of PostgreSQL: each comes back,
    the API answers throughout, and /health counts the restarts."""
    with vigil_run() as (port, data, proc):
        health_url = f"http://127.0.0.1:{port}/health"
        for role in ("notifier", "prober"):
            pid = _roles(data)[role]["pid"]
            os.kill(pid, signal.SIGKILL)
            assert httpx.get(health_url, timeout=15).status_code == 200  # the API keeps serving
            _wait(partial(_restarted, data, role, pid))
            assert proc.poll() is None
        postmaster = int((data / "pg" / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGKILL)
        _wait(
            lambda: (
                httpx.get(health_url).status_code == 200
                and _roles(data)["database"]["restarts"] == 1
            )
        )
        restarts = {
            r["name"]: r["restarts"]
            for r in httpx.get(health_url, timeout=15).json()["resources"]
            if "restarts" in r
        }
        assert restarts == {
            "role:api": 0,
            "role:notifier": 1,
            "role:prober": 1,
            "role:database": 1,
        }
        assert "notifier exited with status -9; restarting" in (data / "run.log").read_text()
