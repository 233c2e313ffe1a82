"""Benchmark: log metrics (sql/62_log_metrics.sql) — refresh cost per million lines for 20
metrics beside a direct GROUP BY ceiling, and the delay from an offending line to the
Telegram request.

Data: the real access log (access/apache_combined_5k.log) and the real loghub logs
(loghub/{Apache,HDFS,Linux,OpenSSH}_2k.log) of the shared data folder ($VIGIL_SHARED_DATA,
else ../shared/data beside the checkout), repeated with shifted times over the last
--hours hours: --lines request records (hosts web-1..4) and --lines journal lines (hosts
h1..h8, one unit per loghub file), stored through vigil.requests_ingest and
vigil.journal_ingest (the entry points that mark the metrics' ranges dirty).

1. Refresh cost: 20 log metrics (10 per source: counts, filters, group-by route/ip/status/
   host/unit, count distinct, avg/p95/sum/max, a regex-captured number). In --rounds
   alternating rounds: the ceiling — each metric's own query (vigil.log_metric_meta's sql)
   run as one direct GROUP BY over the whole range, rows counted, nothing written — then
   the real thing: every metric marked dirty over the whole range and refreshed
   (vigil.log_metric_refresh: dirty ranges, recompute, points replaced). Reported: seconds
   per million lines (of the lines of both sources) for the 20 metrics, and the ratio
   refresh / ceiling (min/median/max over the rounds). Also the incremental refresh after
   --append more lines of the current minute (the steady state).
2. Delay: real `vigil api` and `vigil notifier` processes, the fake Telegram Bot API; a log
   metric `bench_5xx` (requests with status 5xx per host, 1-minute period, refreshed every
   10 s as the defaults are) and a rule `bench_5xx` (max over 1 min > 0). Each of --delay-rounds
   rounds posts one 500 line of a new host to /v1/requests at a random phase and times until
   the Telegram sendMessage that names that host (target: <= 2 minutes).

Run: `.venv/bin/python bench/log_metrics.py` (small: 100k + 100k lines, about 3 min);
`--lines 1000000` for the full size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.requests.store import json_row
from bench.common import VIGIL, bench_cluster, free_port, process, wait_http
from tests.support.datasets import shared_data_dir
from tests.support.fake_telegram import FakeTelegram
from vigil import tokens
from vigil.accesslog import parse_clf

BATCH = 5000
LOGHUB = {
    "Apache_2k.log": ("httpd.service", "httpd"),
    "HDFS_2k.log": ("hdfs-datanode.service", "java"),
    "Linux_2k.log": ("sshd.service", "sshd"),
    "OpenSSH_2k.log": ("ssh.service", "sshd"),
}

# id, source, stat, field, props, filters, value_regex
METRICS: list[tuple[str, str, str, str | None, list[str], dict[str, Any], str | None]] = [
    ("b_req_total", "requests", "count", None, [], {}, None),
    ("b_req_status", "requests", "count", None, ["status_class"], {}, None),
    ("b_req_5xx_route", "requests", "count", None, ["route"], {"status": "5xx"}, None),
    ("b_req_err_share", "requests", "avg", "error", ["route"], {}, None),
    ("b_req_bytes_p95", "requests", "p95", "bytes", ["host"], {}, None),
    ("b_req_bytes_sum", "requests", "sum", "bytes", ["host"], {}, None),
    ("b_req_ips", "requests", "count_distinct", "ip", [], {}, None),
    ("b_req_denied_ip", "requests", "count", None, ["ip"], {"status": [401, 403, 404]}, None),
    ("b_req_blog", "requests", "count", None, ["method"], {"path_prefix": "/blog"}, None),
    ("b_req_bytes_max", "requests", "max", "bytes", ["method", "status"], {}, None),
    ("b_log_lines", "journal", "count", None, ["host"], {}, None),
    ("b_log_errors", "journal", "count", None, ["unit"], {"priority": 3}, None),
    ("b_log_ssh_fail", "journal", "count", None, ["host"],
     {"contains": "authentication failure", "identifier": "sshd*"}, None),
    ("b_log_fail_re", "journal", "count", None, ["unit"], {"regex": "(fail|error)"}, None),
    ("b_log_by_unit_host", "journal", "count", None, ["host", "unit"], {}, None),
    ("b_log_priority", "journal", "count", None, ["priority"], {}, None),
    ("b_log_hdfs_size", "journal", "sum", "captured", ["host"], {"unit": "hdfs*"},
     r"size ([0-9]+)"),
    ("b_log_hdfs_p95", "journal", "p95", "captured", [], {"unit": "hdfs*"}, r"size ([0-9]+)"),
    ("b_log_ssh_units", "journal", "count", None, ["host"], {"unit": "ssh*"}, None),
    ("b_log_max_prio", "journal", "max", "priority", ["unit"], {}, None),
]  # fmt: skip


def stats(values: list[float]) -> str:
    return f"min {min(values):.3g}, median {statistics.median(values):.3g}, max {max(values):.3g}"


# Data ---------------------------------------------------------------------------------


def access_records(n: int, end: datetime, hours: float) -> list[dict[str, Any]]:
    """n request records: the real access log repeated, times spread evenly before `end`."""
    lines = (shared_data_dir() / "access" / "apache_combined_5k.log").read_bytes().splitlines()
    span = hours * 3600
    out = []
    for i in range(n):
        r = parse_clf(lines[i % len(lines)])
        at = end - timedelta(seconds=span * (n - i) / n)
        out.append({**json_row(r, i, f"web-{i % 4 + 1}"), "at": at.isoformat()})
    return out


def journal_texts() -> list[tuple[str, str, str, int]]:
    """(unit, identifier, message, priority) of the real loghub lines."""
    out = []
    for name, (unit, ident) in LOGHUB.items():
        for line in (shared_data_dir() / "loghub" / name).read_text().splitlines():
            low = line.lower()
            prio = 3 if ("error" in low or "fatal" in low) else 4 if "warn" in low else 6
            out.append((unit, ident, line, prio))
    return out


def store_requests(conn: psycopg.Connection[Any], records: list[dict[str, Any]]) -> None:
    for k in range(0, len(records), BATCH):
        conn.execute(
            "select vigil.requests_ingest(%s::jsonb)", (json.dumps(records[k : k + BATCH]),)
        )


def store_journal(conn: psycopg.Connection[Any], n: int, end: datetime, hours: float) -> None:
    texts = journal_texts()
    span = hours * 3600
    for k in range(0, n, BATCH):
        idx = range(k, min(n, k + BATCH))
        rows = [texts[i % len(texts)] for i in idx]
        conn.execute(
            "select vigil.journal_ingest(%s, %s, %s, %s, %s, %s::smallint[], %s, %s::jsonb)",
            (
                [end - timedelta(seconds=span * (n - i) / n) for i in idx],
                [hashlib.sha256(b"%d" % i).digest() for i in idx],
                [f"h{i % 8 + 1}" for i in idx],
                [r[0] for r in rows],
                [None for _ in rows],
                [r[3] for r in rows],
                [r[2] for r in rows],
                json.dumps([{"SYSLOG_IDENTIFIER": r[1]} for r in rows]),
            ),
        )


# 1. Refresh cost ----------------------------------------------------------------------


def create_metrics(conn: psycopg.Connection[Any]) -> None:
    for mid, source, stat, field, props, filters, regex in METRICS:
        conn.execute(
            "select 1 from vigil.log_metric_create(%s, %s, %s, %s, %s::text[],"
            " interval '1 minute', interval '1 day', %s::jsonb, %s)",
            (mid, source, stat, field, props, json.dumps(filters), regex),
        )


def ceiling(conn: psycopg.Connection[Any], lo: datetime, hi: datetime) -> float:
    """Seconds to run every metric's own query once over [lo, hi], nothing written."""
    total = 0.0
    for mid, *_ in METRICS:
        row = conn.execute("select vigil.log_metric_meta(%s) ->> 'sql'", (mid,)).fetchone()
        assert row is not None and row[0], f"no sql in log_metric_meta({mid})"
        query = str(row[0]).replace("$1", "%(lo)s").replace("$2", "%(hi)s").replace("%", "%%")
        query = query.replace("%%(lo)s", "%(lo)s").replace("%%(hi)s", "%(hi)s")
        t0 = time.perf_counter()
        conn.execute(f"select count(*) from ({query}) x", {"lo": lo, "hi": hi})  # noqa: S608
        total += time.perf_counter() - t0
    return total


def refresh_all(conn: psycopg.Connection[Any]) -> tuple[float, int]:
    """Seconds to refresh the 20 metrics (each marked dirty over everything first, not
    timed) and the points written."""
    for mid, source, *_ in METRICS:
        conn.execute("select vigil._log_metrics_redo(%s, %s)", (mid, source))
    points = 0
    t0 = time.perf_counter()
    for mid, *_ in METRICS:
        row = conn.execute("select vigil.log_metric_refresh(%s)", (mid,)).fetchone()
        points += int(row[0]) if row and row[0] else 0
    return time.perf_counter() - t0, points


def refresh_cost(dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        t0 = time.perf_counter()
        store_requests(conn, access_records(args.lines, end, args.hours))
        store_journal(conn, args.lines, end, args.hours)
        print(f"loaded {args.lines} + {args.lines} lines in {time.perf_counter() - t0:.1f}s")
        create_metrics(conn)
        conn.execute("update vigil.portable_jobs set enabled = false")  # nothing else runs
        conn.execute("vacuum analyze")
        lo = end - timedelta(hours=args.hours + 1)
        hi = end + timedelta(minutes=1)
        ratios, refreshes, ceilings = [], [], []
        points = 0
        for r in range(args.rounds):
            if r % 2 == 0:
                c = ceiling(conn, lo, hi)
                f, points = refresh_all(conn)
            else:
                f, points = refresh_all(conn)
                c = ceiling(conn, lo, hi)
            refreshes.append(f)
            ceilings.append(c)
            ratios.append(f / c)
            print(f"  round {r + 1}: refresh {f:.2f}s, direct GROUP BY {c:.2f}s, ratio {f / c:.2f}")
        lines = 2 * args.lines
        per_million = [f * 1e6 / lines for f in refreshes]
        # the steady state: a few more lines in the current minute, then refresh
        now = datetime.now(UTC)
        incremental = []
        for r in range(args.rounds):
            recs = access_records(args.append, now, 0.01)
            for i, rec in enumerate(recs):
                rec["key"] = 10**12 + r * 10**6 + i
            store_requests(conn, recs)
            store_journal_tail(conn, args.append, now, r)
            t0 = time.perf_counter()
            for mid, *_ in METRICS:
                conn.execute("select vigil.log_metric_refresh(%s)", (mid,))
            incremental.append(time.perf_counter() - t0)
    return {
        "lines": lines,
        "points": points,
        "per_million": per_million,
        "ratios": ratios,
        "incremental": incremental,
    }


def store_journal_tail(conn: psycopg.Connection[Any], n: int, at: datetime, r: int) -> None:
    texts = journal_texts()
    conn.execute(
        "select vigil.journal_ingest(%s, %s, %s, %s, %s, %s::smallint[], %s, %s::jsonb)",
        (
            [at] * n,
            [hashlib.sha256(b"tail %d %d" % (r, i)).digest() for i in range(n)],
            [f"h{i % 8 + 1}" for i in range(n)],
            [texts[i % len(texts)][0] for i in range(n)],
            [None] * n,
            [texts[i % len(texts)][3] for i in range(n)],
            [texts[i % len(texts)][2] for i in range(n)],
            json.dumps([{"SYSLOG_IDENTIFIER": texts[i % len(texts)][1]} for i in range(n)]),
        ),
    )


# 2. Delay to Telegram -----------------------------------------------------------------


def delay(dsn: str, args: argparse.Namespace) -> list[float]:
    telegram = FakeTelegram()
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-logmetrics-"))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "TELEGRAM_"))},
        "DATABASE_URL": dsn,
        "VIGIL_PORT": str(port),
        **telegram.env(),
    }
    url = f"http://127.0.0.1:{port}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("update vigil.portable_jobs set enabled = true")
        conn.execute("select vigil.log_metric_delete(id) from vigil.log_metrics")
        token = tokens.create(conn, "bench")
        conn.execute(
            "select 1 from vigil.log_metric_create('bench_5xx', 'requests', 'count', null,"
            " array['host'], interval '1 minute', interval '10 seconds', '{\"status\": \"5xx\"}')"
        )
        conn.execute(
            "insert into vigil.alert_rules (name, source, match_name, agg, agg_window, op,"
            " threshold) values ('bench_5xx', 'series', 'bench_5xx', 'max',"
            " interval '1 minute', '>', 0)"
        )
    delays = []
    rng = random.Random(17)
    try:
        with (
            process([VIGIL, "api"], env, work / "api.log"),
            process([VIGIL, "notifier"], env, work / "notifier.log"),
        ):
            wait_http(url + "/health")
            for r in range(args.delay_rounds):
                time.sleep(rng.uniform(0, 10))  # a random phase against the refresh and rule
                host = f"round-{r}"
                stamp = datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
                line = (
                    f'203.0.113.{r + 1} - - [{stamp}] "GET /api/orders/{r} HTTP/1.1" 500 12 "-" "x"'
                )
                t0 = time.monotonic()
                answer = httpx.post(
                    url + "/v1/requests",
                    params={"host": host, "format": "combined"},
                    content=line.encode(),
                    headers={"authorization": f"Bearer {token}", "content-type": "text/plain"},
                    timeout=30,
                )
                answer.raise_for_status()
                deadline = t0 + args.delay_timeout
                while not any(f'"{host}"' in t for t in telegram.texts()):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"no Telegram message for {host} in {args.delay_timeout}s")
                    time.sleep(0.05)
                got = next(
                    m for m in telegram.received if f'"{host}"' in str(m.body.get("text", ""))
                )
                delays.append(got.at - t0)
                print(f"  round {r + 1}: {delays[-1]:.1f}s")
    finally:
        telegram.down()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000, help="per source (default 100k)")
    parser.add_argument("--hours", type=float, default=12.0, help="spread over (default 12)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default 4)")
    parser.add_argument("--append", type=int, default=1000, help="incremental lines per source")
    parser.add_argument("--delay-rounds", type=int, default=5)
    parser.add_argument("--delay-timeout", type=float, default=180.0)
    parser.add_argument("--skip-delay", action="store_true")
    args = parser.parse_args()
    with bench_cluster() as cluster:
        dsn = cluster.dsn()
        print(f"1. refresh cost: 20 log metrics, {args.lines} request + {args.lines} journal lines")
        cost = refresh_cost(dsn, args)
        delays = [] if args.skip_delay else delay(dsn, args)
    print()
    print(f"log metrics, {cost['lines']} lines ({cost['points']} points written per refresh):")
    print(f"  refresh of 20 metrics, s per million lines: {stats(cost['per_million'])}")
    print(f"  refresh / direct GROUP BY (same queries, nothing written): {stats(cost['ratios'])}")
    print(
        f"  incremental refresh of 20 metrics after {args.append} + {args.append} new lines, s: "
        f"{stats(cost['incremental'])}"
    )
    if delays:
        print(
            f"  offending line -> Telegram sendMessage (1-min period, refresh 10 s), s: "
            f"{stats(delays)}  (target <= 120)"
        )


if __name__ == "__main__":
    main()
