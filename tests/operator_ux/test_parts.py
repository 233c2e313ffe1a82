"""The parts behind the operator's frictions, each on its own: the kept quickstart token,
psql's command line (no password in it), `vigil psql` on DATABASE_URL, and the prober's
log levels (state changes at INFO, repeated failures at DEBUG)."""

from __future__ import annotations

import logging
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from prober import service as prober_service
from tests.support.processes import VIGIL, vigil_env
from tests.support.targets import Target
from tests.support.uptime import add, later, run_checks
from vigil import tokens
from vigil.cli.main import quickstart_token
from vigil.cli.psql import psql_command

Conn = psycopg.Connection[tuple[object, ...]]


def test_quickstart_token_is_kept_while_active(conn: Conn, tmp_path: Path) -> None:
    kept = tmp_path / "quickstart-token"
    first = quickstart_token(conn, kept)
    assert kept.read_text() == first + "\n"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert quickstart_token(conn, kept) == first  # a restart: the same token
    stored = [row[0] for row in conn.execute("select token_hash from vigil.api_tokens")]
    assert len(stored) == 1 and isinstance(stored[0], bytes)
    assert first.encode() not in stored[0]  # only the hash is in the database
    # Revoked (or the file edited): a new token, the old one stays revoked.
    assert tokens.revoke(conn, "quickstart")
    second = quickstart_token(conn, kept)
    assert second != first and kept.read_text().strip() == second
    kept.write_text("vgl_not-a-token\n")
    third = quickstart_token(conn, kept)
    assert third not in (first, second) and kept.read_text().strip() == third
    active = conn.execute(
        "select count(*) from vigil.api_tokens where name = 'quickstart' and revoked_at is null"
    ).fetchone()
    assert active == (1,)


def test_psql_command_keeps_the_password_off_the_command_line() -> None:
    argv, env = psql_command(
        "postgresql://ops:s3cret@db.example:6543/vigil?sslmode=require", ["-c", "select 1"], {}
    )
    assert "s3cret" not in " ".join(argv)
    assert env["PGPASSWORD"] == "s3cret"
    assert argv[1] == "--dbname" and argv[-2:] == ["-c", "select 1"]
    for part in ("host=db.example", "port=6543", "user=ops", "dbname=vigil", "sslmode=require"):
        assert part in argv[2]
    argv, env = psql_command("postgresql://vigil@127.0.0.1:5432/x", [], {"HOME": "/root"})
    assert "PGPASSWORD" not in env and env["HOME"] == "/root"


def test_vigil_psql_on_database_url(dsn: str) -> None:
    result = subprocess.run(
        [
            VIGIL,
            "psql",
            "--",
            "-tAc",
            "select current_database(), to_regclass('vigil.services') is not null",
        ],
        env=vigil_env(dsn),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{dsn.rsplit('/', 1)[1]}|t"


@pytest.fixture
def target() -> Iterator[Target]:
    with Target() as t:
        yield t


def test_prober_logs_state_changes_at_info_and_repeats_at_debug(
    dsn: str,
    conn: Conn,
    target: Target,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG, logger="prober.service")
    # What this process saw of service ids in other tests' databases is not this one's past.
    monkeypatch.setattr(prober_service, "_last_states", {})
    add(conn, "web", target.base + "/switch")
    target.switch_ok = False

    def round_at(seconds: int) -> list[tuple[int, str]]:
        caplog.clear()
        assert run_checks(dsn, now=later(conn, seconds)) == 1
        return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "prober.service"]

    assert round_at(0) == [(logging.INFO, "service 'web': down (HTTP 500)")]  # first seen
    assert round_at(15) == [(logging.DEBUG, "service 'web': HTTP 500 (state down)")]
    assert round_at(30) == [(logging.DEBUG, "service 'web': HTTP 500 (state down)")]
    target.switch_ok = True
    assert round_at(45) == [(logging.INFO, "service 'web': down -> up (HTTP 200)")]
    assert round_at(60) == []  # up and staying up: nothing
    target.switch_ok = False
    assert round_at(75) == [(logging.INFO, "service 'web': up -> down (HTTP 500)")]
