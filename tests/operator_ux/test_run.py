"""`vigil run` as an operator meets it: the quickstart token survives restarts, Ctrl+C
(SIGINT to the terminal's whole process group) stops everything with one line and no
traceback, `vigil token rotate quickstart` replaces the token, and `vigil psql` opens the
embedded database (started for the session, stopped after)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.support.processes import VIGIL, vigil_env, wait_http, wait_until
from vigil.cluster import Cluster

START_SECONDS = 180.0
TOKEN = re.compile(r"Bearer (vgl_[A-Za-z0-9_-]+)")
BEAT = b'{"host":"web-1","name":"backup","type":"ping","value":"5"}'


@pytest.fixture(scope="module")
def data() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vigil-ux-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        # Never leave the embedded server running, even when a test failed half-way.
        Cluster(path / "pg", 0).stop("immediate")
        subprocess.run(["rm", "-rf", str(path)], check=False)


def embedded_env(data: Path, port: int) -> dict[str, str]:
    env = vigil_env(
        "",
        VIGIL_DATA_DIR=str(data),
        VIGIL_PORT=str(port),
        VIGIL_EMBEDDED_PG_PORT=str(free_port()),
    )
    del env["DATABASE_URL"]
    return env


def run_until_ctrl_c(data: Path, port: int) -> tuple[str, str]:
    """Starts `vigil run`, posts a heartbeat with the banner's token, then Ctrl+C; the
    token and the whole output."""
    log = data / f"run-{port}.log"
    with log.open("wb") as out:
        # Its own session: the process group a terminal's Ctrl+C is sent to.
        proc = subprocess.Popen(
            [VIGIL, "run"],
            env=embedded_env(data, port),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=START_SECONDS)
        wait_until(lambda: TOKEN.search(log.read_text()), what="the banner")
        match = TOKEN.search(log.read_text())
        assert match
        r = httpx.post(
            f"http://127.0.0.1:{port}/metric",
            headers={"authorization": f"Bearer {match.group(1)}"},
            content=BEAT,
            timeout=30,
        )
        assert (r.status_code, r.text) == (200, "ok")
        # The roles run outside the terminal's process group: Ctrl+C reaches the
        # supervisor only, which stops them once, in order.
        roles = json.loads((data / "run-status.json").read_text())["roles"]
        pids = [int(role["pid"]) for role in roles if role.get("pid")]
        assert len(pids) == 3
        assert all(os.getpgid(pid) != proc.pid for pid in pids)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return match.group(1), log.read_text()


def test_restart_keeps_the_token_and_ctrl_c_is_quiet(data: Path) -> None:
    first, out = run_until_ctrl_c(data, free_port())
    assert "Traceback" not in out and "CancelledError" not in out, out
    assert "KeyboardInterrupt" not in out, out
    assert out.count("vigil: stopping") == 1
    assert "exited with status" not in out  # no role died of the signal
    assert not (data / "pg" / "data" / "postmaster.pid").exists()  # the database stopped too
    kept = data / "quickstart-token"
    assert kept.read_text().strip() == first
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600

    second, out = run_until_ctrl_c(data, free_port())  # the heartbeat is accepted again
    assert second == first
    assert "Traceback" not in out, out


def test_rotate_and_psql_on_the_embedded_database(data: Path) -> None:
    env = embedded_env(data, free_port())
    old = (data / "quickstart-token").read_text().strip()
    rotated = subprocess.run(
        [VIGIL, "token", "rotate", "quickstart"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip().splitlines()[-1]
    assert new.startswith("vgl_") and new != old
    assert (data / "quickstart-token").read_text().strip() == new

    def active(token: str) -> str:
        """1 when `token` is the active quickstart token (asked through psql's stdin)."""
        psql = subprocess.run(
            [VIGIL, "psql", "--", "-tA", "-v", f"h={hashlib.sha256(token.encode()).hexdigest()}"],
            input="select count(*) from vigil.api_tokens where name = 'quickstart'"
            " and revoked_at is null and token_hash = decode(:'h', 'hex');",
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert psql.returncode == 0, psql.stderr
        return psql.stdout.strip()

    assert (active(new), active(old)) == ("1", "0")
    who = subprocess.run(
        [VIGIL, "psql", "--", "-tAc", "select current_user || '@' || current_database()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert who.stdout.strip() == "vigil@vigil"
    assert not (data / "pg" / "data" / "postmaster.pid").exists()  # stopped after the session
    failed = subprocess.run(
        [VIGIL, "psql", "--", "-tAc", "select no_such_column"], env=env, capture_output=True
    )
    assert failed.returncode != 0 and b"no_such_column" in failed.stderr


def test_ctrl_c_on_a_role_run_alone(dsn: str, tmp_path: Path) -> None:
    """`vigil api` in a terminal: Ctrl+C ends it with one line, not a traceback."""
    port = free_port()
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [VIGIL, "api"],
            env=vigil_env(dsn, VIGIL_PORT=str(port), VIGIL_DATA_DIR=str(tmp_path)),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=60)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out_text = log.read_text()
    assert "Traceback" not in out_text, out_text
    assert out_text.rstrip().endswith("vigil: interrupted")
