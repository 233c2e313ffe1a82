"""Shared benchmark plumbing: a private PostgreSQL cluster and real Vigil processes."""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from vigil.cluster import Cluster
from vigil.migrate import upgrade

VIGIL = str(Path(sys.executable).parent / "vigil")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def bench_cluster(durable: bool = True) -> Iterator[Cluster]:
    """A fresh cluster with production durability (fsync on) unless durable=False."""
    root = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    root.chmod(0o755)
    conf = {"max_connections": "200", "shared_buffers": "512MB"}
    if not durable:
        conf.update(fsync="off", synchronous_commit="off")
    cluster = Cluster(root / "pg", free_port(), conf=conf, dbname="vigil")
    cluster.start()
    try:
        upgrade(cluster.dsn())
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
