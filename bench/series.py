"""Numeric series benchmark (issue 6), portable mode, on a fresh private PostgreSQL cluster.

1. Ingest: points/s through POST /v1/metrics/batch end to end (a real `vigil api` uvicorn
   process, concurrent clients, JSON arrays of real NAB points) beside raw binary COPY of the
   same rows into the same table in the same run; ratio = API / COPY.
2. Query: hourly (and daily) averages over one year of 10-second data of one series
   (3.15M points at --scale 1) through vigil.series_averages (rollups + raw tail), beside a
   direct avg() over the raw points; plus the crossover where raw stops being fast enough.

    .venv/bin/python bench/series.py               # full run (~5-8 minutes on 2 cores)
    .venv/bin/python bench/series.py --scale 0.1   # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.series_store import Batch, copy_payload, datetime_us
from bench.common import VIGIL, bench_cluster, free_port, process, wait_http
from tests.series.cases import nab_series
from vigil import tokens

NAB_FILES = (
    "ec2_cpu_utilization_825cc2.csv",
    "ec2_disk_write_bytes_1ef3de.csv",
    "nyc_taxi.csv",
    "rds_cpu_utilization_cc0c53.csv",
)
YEAR_POINTS = 365 * 24 * 360  # one year of 10-second data


def ingest_points(total: int) -> list[dict[str, object]]:
    """`total` real NAB points as JSON items: the four series, repeated under host labels."""
    now = datetime.now(UTC).replace(microsecond=0)
    series = [nab_series(f) for f in NAB_FILES]
    out: list[dict[str, object]] = []
    copy = 0
    while len(out) < total:
        for file, points in zip(NAB_FILES, series, strict=True):
            delta = now - timedelta(hours=copy + 1) - points[-1][0]
            name = file.split("_")[0] + "_" + file.split("_")[1]
            labels = {"host": f"h{copy}", "source": file[:-4]}
            for at, value in points:
                out.append(
                    {
                        "name": name,
                        "labels": labels,
                        "timestamp": (at + delta).isoformat().replace("+00:00", "Z"),
                        "value": value,
                    }
                )
        copy += 1
    return out[:total]


def run_copy(dsn: str, items: list[dict[str, object]], batch: int, clients: int) -> float:
    """Raw binary COPY of the same rows, same chunks and concurrency; returns points/s."""
    chunks: list[bytes] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for start in range(0, len(items), batch):
            part = items[start : start + batch]
            b = Batch()
            for item in part:
                at = datetime.fromisoformat(str(item["timestamp"]))
                key = json.dumps(item["labels"], sort_keys=True, separators=(",", ":"))
                b.add(str(item["name"]), key, datetime_us(at), float(item["value"]))  # type: ignore[arg-type]
            keys = list(b.keys)
            rows = conn.execute(
                "select ord, id from vigil.series_ids(%s::text[], %s::jsonb[])",
                ([k[0] for k in keys], [k[1] for k in keys]),
            ).fetchall()
            ids = [int(r[1]) for r in sorted(rows)]
            chunks.append(copy_payload([ids[i] for i in b.series], b.at_us, b.values))
    lock = threading.Lock()

    def worker() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while True:
                with lock:
                    if not chunks:
                        return
                    data = chunks.pop()
                with (
                    conn.transaction(),
                    conn.cursor().copy(
                        "copy vigil.points (series_id, at, value) from stdin (format binary)"
                    ) as copy,
                ):
                    copy.write(data)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(items) / (time.perf_counter() - t0)


async def run_api(url: str, token: str, bodies: list[bytes], n: int, clients: int) -> float:
    queue = list(bodies)
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            body = queue.pop()
            r = await client.post(f"{url}/v1/metrics/batch", content=body, headers=headers)
            if r.status_code != 200 or r.json()["rejected"]:
                raise RuntimeError(f"batch failed: {r.status_code} {r.text[:200]}")

    async with httpx.AsyncClient(timeout=120) as client:
        await client.get(f"{url}/ping")
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        return n / (time.perf_counter() - t0)


def bench_ingest(dsn: str, args: argparse.Namespace, log: Path) -> None:
    total = int(args.scale * 1_000_000)
    items = ingest_points(total)
    bodies = [
        json.dumps(items[i : i + args.batch_size]).encode()
        for i in range(0, total, args.batch_size)
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        token = tokens.create(conn, "bench")
    port = free_port()
    env = {**os.environ, "DATABASE_URL": dsn, "VIGIL_PORT": str(port)}
    env["VIGIL_DATA_DIR"] = tempfile.mkdtemp(prefix="vigil-bench-series-")
    env["VIGIL_MAX_BODY_BYTES"] = str(64 * 1024 * 1024)
    url = f"http://127.0.0.1:{port}"
    print(f"ingest: {total:,} NAB points, batches of {args.batch_size}, {args.clients} clients")
    copy_rates, api_rates = [], []
    with process([VIGIL, "api"], env, log) as api:
        wait_http(f"{url}/ping")
        for rnd in range(args.rounds):
            for what in ("copy", "api"):
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("truncate vigil.points, vigil.points_invalidations")
                    conn.execute("checkpoint")
                if what == "copy":
                    rate = run_copy(dsn, items, args.batch_size, args.clients)
                    copy_rates.append(rate)
                else:
                    cpu0 = cpu_seconds(api.pid)
                    rate = asyncio.run(run_api(url, token, bodies, total, args.clients))
                    api_rates.append(rate)
                    api_us = (cpu_seconds(api.pid) - cpu0) / total * 1e6
                    print(f"           api process CPU: {api_us:.2f} us/point")
                print(f"  round {rnd + 1} {what:>4}: {rate:>10,.0f} points/s")
    with psycopg.connect(dsn, autocommit=True) as conn:
        stored = conn.execute("select count(*) from vigil.points").fetchone()
    assert stored == (total,), stored
    best_copy, best_api = max(copy_rates), max(api_rates)
    print(f"  raw binary COPY (best): {best_copy:>10,.0f} points/s")
    print(f"  POST /v1/metrics/batch (best): {best_api:>10,.0f} points/s")
    print(f"  ratio API / COPY: {best_api / best_copy:.0%} (target >= 70%)")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(conn: psycopg.Connection[tuple[object, ...]], sql: str, params: tuple[object, ...],
          runs: int) -> tuple[float, int]:  # fmt: skip
    times, rows = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        rows = len(conn.cursor(binary=True).execute(sql, params).fetchall())
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), rows


def bench_query(dsn: str, args: argparse.Namespace) -> None:
    n = int(args.scale * YEAR_POINTS)
    taxi = [v for _, v in nab_series("nyc_taxi.csv")]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("truncate vigil.points, vigil.points_invalidations")
        now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
        sid = conn.execute("select id from vigil.series_ids(array['year'], array['{}'::jsonb])")
        series_id = sid.fetchone()[0]  # type: ignore[index]
        print(f"query: one series, {n:,} points of 10-second data (nyc_taxi values, cycled)")
        t0 = time.perf_counter()
        conn.execute(
            "insert into vigil.points (series_id, at, value)"
            " select %s, %s::timestamptz - (i * interval '10 seconds'),"
            "        (%s::float8[])[1 + i %% %s] from generate_series(0, %s - 1) i",
            (series_id, now, taxi, len(taxi), n),
        )
        print(f"  insert: {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        conn.execute("select vigil.refresh_series_rollups(%s, '{}')", (now,))
        print(f"  first refresh of the rollups (all tiers): {time.perf_counter() - t0:.1f} s")
        conn.execute("vacuum analyze vigil.points")
        conn.execute("vacuum analyze vigil.points_minute, vigil.points_hour, vigil.points_day")
        # A few fresh points after the refresh: the newest partial bucket comes from raw.
        conn.execute(
            "insert into vigil.points select %s, now() + i * interval '1 second', 1.0"
            " from generate_series(1, 5) i",
            (series_id,),
        )
        lo = now - timedelta(days=366)
        hi = now + timedelta(hours=1)
        api_sql = "select * from vigil.series_averages('year', null, %s, %s, %s)"
        count_sql = "select count(*) from vigil.series_averages('year', null, %s, %s, %s)"
        raw_sql = (
            "select date_trunc(%s, at, 'UTC') b, avg(value), min(value), max(value), count(*)"
            " from vigil.points where series_id = %s and at >= %s and at < %s"
            " group by 1 order by 1 desc"
        )
        for g in ("hour", "day"):
            ms, rows = timed(conn, api_sql, (g, lo, hi), 15)
            db_ms, _ = timed(conn, count_sql, (g, lo, hi), 15)
            print(
                f"  series_averages {g:>4} over a year: {ms:7.1f} ms median with the rows "
                f"fetched into Python, {db_ms:.1f} ms in the database ({rows} buckets)"
            )
        ms, rows = timed(conn, raw_sql, ("hour", series_id, lo, hi), 3)
        print(f"  direct avg() over raw, hourly, a year: {ms:7.1f} ms median ({rows} buckets)")
        print("  crossover, direct avg() over raw points per hour (one series):")
        for days in (1, 7, 30, 90):
            pts = min(days * 8640, n)
            ms, _ = timed(conn, raw_sql, ("hour", series_id, now - timedelta(days=days), hi), 5)
            print(f"    {days:>3} days ({pts:>9,} points): {ms:7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 1M ingest points, a year")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-query", action="store_true")
    args = parser.parse_args()
    log = Path(tempfile.mkdtemp(prefix="vigil-bench-series-log-")) / "api.log"
    print(f"bench/series.py --scale {args.scale} on {os.cpu_count()} CPUs; api log: {log}")
    with bench_cluster() as cluster:
        dsn = cluster.dsn()
        if not args.skip_ingest:
            bench_ingest(dsn, args, log)
        if not args.skip_query:
            bench_query(dsn, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
