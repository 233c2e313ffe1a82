"""Numeric series benchmark, portable mode, on a fresh private PostgreSQL cluster.

1. Ingest: points/s through POST /v1/metrics/batch end to end (a real `vigil api` uvicorn
   process, one worker, concurrent keep-alive clients posting pre-encoded JSON arrays of real
   NAB points) beside raw binary COPY of the same rows, pre-encoded, in the same chunks, with
   the same concurrency, into the same table in the same run. Each round runs COPY then the
   API; the figures are medians over rounds (the machine is shared), with the CPU time per
   point of PostgreSQL, the API process and the load generator; ratio = API / COPY.
2. Query: hourly (and daily) averages over one year of 10-second data of one series
   (3.15M points at --scale 1) through vigil.series_averages (rollups + raw tail), beside a
   direct avg() over the raw points; plus the crossover where raw stops being fast enough.

    .venv/bin/python bench/series.py               # full run (~5-8 minutes on 2 cores)
    .venv/bin/python bench/series.py --scale 0.1   # quick look
    .venv/bin/python bench/series.py --skip-query --baseline HEAD   # old vs new API, alternating
    .venv/bin/python bench/series.py --skip-query --format ndjson   # or influx (POST /write)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.core.timestamps import unix_us as datetime_us
from api.series.formats.points import Batch
from api.series.store import copy_payload
from bench.common import (
    VIGIL,
    bench_cluster,
    cpu_seconds,
    free_port,
    post_requests,
    process,
    require_nab,
    send_all,
    server_cpu_seconds,
    wait_http,
)
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


def influx_lines(items: list[dict[str, object]]) -> bytes:
    """The items as Influx line protocol (Telegraf's form): measurement = name, the labels as
    tags, one field `value`, nanosecond timestamps."""
    lines = []
    for item in items:
        labels = item["labels"]
        assert isinstance(labels, dict)
        tags = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        at = datetime.fromisoformat(str(item["timestamp"]))
        lines.append(f"{item['name']},{tags} value={item['value']!r} {datetime_us(at) * 1000}")
    return "\n".join(lines).encode()


def copy_payloads(dsn: str, items: list[dict[str, object]], batch: int) -> list[bytes]:
    """Binary COPY data of the same rows in the same chunks as the API bodies (untimed)."""
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
    return chunks


def run_copy(dsn: str, payloads: list[bytes], n: int, clients: int) -> float:
    """Raw binary COPY of the payloads, one transaction each, `clients` connections opened
    before timing (as the API's pool is); returns points/s."""
    chunks = list(payloads)
    lock = threading.Lock()
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(clients)]

    def worker(conn: psycopg.Connection[tuple[object, ...]]) -> None:
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

    threads = [threading.Thread(target=worker, args=(conn,)) for conn in conns]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = n / (time.perf_counter() - t0)
    for conn in conns:
        conn.close()
    time.sleep(0.5)  # let the backends exit, so that their CPU time is counted
    return rate


def http_requests(
    url: str, token: str, bodies: list[bytes], path: str = "/v1/metrics/batch"
) -> list[bytes]:
    """Complete HTTP/1.1 requests (head + body) for the bodies, encoded before timing."""
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    return post_requests(url, path, headers, bodies)


def batch_ok(head: bytes, body: bytes) -> bool:
    """A batch stored whole: 204, or 200 with nothing rejected."""
    return (head.startswith(b"HTTP/1.1 200 ") and b'"rejected":0,' in body) or head.startswith(
        b"HTTP/1.1 204 "
    )


async def run_api(url: str, requests: list[bytes], n: int, clients: int) -> float:
    """Posts the pre-encoded requests (last first) over `clients` keep-alive connections;
    points/s. The load generator shares the 2 CPUs with the API and PostgreSQL, so its own
    CPU time counts against the API figure (it is printed per point)."""
    return n / await send_all(url, requests[::-1], clients, batch_ok)


def baseline_argv(ref: str) -> list[str]:
    """The API (`python -m api`) from the api/ and vigil/ packages of a git ref, extracted to
    a temporary directory that comes first on sys.path (the same venv, database and
    settings). The ref must have the feature-package layout (api/__main__.py)."""
    root = Path(__file__).resolve().parent.parent
    code = Path(tempfile.mkdtemp(prefix="vigil-bench-baseline-"))
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", ref, "api", "vigil"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
    program = (
        f"import runpy, sys; sys.path.insert(0, {str(code)!r}); import api; "
        f"assert api.__file__.startswith({str(code)!r}), api.__file__; "
        "runpy.run_module('api', run_name='__main__')"
    )
    return [sys.executable, "-c", program]


def bench_ingest(dsn: str, data: Path, args: argparse.Namespace, log: Path) -> None:
    total = int(args.scale * 1_000_000)
    items = ingest_points(total)
    chunks = [items[i : i + args.batch_size] for i in range(0, total, args.batch_size)]
    path = "/v1/metrics/batch"
    if args.format == "ndjson":
        bodies = [b"\n".join(json.dumps(item).encode() for item in chunk) for chunk in chunks]
    elif args.format == "influx":
        bodies = [influx_lines(chunk) for chunk in chunks]
        path = "/write?db=bench&precision=ns"
    else:
        bodies = [json.dumps(chunk).encode() for chunk in chunks]
    with psycopg.connect(dsn, autocommit=True) as conn:
        token = tokens.create(conn, "bench")
    apis = {"api": [VIGIL, "api"]}
    if args.baseline:
        apis[f"api@{args.baseline}"] = baseline_argv(args.baseline)
    urls: dict[str, str] = {}
    requests: dict[str, list[bytes]] = {}
    payloads = copy_payloads(dsn, items, args.batch_size)
    kind = {"json": "JSON array", "ndjson": "NDJSON", "influx": "Influx line protocol"}[args.format]
    print(f"ingest: {total:,} NAB points, {kind} batches of {args.batch_size}, "
          f"{args.clients} clients")  # fmt: skip
    copy_rates: list[float] = []
    rates: dict[str, list[float]] = {name: [] for name in apis}
    cpu: dict[str, list[float]] = {name: [] for name in apis}
    with contextlib.ExitStack() as stack:
        procs = {}
        for name, argv in apis.items():
            port = free_port()
            env = {**os.environ, "DATABASE_URL": dsn, "VIGIL_PORT": str(port)}
            env["VIGIL_DATA_DIR"] = tempfile.mkdtemp(prefix="vigil-bench-series-")
            env["VIGIL_MAX_BODY_BYTES"] = str(64 * 1024 * 1024)
            urls[name] = f"http://127.0.0.1:{port}"
            requests[name] = http_requests(urls[name], token, bodies, path)
            procs[name] = stack.enter_context(process(argv, env, log))
            wait_http(f"{urls[name]}/ping")
        for rnd in range(args.rounds):
            # Baseline and current code alternate which goes first.
            order = list(apis) if rnd % 2 == 0 else list(reversed(apis))
            for what in ("copy", *order):
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("truncate vigil.points, vigil.points_invalidations")
                    conn.execute("checkpoint")
                client0, pg0 = time.process_time(), server_cpu_seconds(data)
                if what == "copy":
                    rate = run_copy(dsn, payloads, total, args.clients)
                    copy_rates.append(rate)
                    client_us = (time.process_time() - client0) / total * 1e6
                    pg_us = (server_cpu_seconds(data) - pg0) / total * 1e6
                    print(
                        f"  round {rnd + 1} copy: {rate:>10,.0f} points/s; CPU per point: "
                        f"PostgreSQL {pg_us:.2f} us, COPY client {client_us:.2f} us"
                    )
                    continue
                cpu0 = cpu_seconds(procs[what].pid)
                rate = asyncio.run(run_api(urls[what], requests[what], total, args.clients))
                rates[what].append(rate)
                api_us = (cpu_seconds(procs[what].pid) - cpu0) / total * 1e6
                cpu[what].append(api_us)
                client_us = (time.process_time() - client0) / total * 1e6
                pg_us = (server_cpu_seconds(data) - pg0) / total * 1e6
                print(
                    f"  round {rnd + 1} {what}: {rate:>10,.0f} points/s = "
                    f"{rate / copy_rates[-1]:.0%} of the COPY of the round; CPU per point: "
                    f"PostgreSQL {pg_us:.2f} us, API process {api_us:.2f} us, "
                    f"load generator {client_us:.2f} us"
                )
    with psycopg.connect(dsn, autocommit=True) as conn:
        stored = conn.execute("select count(*) from vigil.points").fetchone()
    assert stored == (total,), stored
    # The machine is shared: each round pairs a COPY run with the API runs right after it, and
    # the medians over rounds are the figures (best-of shown for reference).
    median_copy = statistics.median(copy_rates)
    print(f"  raw binary COPY: median {median_copy:>10,.0f} points/s (best {max(copy_rates):,.0f})")
    for name, api_rates in rates.items():
        ratios = [a / c for a, c in zip(api_rates, copy_rates, strict=True)]
        median_api = statistics.median(api_rates)
        print(
            f"  POST {path} ({name}): median {median_api:>10,.0f} points/s "
            f"(best {max(api_rates):,.0f}), API CPU median {statistics.median(cpu[name]):.2f} "
            f"us/point; ratio to COPY: median of the rounds {statistics.median(ratios):.0%}, "
            f"of the medians {median_api / median_copy:.0%}, best/best "
            f"{max(api_rates) / max(copy_rates):.0%} (target >= 70%)"
        )


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
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--format", choices=("json", "ndjson", "influx"), default="json",
        help="bodies: JSON arrays (default), NDJSON, or Influx line protocol to /write",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", metavar="GIT_REF", help="also run the API of this commit, alternating"
    )
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-query", action="store_true")
    parser.add_argument(
        "--allow-generated", action="store_true",
        help="values of NAB's shape when the real files are absent",
    )  # fmt: skip
    args = parser.parse_args()
    require_nab(NAB_FILES, args.allow_generated)
    log = Path(tempfile.mkdtemp(prefix="vigil-bench-series-log-")) / "api.log"
    print(f"bench/series.py --scale {args.scale} on {os.cpu_count()} CPUs; api log: {log}")
    with bench_cluster() as cluster:
        dsn = cluster.dsn()
        if not args.skip_ingest:
            bench_ingest(dsn, cluster.data, args, log)
        if not args.skip_query:
            bench_query(dsn, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
