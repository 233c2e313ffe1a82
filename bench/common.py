"""Shared benchmark plumbing: a private PostgreSQL cluster and real Vigil processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from tests.support.datasets import SHARED_DATA_ENV, nab_csv, nab_dir, parse_nab_csv
from vigil.cluster import Cluster
from vigil.migrate import upgrade

VIGIL = str(Path(sys.executable).parent / "vigil")


def post_requests(url: str, path: str, headers: dict[str, str], bodies: list[bytes]) -> list[bytes]:
    """Complete HTTP/1.1 POST requests (head + body) for the bodies, encoded before timing;
    the headers go in the order given, content-length last."""
    host = url.split("://", 1)[1]
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return [
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\n{head}content-length: {len(body)}\r\n\r\n"
        .encode() + body
        for body in bodies
    ]  # fmt: skip


async def send_all(
    url: str, requests: list[bytes], clients: int, accepted: Callable[[bytes, bytes], bool]
) -> float:
    """Posts the pre-encoded requests, in order, over `clients` keep-alive connections;
    returns the seconds taken. Raises RuntimeError at the first answer (head, body) that
    `accepted` refuses.

    A deliberately light load generator (raw asyncio streams, nothing encoded while timing):
    it shares the CPUs with the API and PostgreSQL under test."""
    queue = list(reversed(requests))
    host, port = url.split("://", 1)[1].rsplit(":", 1)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while queue:
                writer.write(queue.pop())
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                lower = head.lower()
                length = 0
                if b"content-length:" in lower:
                    length = int(lower.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                body = await reader.readexactly(length)
                if not accepted(head, body):
                    raise RuntimeError(f"batch refused: {head[:40]!r} {body[:300]!r}")
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - t0


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


def ensure_debian_package(binary: str, package: str) -> str:
    """The path of `binary`, installing the Debian `package` with apt-get when it is missing
    (with sudo unless root), as scripts/ensure-system-deps does."""
    path = shutil.which(binary)
    if path is None:
        print(f"installing the Debian package {package} (for {binary})", flush=True)
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
            check=True,
            env=env,
        )
        path = shutil.which(binary)
    if path is None:
        raise SystemExit(f"{binary} not found on PATH after installing {package}")
    return path


def require_nab(files: tuple[str, ...], allow_generated: bool) -> None:
    """Exits with how to get the real NAB files when one is missing, unless allow_generated
    (then the data is generated in their shape, with a note)."""
    for file in files:
        nab_values(file, allow_generated)


def nab_values(file: str, allow_generated: bool = False) -> list[float]:
    """The values of a real NAB file from ${SHARED_DATA_ENV}/nab (default ../shared/data/nab
    beside the checkout); exits with how to get them, unless allow_generated (then values of
    the same shape, with a note)."""
    text, real = nab_csv(file)
    if not real:
        where = nab_dir() / file
        if not allow_generated:
            raise SystemExit(
                f"NAB data not found: {where}. Put the Numenta Anomaly Benchmark files "
                f"(https://github.com/numenta/NAB, data/*/{file} and its siblings) in a "
                f"directory nab/ and set {SHARED_DATA_ENV} to its parent, or pass "
                "--allow-generated for values of the same shape."
            )
        print(f"note: {where} is absent; using generated values of its shape", flush=True)
    return [v for _, v in parse_nab_csv(text)]


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of a process (Linux /proc), with its reaped children's."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11 : 15 if children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(data: Path) -> float:
    """CPU time of a PostgreSQL server: postmaster, live and exited backends, helpers."""
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    total = cpu_seconds(postmaster, children=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == postmaster:
                total += cpu_seconds(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return total


@dataclass(frozen=True)
class CompressedChunk:
    """Where the bytes of one compressed chunk of a TimescaleDB hypertable go: per column of
    the compressed chunk table, pg_column_size summed over its rows (a compressed batch of up
    to 1,000 rows per row; the stored size, in the row or in TOAST), then the sizes of its heap
    (row headers, TOAST pointers, free space and the columns kept in the row), its TOAST table
    (with its index), its indexes and its free space and visibility maps."""

    columns: dict[str, int]
    heap: int
    toast: int
    indexes: int
    maps: int

    @property
    def rest(self) -> int:
        """The heap and TOAST bytes that are not column values: headers and free space."""
        return self.heap + self.toast - sum(self.columns.values())


def compressed_chunks(
    conn: psycopg.Connection[tuple[object, ...]], hypertable: str
) -> list[CompressedChunk]:
    """The compressed chunks of HYPERTABLE (a name regclass takes), each measured."""
    names = conn.execute(
        "select format('%%I.%%I', cc.schema_name, cc.table_name)"
        "  from _timescaledb_catalog.chunk c"
        "  join _timescaledb_catalog.chunk cc on cc.id = c.compressed_chunk_id"
        "  join _timescaledb_catalog.hypertable h on h.id = c.hypertable_id"
        " where format('%%I.%%I', h.schema_name, h.table_name)::regclass = %s::regclass",
        (hypertable,),
    ).fetchall()
    out = []
    for (name,) in names:
        columns = [
            str(r[0])
            for r in conn.execute(
                "select attname from pg_attribute where attrelid = %s::regclass"
                " and attnum > 0 and not attisdropped order by attnum",
                (name,),
            ).fetchall()
        ]
        sums = conn.execute(
            sql.SQL("select {} from {}").format(
                sql.SQL(", ").join(
                    sql.SQL("coalesce(sum(pg_column_size({})), 0)::bigint").format(
                        sql.Identifier(c)
                    )
                    for c in columns
                ),
                sql.Identifier(*str(name).split(".")),
            )
        ).fetchone()
        sizes = conn.execute(
            "select pg_relation_size(c.oid), pg_indexes_size(c.oid),"
            " coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),"
            " pg_relation_size(c.oid, 'fsm') + pg_relation_size(c.oid, 'vm')"
            "  from pg_class c where c.oid = %s::regclass",
            (name,),
        ).fetchone()
        assert sums is not None and sizes is not None
        heap, indexes, toast, maps = (int(str(v)) for v in sizes)
        values = {c: int(str(b)) for c, b in zip(columns, sums, strict=True)}
        out.append(CompressedChunk(values, heap, toast, indexes, maps))
    return out
