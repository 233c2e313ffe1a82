"""Helpers for the `vigil send` tests: the real CLI as a subprocess against a real API."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
import pytest

from tests.conftest import venv_bin
from vigil.cli.main import main

Conn = psycopg.Connection[tuple[Any, ...]]
VIGIL = venv_bin("vigil")


def sender_env(tmp_path: Path, url: str | None, token: str | None, **extra: str) -> dict[str, str]:
    """The sender's environment: only its own settings, state and config under tmp_path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIGIL_", "TELEGRAM_", "GOOGLE_")) and k != "DATABASE_URL"
    }
    env.update(
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        HOME=str(tmp_path),
    )
    if url is not None:
        env["VIGIL_URL"] = url
    if token is not None:
        env["VIGIL_TOKEN"] = token
    env.update(extra)
    return env


class Sender:
    """A `vigil send ...` process; its stderr goes to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                [VIGIL, "send", *args], env=env, stdout=subprocess.DEVNULL, stderr=err
            )

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=20)


@pytest.fixture
def senders() -> Iterator[list[Sender]]:
    """Sender processes a test starts, killed at its end if still running."""
    started: list[Sender] = []
    yield started
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def send(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`vigil send ARGS` to completion."""
    return subprocess.run(
        [VIGIL, "send", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def journal(conn: Conn) -> list[tuple[Any, ...]]:
    """(message, fields, unit, host, at) of the stored journal lines, in time order."""
    return conn.execute(
        "select message, fields, unit, host, at from vigil.journal order by at, id"
    ).fetchall()


def count(conn: Conn) -> int:
    row = conn.execute("select count(*) from vigil.journal").fetchone()
    assert row is not None
    return int(row[0])


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


Cli = Callable[[list[str], dict[str, str]], Result]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Cli:
    """`vigil ARGS` run in this process (the command's own entry point; faster than a
    process) with the environment given. Log messages go to pytest's caplog, not stderr."""

    def run(args: list[str], env: dict[str, str]) -> Result:
        for key in [k for k in os.environ if k.startswith("VIGIL_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        capfd.readouterr()
        code = main(args)
        out, err = capfd.readouterr()
        return Result(code, out, err)

    return run
