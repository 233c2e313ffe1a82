"""The database failing under a real API process: PostgreSQL killed and restarted under
mixed ingest (every acknowledged write is stored), and a full disk (503 with a reason,
recovery when space returns, nothing acknowledged lost)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import free_port
from tests.support.processes import vigil_env, vigil_process, wait_http
from vigil import tokens
from vigil.cluster import Cluster
from vigil.migrate import upgrade


@dataclass
class Acked:
    """What the API acknowledged (2xx), and every status it answered."""

    metrics: set[str] = field(default_factory=set)
    points: set[str] = field(default_factory=set)
    lines: set[str] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1


def kill_postmaster(cluster: Cluster) -> None:
    pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while cluster.running() and time.monotonic() < deadline:
        time.sleep(0.05)


@contextmanager
def api_on(cluster: Cluster, tmp: Path) -> Iterator[tuple[str, str]]:
    upgrade(cluster.dsn())
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        token = tokens.create(conn, "faults")
    port = free_port()
    env = vigil_env(cluster.dsn(), VIGIL_PORT=str(port))
    with vigil_process("api", env, tmp / "api.log") as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/ping")
        yield url, token
        assert proc.poll() is None, (tmp / "api.log").read_text()[-2000:]
    log = (tmp / "api.log").read_text()
    assert "Traceback" not in log, log[-3000:]


def sender(url: str, token: str, kind: str, acked: Acked, stop: threading.Event) -> None:
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        n = 0
        while not stop.is_set():
            n += 1
            key = f"{kind}-{threading.get_ident()}-{n}"
            try:
                if kind == "metric":
                    body = {"host": key, "name": "backup", "type": "ping", "value": "5"}
                    r = client.post("/metric", content=json.dumps(body))
                elif kind == "point":
                    r = client.post("/v1/metrics/batch", json=[{"name": key, "value": n}])
                else:
                    stamp = str(int(time.time() * 1_000_000))
                    line = {"__REALTIME_TIMESTAMP": stamp, "_HOSTNAME": "h", "MESSAGE": key}
                    r = client.post("/journal", content=json.dumps(line))
            except httpx.HTTPError:
                acked.count(0)  # no answer: not acknowledged
                time.sleep(0.05)
                continue
            acked.count(r.status_code)
            if r.status_code < 300:
                with acked.lock:
                    {"metric": acked.metrics, "point": acked.points, "line": acked.lines}[kind].add(
                        key
                    )
            else:
                time.sleep(0.05)


def stored(dsn: str) -> tuple[set[str], set[str], set[str]]:
    with psycopg.connect(dsn) as conn:
        metrics = {str(r[0]) for r in conn.execute("select host from vigil.metrics")}
        points = {str(r[0]) for r in conn.execute("select name from vigil.series")}
        lines = {str(r[0]) for r in conn.execute("select message from vigil.journal")}
    return metrics, points, lines


@pytest.fixture
def own_cluster() -> Iterator[tuple[Cluster, Path]]:
    root = Path(tempfile.mkdtemp(prefix="vigil-faults-"))
    root.chmod(0o755)
    cluster = Cluster(root / "pg", free_port(), conf={"fsync": "on"})
    cluster.start()
    try:
        yield cluster, root
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_postgresql_killed_under_mixed_ingest_loses_nothing_acknowledged(
    own_cluster: tuple[Cluster, Path],
) -> None:
    cluster, root = own_cluster
    acked = Acked()
    with api_on(cluster, root) as (url, token):
        stop = threading.Event()
        threads = [
            threading.Thread(target=sender, args=(url, token, kind, acked, stop))
            for kind in ("metric", "metric", "point", "point", "line", "line")
        ]
        for thread in threads:
            thread.start()
        try:
            for _ in range(3):
                time.sleep(1.5)
                kill_postmaster(cluster)
                time.sleep(0.5)
                cluster.start()
            time.sleep(1.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
    metrics, points, lines = stored(cluster.dsn())
    assert acked.metrics and acked.points and acked.lines
    assert acked.metrics <= metrics
    assert acked.points <= points
    assert acked.lines <= lines
    assert set(acked.statuses) <= {0, 200, 201, 503}, acked.statuses  # never a 500
    assert acked.statuses.get(503, 0) + acked.statuses.get(0, 0) > 0  # the kills were felt


@pytest.fixture
def small_disk() -> Iterator[tuple[Cluster, Path]]:
    """A cluster whose data directory is on a 160 MB tmpfs."""
    root = Path(tempfile.mkdtemp(prefix="vigil-disk-"))
    root.chmod(0o755)
    disk = root / "disk"
    disk.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160m,mode=0755", "tmpfs", str(disk)], check=True
    )
    cluster = Cluster(
        disk / "pg", free_port(), conf={"max_wal_size": "64MB", "min_wal_size": "32MB"}
    )
    try:
        cluster.start()
        yield cluster, root
    finally:
        cluster.stop()
        subprocess.run(["umount", "-l", str(disk)], check=False)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_full_disk_answers_503_and_recovers(small_disk: tuple[Cluster, Path]) -> None:
    cluster, root = small_disk
    disk = cluster.root.parent
    with api_on(cluster, root) as (url, token):
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler = disk / "filler"
        with filler.open("wb") as f:  # leave ~2 MB
            f.write(b"\0" * max(free - 2 * 1024 * 1024, 0))
        headers = {"authorization": f"Bearer {token}"}
        acked: set[str] = set()
        refused: list[httpx.Response] = []
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for i in range(400):
                names = [f"disk-{i}-{j}" for j in range(200)]
                batch = [{"name": name, "value": j} for j, name in enumerate(names)]
                r = client.post("/v1/metrics/batch", json=batch)
                if r.status_code == 200:
                    acked.update(names)
                else:
                    refused.append(r)
                    # PostgreSQL may have stopped (a failed WAL write): later requests would
                    # each wait the API's whole connection timeout for the same 503.
                    if len(refused) >= 3 or not cluster.running():
                        break
            assert refused, "the disk never filled"
            assert all(r.status_code == 503 for r in refused), [r.text for r in refused]
            assert "disk full" in refused[0].text, refused[0].text
            filler.unlink()
            # The server may restart after a failed WAL write (crash recovery on the tmpfs);
            # on a loaded 2-core machine that has taken more than a minute.
            deadline = time.monotonic() + 120
            while True:
                if not cluster.running():
                    cluster.start()
                try:
                    r = client.post("/v1/metrics/batch", json=[{"name": "after", "value": 1}])
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "no recovery after space returned"
                time.sleep(0.5)
    _, points, _ = stored(cluster.dsn())
    assert acked <= points
    assert "after" in points
