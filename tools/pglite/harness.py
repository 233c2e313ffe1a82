"""Start/stop the PGlite + TimescaleDB test server (tools/pglite/server.mjs).

Test-only helper; standard library only. Typical pytest use::

    proc = start_pglite(54329, tmp_path_factory.mktemp("pglite"))
    try:
        yield dsn(54329)
    finally:
        stop(proc)
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

TOOL_DIR = pathlib.Path(__file__).resolve().parent
READY_MARK = "PGLITE READY"


class PGliteError(RuntimeError):
    """The server could not be installed or started."""


def dsn(port: int, host: str = "127.0.0.1") -> str:
    """libpq conninfo for the server (no password needed; no SSL)."""
    return f"host={host} port={port} user=postgres dbname=postgres sslmode=disable"


def _npm_ci() -> None:
    if (TOOL_DIR / "node_modules" / "@electric-sql" / "pglite-socket").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise PGliteError("npm not found on PATH (Node >= 20 is required)")
    res = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=TOOL_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise PGliteError(f"npm ci failed in {TOOL_DIR}:\n{res.stdout}\n{res.stderr}")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def start_pglite(
    port: int,
    workdir: pathlib.Path,
    *,
    data_dir: pathlib.Path | None = None,
    host: str = "127.0.0.1",
    timeout: float = 60.0,
) -> subprocess.Popen[bytes]:
    """Install (npm ci) if needed, start server.mjs and wait until it is ready.

    stdout/stderr go to ``workdir/pglite.out`` / ``workdir/pglite.err``.
    ``data_dir=None`` means an in-memory database.
    """
    _npm_ci()
    node = shutil.which("node")
    if node is None:
        raise PGliteError("node not found on PATH (Node >= 20 is required)")
    if _port_open(host, port):
        raise PGliteError(f"port {host}:{port} is already in use")
    workdir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = workdir / "pglite.out", workdir / "pglite.err"
    cmd = [node, str(TOOL_DIR / "server.mjs"), "--host", host, "--port", str(port)]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=TOOL_DIR, stdout=out, stderr=err, env=dict(os.environ))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PGliteError(
                f"server.mjs exited with {proc.returncode}:\n"
                + err_path.read_text(errors="replace")[-4000:]
            )
        if READY_MARK in out_path.read_text(errors="replace") and _port_open(host, port):
            return proc
        time.sleep(0.05)
    stop(proc)
    raise PGliteError(f"server.mjs not ready after {timeout}s; see {err_path}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM the server (clean shutdown), SIGKILL if it hangs; returns exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
