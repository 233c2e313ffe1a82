"""Vigil beside VictoriaMetrics: the same data, the same client, ratios per round.

Both get the same real NAB values as Influx line protocol (`POST /write`, batches of 5,000
lines, 4 concurrent keep-alive senders, bodies encoded before timing), each into a fresh
store per load (Vigil: a database copied from a migrated template, a real `vigil api`
process, portable mode; VictoriaMetrics: the Debian `victoria-metrics` binary, installed
with apt-get when missing, on a free port with a temporary data directory). Rounds alternate
which system goes first; each figure is printed per round and as the Vigil/VM ratio with
min/median/max over rounds. Per number of series:

- ingest points/s, batches sliced by time (every series' point of one instant, then the
  next: how agents send) and ordered by series (each series' points together);
- CPU seconds per million points: PostgreSQL (postmaster and every backend, from /proc) +
  the API process, against VictoriaMetrics' process; deferred work counted separately:
  `vigil jobs run --all` after the load (PostgreSQL + the command), and VictoriaMetrics'
  forced flush and merge;
- bytes per point after all deferred work: Vigil's growth of pg_total_relation_size over
  every table (series, points, rollups, their indexes and TOAST; TimescaleDB chunks
  included), VictoriaMetrics' data and indexdb directories after a forced flush and merge;
  and Vigil's "in use" figure after VACUUM FULL (portable mode: the emptied hot table and
  rollups keep their pages for the next day's points, which a one-off load overstates).

Then one series of a year of 10-second points (nyc_taxi values, cycled), loaded the same way
into both: hourly averages over the year, Vigil's `GET /v1/metrics/NAME/hour/START/END`
against VictoriaMetrics' `query_range` of `avg_over_time(NAME[1h])` with step 1h (its
response cache off), median per round.

The data ends --days-ago (8) days ago, older than any "compress or pack after" age, so that
the deferred work has everything to do that it does to data over its 90 days. NAB values
come from `$VIGIL_SHARED_DATA/nab` (default: `../shared/data/nab` beside the checkout);
`--allow-generated` uses values of the same shape when the files are absent.

TimescaleDB mode (`--timescale 1000,10000`) runs on the test lane's PGlite + TimescaleDB
server (tools/pglite, npm): it takes one connection and no COPY, so the API cannot ingest
there; the same points go in as INSERT statements of 5,000 rows, and the figures are the
deferred work (`vigil jobs run --all`: aggregates, compression, retention) and the bytes per
point after it, per part (raw points, each aggregate, series) and, for the raw points, per
column of the compressed batches and per kind of overhead (heap and TOAST, indexes, maps).

    make bench-peers                               # 1k/10k/200k series, 1M points, 3 rounds,
                                                   # + TimescaleDB at 1k/10k (~45 min, 2 cores)
    .venv/bin/python bench/peers.py --quick        # 1k and 10k series, fewer points (~6 min)
    .venv/bin/python bench/peers.py --sizes 1000 --points 500000 --rounds 2
    .venv/bin/python bench/peers.py --sizes '' --skip-query --timescale 1000   # that only
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.series.store import scaled_decimal
from bench.common import (
    VIGIL,
    bench_cluster,
    compressed_chunks,
    cpu_seconds,
    ensure_debian_package,
    free_port,
    nab_values,
    post_requests,
    process,
    send_all,
    server_cpu_seconds,
    wait_http,
)
from vigil import tokens
from vigil.migrate import upgrade

NAB_FILES = (
    "ec2_cpu_utilization_825cc2.csv",
    "ec2_disk_write_bytes_1ef3de.csv",
    "nyc_taxi.csv",
    "rds_cpu_utilization_cc0c53.csv",
)
STEP_S = 10
BATCH = 5000
SENDERS = 4
YEAR_S = 365 * 24 * 3600
Query = Callable[[datetime, datetime], float]


# ---- data ---------------------------------------------------------------------------------


def metric(i: int) -> str:
    """The measurement of series i (its NAB file): ec2_cpu, ec2_disk, nyc_taxi, rds_cpu."""
    file = NAB_FILES[i % len(NAB_FILES)]
    return "_".join(file.split("_")[:2]).removesuffix(".csv")


def lines(
    values: list[list[float]], n_series: int, per_series: int, end_ns: int, by_series: bool
) -> list[bytes]:
    """Batches of Influx lines: series i = measurement of NAB file i % 4, tag host=h<i//4>,
    its values from that file starting at a per-series offset, one point every 10 s up to
    end_ns; ordered by time then series (sliced by time), or by series then time."""
    heads = [f"{metric(i)},host=h{i // len(NAB_FILES)} value=" for i in range(n_series)]
    start_ns = end_ns - (per_series - 1) * STEP_S * 1_000_000_000
    stamps = [f" {start_ns + j * STEP_S * 1_000_000_000}" for j in range(per_series)]

    def point(i: int, j: int) -> str:
        vals = values[i % len(values)]
        return heads[i] + repr(vals[(j + i * 37) % len(vals)]) + stamps[j]

    if by_series:
        order = ((i, j) for i in range(n_series) for j in range(per_series))
    else:
        order = ((i, j) for j in range(per_series) for i in range(n_series))
    out: list[bytes] = []
    chunk: list[str] = []
    for i, j in order:
        chunk.append(point(i, j))
        if len(chunk) == BATCH:
            out.append("\n".join(chunk).encode())
            chunk = []
    if chunk:
        out.append("\n".join(chunk).encode())
    return out


def requests_for(base: str, path: str, headers: dict[str, str], bodies: list[bytes]) -> list[bytes]:
    """Complete HTTP/1.1 line-protocol writes, encoded before timing."""
    return post_requests(base, path, {**headers, "content-type": "text/plain"}, bodies)


def no_content(head: bytes, body: bytes) -> bool:
    """A write both systems accepted (204 No Content)."""
    return head.startswith(b"HTTP/1.1 204 ")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---- the two systems ----------------------------------------------------------------------


@dataclass
class Load:
    """One load into one fresh store: rate, CPU per million points, deferred work, bytes."""

    rate: float = 0.0
    cpu_per_m: float = 0.0
    parts: str = ""
    deferred_per_m: float = 0.0
    bytes_per_point: float = 0.0
    live_bytes_per_point: float = 0.0  # after VACUUM FULL: the space the data keeps in use


class Vigil:
    """A private cluster with a migrated template database; per load a fresh copy of it
    and a fresh `vigil api` process."""

    name = "Vigil"

    def __init__(self, stack: contextlib.ExitStack, work: Path) -> None:
        self.cluster = stack.enter_context(bench_cluster())
        self.work = work
        with psycopg.connect(self.cluster.dsn(), autocommit=True) as conn:
            self.token = tokens.create(conn, "bench")
        with psycopg.connect(self.cluster.dsn("postgres"), autocommit=True) as conn:
            conn.execute("create database bench_template template vigil")
        self.n = 0
        self.last_breakdown: list[tuple[str, int]] = []

    @contextlib.contextmanager
    def fresh(self) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
        """(database DSN, API base URL, API process) of a new copy of the template."""
        self.n += 1
        db = f"bench_{self.n}"
        admin = self.cluster.dsn("postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"create database {db} template bench_template")
        dsn = self.cluster.dsn(db)
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "VIGIL_PORT": str(port),
            "VIGIL_DATA_DIR": str(self.work),
            "VIGIL_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        }
        base = f"http://127.0.0.1:{port}"
        try:
            with process([VIGIL, "api"], env, self.work / "api.log") as proc:
                wait_http(f"{base}/ping")
                yield dsn, base, proc
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"drop database {db} with (force)")

    def load(self, bodies: list[bytes], points: int, deferred: bool) -> Load:
        with self.fresh() as (dsn, base, api):
            headers = {"authorization": f"Bearer {self.token}"}
            reqs = requests_for(base, "/write?db=bench&precision=ns", headers, bodies)
            size0 = relation_bytes(dsn)
            pg0, api0 = server_cpu_seconds(self.cluster.data), cpu_seconds(api.pid)
            seconds = asyncio.run(send_all(base, reqs, SENDERS, no_content))
            time.sleep(0.3)  # let the last commits' backends settle before reading /proc
            pg = server_cpu_seconds(self.cluster.data) - pg0
            api_s = cpu_seconds(api.pid) - api0
            out = Load(rate=points / seconds, cpu_per_m=(pg + api_s) / points * 1e6)
            out.parts = f"PostgreSQL {pg / points * 1e6:.2f} + API {api_s / points * 1e6:.2f}"
            if deferred:
                pg0, cli0 = server_cpu_seconds(self.cluster.data), children_cpu()
                run = subprocess.run(
                    [VIGIL, "jobs", "run", "--all"],
                    env={**os.environ, "DATABASE_URL": dsn, "VIGIL_DATA_DIR": str(self.work)},
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if run.returncode != 0:
                    raise RuntimeError(f"vigil jobs run failed: {run.stdout}{run.stderr}")
                time.sleep(0.3)
                pg = server_cpu_seconds(self.cluster.data) - pg0
                cli = children_cpu() - cli0
                out.deferred_per_m = (pg + cli) / points * 1e6
                out.parts += (
                    f"; deferred: PostgreSQL {pg / points * 1e6:.2f} + the command "
                    f"{cli / points * 1e6:.2f}"
                )
                out.bytes_per_point = (relation_bytes(dsn) - size0) / points
                # The emptied hot table and rollups keep their pages (reused by the next
                # day's points); what the data itself occupies is measured after VACUUM FULL.
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("vacuum full")
                out.live_bytes_per_point = (relation_bytes(dsn) - size0) / points
                self.last_breakdown = relations_in_use(dsn)
            return out

    @contextlib.contextmanager
    def query_setup(self, bodies: list[bytes], points: int) -> Iterator[Query]:
        """The series loaded, deferred work done; yields a timed query (ms)."""
        with self.fresh() as (dsn, base, _):
            headers = {"authorization": f"Bearer {self.token}"}
            reqs = requests_for(base, "/write?db=bench&precision=ns", headers, bodies)
            asyncio.run(send_all(base, reqs, SENDERS, no_content))
            env = {**os.environ, "DATABASE_URL": dsn, "VIGIL_DATA_DIR": str(self.work)}
            subprocess.run([VIGIL, "jobs", "run", "--all"], env=env, check=True,
                           capture_output=True)  # fmt: skip
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("vacuum analyze")
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:

                def query(lo: datetime, hi: datetime) -> float:
                    path = f"/v1/metrics/year_value/hour/{lo:%Y-%m-%d}/{hi:%Y-%m-%d}"
                    t0 = time.perf_counter()
                    r = client.get(path)
                    ms = (time.perf_counter() - t0) * 1000
                    r.raise_for_status()
                    assert len(r.json()["data"]) > 8000, r.text[:200]
                    return ms

                yield query


USER_TABLES = """
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'm') and n.nspname not in ('pg_catalog', 'information_schema')
   and n.nspname not like 'pg_temp%' and n.nspname not like 'pg_toast%'"""


def relation_bytes(dsn: str) -> int:
    """pg_total_relation_size summed over every table and materialized view outside the
    system schemas (indexes and TOAST included; TimescaleDB's chunks are tables)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "select coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint" + USER_TABLES
        ).fetchone()
    assert row is not None
    return int(str(row[0]))


def breakdown(dsn: str) -> list[tuple[str, int]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select n.nspname || '.' || c.relname, pg_total_relation_size(c.oid)"
            + USER_TABLES
            + " order by 2 desc limit 6"
        ).fetchall()
    return [(str(r[0]), int(str(r[1]))) for r in rows]


def relations_in_use(dsn: str) -> list[tuple[str, int]]:
    """The largest tables (heap and TOAST) and indexes apart, each by itself: where the
    bytes per point go (portable mode, after VACUUM FULL)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select n.nspname || '.' || c.relname, pg_table_size(c.oid)"
            "  from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where c.relkind in ('r', 'm', 'i') and n.nspname = 'vigil'"
            " order by 2 desc limit 8"
        ).fetchall()
    return [(str(r[0]), int(str(r[1]))) for r in rows]


def tier_bytes(dsn: str) -> list[tuple[str, int]]:
    """TimescaleDB mode: hypertable_size of the raw points and of each continuous
    aggregate (its materialization hypertable), compressed chunks included."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select 'raw points', hypertable_size('vigil.points_data')"
            " union all"
            " select c.view_name::text, hypertable_size(format('%I.%I',"
            "   c.materialization_hypertable_schema, c.materialization_hypertable_name))"
            "  from timescaledb_information.continuous_aggregates c"
            " where c.view_schema = 'vigil'"
            " union all"
            " select 'series', pg_total_relation_size('vigil.series')"
        ).fetchall()
    return [(str(r[0]), int(str(r[1] or 0))) for r in rows]


def compressed_columns(dsn: str, hypertable: str) -> list[tuple[str, int]]:
    """TimescaleDB mode: where the bytes of a hypertable's compressed chunks go, summed over
    them (bench.common.compressed_chunks): each column (batch metadata together), the rest of
    their heap and TOAST, their indexes; the free space and visibility maps of the compressed
    chunks, and the emptied uncompressed chunks, are in "maps"."""
    out: dict[str, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for chunk in compressed_chunks(conn, hypertable):
            for c, b in chunk.columns.items():
                key = "metadata" if c.startswith("_ts_meta") or c == "series_id" else c
                out[key] = out.get(key, 0) + b
            out["heap+TOAST rest"] = out.get("heap+TOAST rest", 0) + chunk.rest
            out["indexes"] = out.get("indexes", 0) + chunk.indexes
            out["maps"] = out.get("maps", 0) + chunk.maps
        row = conn.execute(
            "select coalesce(sum(pg_total_relation_size(format('%%I.%%I', c.schema_name,"
            " c.table_name)::regclass)), 0)::bigint"
            "  from _timescaledb_catalog.chunk c"
            "  join _timescaledb_catalog.hypertable h on h.id = c.hypertable_id"
            " where not c.dropped and c.compressed_chunk_id is not null"
            "   and format('%%I.%%I', h.schema_name, h.table_name)::regclass = %s::regclass",
            (hypertable,),
        ).fetchone()
        out["maps"] = out.get("maps", 0) + (int(str(row[0])) if row else 0)
    return list(out.items())


class VictoriaMetrics:
    """`victoria-metrics` on a free port with a fresh data directory per load."""

    name = "VM"

    def __init__(self, binary: str, work: Path) -> None:
        self.binary = binary
        self.work = work
        self.n = 0

    @contextlib.contextmanager
    def fresh(self) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
        self.n += 1
        data = self.work / f"vm-{self.n}"
        port = free_port()
        argv = [
            self.binary,
            f"-storageDataPath={data}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=5y",
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ]
        with (self.work / "vm.log").open("ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{base}/health")
            yield base, proc, data
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            shutil.rmtree(data, ignore_errors=True)

    @staticmethod
    def settle(base: str, data: Path, points: int) -> None:
        """Forced flush and forced merge (asynchronous), then wait until every point is in
        a part on disk, no merge runs and nothing is pending, and the files' size has held
        still for 3 s (old parts are removed after their merge)."""
        httpx.get(f"{base}/internal/force_flush", timeout=60).raise_for_status()
        httpx.get(f"{base}/internal/force_merge", timeout=60).raise_for_status()
        last, still = -1, 0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            m: dict[str, float] = {}
            for line in httpx.get(f"{base}/metrics", timeout=30).text.splitlines():
                if line.startswith(("vm_active_merges", "vm_rows{", "vm_pending")):
                    key, value = line.rsplit(" ", 1)
                    m[key] = float(value)
            rows = m['vm_rows{type="storage/small"}'] + m['vm_rows{type="storage/big"}']
            busy = sum(v for k, v in m.items() if k.startswith(("vm_active", "vm_pending")))
            size = dir_bytes(data)
            still = still + 1 if rows == points and busy == 0 and size == last else 0
            if still >= 6:
                return
            last = size
            time.sleep(0.5)
        raise RuntimeError("VictoriaMetrics did not settle within 10 minutes")

    def load(self, bodies: list[bytes], points: int, deferred: bool) -> Load:
        with self.fresh() as (base, proc, data):
            reqs = requests_for(base, "/write?db=bench&precision=ns", {}, bodies)
            cpu0 = cpu_seconds(proc.pid)
            seconds = asyncio.run(send_all(base, reqs, SENDERS, no_content))
            spent = cpu_seconds(proc.pid) - cpu0
            out = Load(rate=points / seconds, cpu_per_m=spent / points * 1e6)
            if deferred:
                cpu0 = cpu_seconds(proc.pid)
                self.settle(base, data, points)
                out.deferred_per_m = (cpu_seconds(proc.pid) - cpu0) / points * 1e6
                out.bytes_per_point = dir_bytes(data) / points
                out.live_bytes_per_point = out.bytes_per_point
            return out

    @contextlib.contextmanager
    def query_setup(self, bodies: list[bytes], points: int) -> Iterator[Query]:
        """The series loaded, flushed and merged; yields a timed query (ms)."""
        with self.fresh() as (base, _, data):
            reqs = requests_for(base, "/write?db=bench&precision=ns", {}, bodies)
            asyncio.run(send_all(base, reqs, SENDERS, no_content))
            self.settle(base, data, points)
            with httpx.Client(base_url=base, timeout=60) as client:

                def query(lo: datetime, hi: datetime) -> float:
                    params = {
                        "query": "avg_over_time(year_value[1h])",
                        "start": str(int(lo.timestamp())),
                        "end": str(int(hi.timestamp())),
                        "step": "1h",
                        "nocache": "1",
                    }
                    path = "/api/v1/query_range?" + urllib.parse.urlencode(params)
                    t0 = time.perf_counter()
                    r = client.get(path)
                    ms = (time.perf_counter() - t0) * 1000
                    r.raise_for_status()
                    result = r.json()["data"]["result"]
                    assert len(result) == 1 and len(result[0]["values"]) > 8000, r.text[:300]
                    return ms

                yield query


def dir_bytes(path: Path) -> int:
    """Bytes of VictoriaMetrics' data and indexdb files (not its caches or logs)."""
    total = 0
    for sub in ("data", "indexdb"):
        for f in (path / sub).rglob("*"):
            with contextlib.suppress(OSError):
                if f.is_file():
                    total += f.stat().st_size
    return total


class TimescaleVigil:
    """TimescaleDB mode on the PGlite + TimescaleDB server of the test lane (tools/pglite):
    one connection at a time and no COPY, so the API's ingest cannot run there; the points
    go in as single INSERT statements of 5,000 rows into vigil.points_data, values encoded as
    the API's COPY encodes them (api.series.store.scaled_decimal), in the same orders, and
    what is measured is the deferred work (every aggregate refreshed over the whole range,
    then `vigil jobs run --all`: compression, retention) and the bytes per point after it,
    per part. CPU is the server process's (all of PostgreSQL runs in it)."""

    name = "Vigil TimescaleDB"

    def __init__(self, stack: contextlib.ExitStack, work: Path) -> None:
        from tools.pglite import harness

        self.port = free_port()
        self.proc = harness.start_pglite(self.port, work / "pglite")
        stack.callback(harness.stop, self.proc)
        self.dsn = harness.dsn(self.port)
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"
        self.work = work
        self.last_breakdown: list[tuple[str, int]] = []
        self.tiers: list[tuple[str, int]] = []
        self.columns: list[tuple[str, int]] = []

    def load(self, values: list[list[float]], n: int, per_series: int, end_ns: int) -> Load:
        """Fresh schema, the points inserted sliced by time, then the deferred work."""
        from tests.support.timescale import RESET_SQL

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(RESET_SQL.encode())
        upgrade(self.url)
        size0 = relation_bytes(self.dsn)
        start_ns = end_ns - (per_series - 1) * STEP_S * 1_000_000_000
        names = [f"{metric(i)}_value" for i in range(n)]
        labels = [json.dumps({"host": f"h{i // len(NAB_FILES)}"}) for i in range(n)]
        cpu0 = cpu_seconds(self.proc.pid)
        t0 = time.perf_counter()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            ids: list[int] = []
            for lo in range(0, n, BATCH):
                rows = conn.execute(
                    "select id from vigil.series_ids(%s::text[], %s::jsonb[]) order by ord",
                    (names[lo : lo + BATCH], labels[lo : lo + BATCH]),
                ).fetchall()
                ids += [int(str(r[0])) for r in rows]
            batch: tuple[list[int], list[datetime], list[float]] = ([], [], [])
            scales: dict[int, int] = {}
            for j in range(per_series):
                at = datetime.fromtimestamp((start_ns + j * STEP_S * 1_000_000_000) / 1e9, UTC)
                for i in range(n):
                    vals = values[i % len(values)]
                    batch[0].append(ids[i])
                    batch[1].append(at)
                    batch[2].append(vals[(j + i * 37) % len(vals)])
                    if len(batch[0]) == BATCH or (j == per_series - 1 and i == n - 1):
                        # As the API's COPY writes them: values encoded here.
                        enc = [
                            scaled_decimal(s, v, scales)
                            for s, v in zip(batch[0], batch[2], strict=True)
                        ]
                        conn.execute(
                            "insert into vigil.points_data (series_id, at, m, e, f, r)"
                            " select * from unnest(%s::bigint[], %s::timestamptz[],"
                            " %s::bigint[], %s::smallint[], %s::float8[], %s::float8[])",
                            (
                                batch[0],
                                batch[1],
                                [d[0] if d else None for d in enc],
                                [d[1] if d else None for d in enc],
                                [None if d else v for d, v in zip(enc, batch[2], strict=True)],
                                [d[2] if d else None for d in enc],
                            ),
                        )
                        batch = ([], [], [])
        seconds = time.perf_counter() - t0
        points = n * per_series
        out = Load(
            rate=points / seconds, cpu_per_m=(cpu_seconds(self.proc.pid) - cpu0) / points * 1e6
        )
        cpu0, cli0 = cpu_seconds(self.proc.pid), children_cpu()
        # The refresh policies only cover their recent window (data this old would stay
        # unmaterialized, read raw, and uncounted): every aggregate over the whole range.
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for tier in ("hour", "day"):
                conn.execute(
                    f"call refresh_continuous_aggregate('vigil.points_{tier}', null,"
                    f" date_trunc('{tier}', now(), 'UTC'))"
                )
        run = subprocess.run(
            [VIGIL, "jobs", "run", "--all"],
            env={**os.environ, "DATABASE_URL": self.url, "VIGIL_DATA_DIR": str(self.work)},
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            raise RuntimeError(f"vigil jobs run failed: {run.stdout}{run.stderr}")
        pg, cli = cpu_seconds(self.proc.pid) - cpu0, children_cpu() - cli0
        out.deferred_per_m = (pg + cli) / points * 1e6
        out.parts = (
            f"deferred: PostgreSQL {pg / points * 1e6:.2f} + the command {cli / points * 1e6:.2f}"
        )
        out.bytes_per_point = (relation_bytes(self.dsn) - size0) / points
        out.live_bytes_per_point = out.bytes_per_point  # TimescaleDB: compressed chunks
        self.last_breakdown = breakdown(self.dsn)
        self.tiers = tier_bytes(self.dsn)
        self.columns = compressed_columns(self.dsn, "vigil.points_data")
        return out


def bench_timescale(
    ts: TimescaleVigil, vm_bytes: dict[int, list[float]], values: list[list[float]],
    sizes: list[int], points: int, end_ns: int,
) -> None:  # fmt: skip
    print("\nTimescaleDB mode (PGlite + TimescaleDB 2.23, WASM, one connection; INSERT "
          "statements, not the API, which needs COPY):")  # fmt: skip
    for n in sizes:
        per_series = max(points // n, 1)
        a = ts.load(values, n, per_series, end_ns)
        vm = statistics.median(vm_bytes[n]) if vm_bytes.get(n) else 0.0
        ratio = f" = {a.bytes_per_point / vm:.3g} x VM's median" if vm else ""
        print(
            f"  {n:,} series x {per_series:,} points: inserted at {a.rate:,.0f} points/s "
            f"({a.cpu_per_m:.2f} CPU s/M); {a.parts} CPU s/M; "
            f"{a.bytes_per_point:.2f} B/point after it{ratio}",
            flush=True,
        )
        top = ", ".join(f"{name} {b / 1e6:.1f} MB" for name, b in ts.last_breakdown)
        print(f"    largest tables: {top}")
        points = n * per_series
        tiers = ", ".join(f"{name} {b / points:.2f}" for name, b in ts.tiers)
        print(f"    B/point per part (compressed chunks, indexes, TOAST): {tiers}")
        columns = ", ".join(f"{name} {b / points:.3f}" for name, b in ts.columns)
        print(f"    raw points, B/point per column of the compressed batches: {columns}")


# ---- report -------------------------------------------------------------------------------


@dataclass
class Figures:
    vigil: list[float] = field(default_factory=list)
    vm: list[float] = field(default_factory=list)

    def line(self, what: str, unit: str, fmt: str = ",.0f") -> str:
        ratios = [a / b for a, b in zip(self.vigil, self.vm, strict=True) if b]
        med = statistics.median
        spread = f"{min(ratios):.3g} / {med(ratios):.3g} / {max(ratios):.3g}" if ratios else "-"
        return (
            f"  {what:<34} Vigil {med(self.vigil):{fmt}} {unit}, VM {med(self.vm):{fmt}} {unit};"
            f" Vigil/VM min/median/max {spread}"
        )


def bench_size(
    vigil: Vigil, vm: VictoriaMetrics, values: list[list[float]], n: int, points: int,
    rounds: int, end_ns: int,
) -> list[float]:  # fmt: skip
    """The figures at n series; returns VictoriaMetrics' bytes per point of each round."""
    per_series = max(points // n, 1)
    total = per_series * n
    t0 = time.perf_counter()
    sliced = lines(values, n, per_series, end_ns, by_series=False)
    ordered = lines(values, n, per_series, end_ns, by_series=True)
    print(
        f"\n{n:,} series x {per_series:,} points = {total:,} points "
        f"({len(sliced)} batches; encoded in {time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    rate_t, rate_s, cpu_t, cpu_s, deferred, size, live = (Figures() for _ in range(7))
    for rnd in range(rounds):
        systems: list[Vigil | VictoriaMetrics] = [vigil, vm] if rnd % 2 == 0 else [vm, vigil]
        for system in systems:
            a = system.load(sliced, total, True)
            b = system.load(ordered, total, False)
            mine = system is vigil
            for fig, value in (
                (rate_t, a.rate), (rate_s, b.rate), (cpu_t, a.cpu_per_m), (cpu_s, b.cpu_per_m),
                (deferred, a.deferred_per_m), (size, a.bytes_per_point),
                (live, a.live_bytes_per_point),
            ):  # fmt: skip
                (fig.vigil if mine else fig.vm).append(value)
            parts = f" ({a.parts})" if a.parts else ""
            print(
                f"  round {rnd + 1} {system.name:>5}: sliced by time {a.rate:>10,.0f} points/s,"
                f" {a.cpu_per_m:5.2f} CPU s/M{parts}; by series {b.rate:>10,.0f} points/s,"
                f" {b.cpu_per_m:5.2f} CPU s/M; deferred {a.deferred_per_m:5.2f} CPU s/M;"
                f" {a.bytes_per_point:6.2f} B/point ({a.live_bytes_per_point:.2f} in use)",
                flush=True,
            )
    print(f"  {n:,} series, medians over {rounds} rounds (ratio Vigil/VM per round):")
    print(rate_t.line("ingest, sliced by time", "points/s"))
    print(rate_s.line("ingest, ordered by series", "points/s"))
    print(cpu_t.line("CPU per M points, sliced by time", "s", ".2f"))
    print(cpu_s.line("CPU per M points, by series", "s", ".2f"))
    print(deferred.line("deferred work per M points", "s", ".2f"))
    print(size.line("bytes per point after deferred", "B", ".2f"))
    print(live.line("bytes per point in use (VACUUM FULL)", "B", ".2f"))
    top = ", ".join(
        f"{name} {b / 1e6:.1f} MB ({b / total:.1f} B/point)" for name, b in vigil.last_breakdown
    )
    print(f"  Vigil's largest tables and indexes in use (last round, VACUUM FULL): {top}")
    return size.vm


def bench_query(
    vigil: Vigil, vm: VictoriaMetrics, values: list[list[float]], step_s: int, rounds: int,
    end: datetime,
) -> None:  # fmt: skip
    taxi = values[NAB_FILES.index("nyc_taxi.csv")]
    n = YEAR_S // step_s
    end_ns = int(end.timestamp()) * 1_000_000_000
    start_ns = end_ns - (n - 1) * step_s * 1_000_000_000
    bodies = [
        "\n".join(
            f"year value={taxi[j % len(taxi)]!r} {start_ns + j * step_s * 1_000_000_000}"
            for j in range(lo, min(lo + BATCH, n))
        ).encode()
        for lo in range(0, n, BATCH)
    ]
    lo = end - timedelta(days=366)
    hi = end + timedelta(days=1)
    print(f"\nhourly averages over a year of one series ({n:,} points every {step_s} s):")
    with vigil.query_setup(bodies, n) as vq, vm.query_setup(bodies, n) as mq:
        for q in (vq, mq):  # warm both
            for _ in range(3):
                q(lo, hi)
        fig = Figures()
        for rnd in range(rounds):
            pair = [(fig.vigil, vq), (fig.vm, mq)]
            for out, q in pair if rnd % 2 == 0 else reversed(pair):
                out.append(statistics.median(q(lo, hi) for _ in range(15)))
            print(f"  round {rnd + 1}: Vigil {fig.vigil[-1]:.1f} ms, VM {fig.vm[-1]:.1f} ms")
        print(fig.line("hourly-year query (median of 15)", "ms", ".1f"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,200000", help="numbers of series")
    parser.add_argument("--points", type=int, default=1_000_000, help="points per load")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--days-ago", type=float, default=8.0, help="the data ends this long ago")
    parser.add_argument("--quick", action="store_true", help="1k and 10k series, 500k points, "
                        "2 rounds, a year at 100 s steps")  # fmt: skip
    parser.add_argument("--skip-query", action="store_true")
    parser.add_argument(
        "--timescale", metavar="SIZES", default="",
        help="also TimescaleDB mode (PGlite lane) at these numbers of series, e.g. 1000,10000",
    )  # fmt: skip
    parser.add_argument("--allow-generated", action="store_true",
                        help="values of NAB's shape when the real files are absent")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.points, args.rounds = "1000,10000", 500_000, 2
    sizes = [int(s) for s in args.sizes.split(",") if s]
    values = [nab_values(f, args.allow_generated) for f in NAB_FILES]
    binary = ensure_debian_package("victoria-metrics", "victoria-metrics")
    version = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "victoria-metrics"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    peer = f"VictoriaMetrics {version.stdout.strip() or binary}"
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-peers-"))
    print(
        f"bench/peers.py: Vigil (portable mode, one API worker, fsync on) vs "
        f"{peer}; {os.cpu_count()} CPUs; logs in {work}",
        flush=True,
    )
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(days=args.days_ago)
    end_ns = int(end.timestamp()) * 1_000_000_000
    with contextlib.ExitStack() as stack:
        vm = VictoriaMetrics(binary, work)
        vm_bytes = {}
        if sizes or not args.skip_query:
            vigil = Vigil(stack, work)
        for n in sizes:
            vm_bytes[n] = bench_size(vigil, vm, values, n, args.points, args.rounds, end_ns)
        if not args.skip_query:
            bench_query(vigil, vm, values, 100 if args.quick else STEP_S, args.rounds, end)
        if args.timescale:
            ts = TimescaleVigil(stack, work)
            ts_sizes = [int(x) for x in args.timescale.split(",")]
            bench_timescale(ts, vm_bytes, values, ts_sizes, args.points, end_ns)
    shutil.rmtree(work, ignore_errors=True)  # the logs stay when something failed
    return 0


if __name__ == "__main__":
    sys.exit(main())
