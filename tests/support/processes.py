"""Starting real Vigil processes (`vigil api`, `vigil notifier`) for end-to-end tests."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import httpx

VIGIL = str(Path(sys.executable).parent / "vigil")


def vigil_env(dsn: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TELEGRAM_", "VIGIL_", "GOOGLE_")) and k != "DATABASE_URL"
    }
    return {**env, "DATABASE_URL": dsn, "VIGIL_POLL_SECONDS": "1", **extra}


def vigil_in_process(dsn: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """`vigil ARGS` run by vigil.cli.main in this process, with the environment of
    vigil_env(dsn, **extra) for its duration: its exit code, stdout and stderr, as subprocess.run
    would give them (a console-script process costs half a second or more under coverage;
    each CLI test file keeps one real console-script run)."""
    from vigil.cli.main import main

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(vigil_env(dsn, **extra))
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: usage errors (2), --help (0)
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(["vigil", *args], code, out.getvalue(), err.getvalue())


@contextmanager
def vigil_process(role: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen([VIGIL, role], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_http(
    url: str,
    timeout: float = 60.0,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Until URL answers below 500. The default leaves room for a process started under coverage
    on a busy two-core machine (15 s was once not enough in CI); a PROC that exits ends the wait
    at once, and LOG's tail goes into the failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    exited = (
        f" (it exited: {proc.returncode})" if proc is not None and proc.poll() is not None else ""
    )
    raise AssertionError(f"{url} did not answer within {timeout}s{exited}\n{tail}")


def wait_until(predicate: object, timeout: float = 15.0, what: str = "condition") -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
