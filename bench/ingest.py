"""Benchmark: single `POST /metric` requests per second persisted by one API worker,
beside a trivial Litestar handler (the framework ceiling) measured in the same run.

Load comes from wrk (Debian package `wrk`, installed if missing), 32 connections,
a mix of ping and disk reports over 1,000 metrics. Run: `make bench` or
`.venv/bin/python bench/ingest.py [--seconds 15]`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import VIGIL, bench_cluster, ensure_debian_package, free_port, process, wait_http
from vigil import tokens

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local i = n %% 1000
  local body
  if i %% 2 == 0 then
    body = '{"host":"web-' .. (i %% 50) .. '","name":"job-' .. i .. '","type":"ping",' ..
           '"timestamp":"","value":"1440","state":"ok","Id":0}'
  else
    body = '{"host":"web-' .. (i %% 50) .. '","name":"/fs' .. i .. '","type":"disk",' ..
           '"value":"' .. (40 + i %% 50) .. '","state":"","Id":0}'
  end
  return wrk.format(nil, nil, nil, body)
end
"""


def ensure_wrk() -> str:
    return ensure_debian_package("wrk", "wrk")


def run_wrk(wrk: str, url: str, script: Path, seconds: int) -> tuple[float, int, int]:
    out = subprocess.run(
        [wrk, "-t2", "-c32", f"-d{seconds}s", "-s", str(script), "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, total, int(bad.group(1)) if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    wrk = ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-ingest-"))
    ceilings: list[float] = []
    rates: list[float] = []
    with bench_cluster() as cluster:
        dsn = cluster.dsn()
        with psycopg.connect(dsn, autocommit=True) as conn:
            token = tokens.create(conn, "bench")
        script = work / "post.lua"
        script.write_text(WRK_SCRIPT % {"token": token})
        trivial_port, vigil_port = free_port(), free_port()
        trivial_url = f"http://127.0.0.1:{trivial_port}/metric"
        vigil_url = f"http://127.0.0.1:{vigil_port}/metric"
        env = {**os.environ, "DATABASE_URL": dsn, "VIGIL_PORT": str(vigil_port)}
        trivial_app = str(Path(__file__).with_name("trivial_app.py"))
        with (
            process(
                [sys.executable, trivial_app, str(trivial_port)],
                dict(os.environ),
                work / "trivial.log",
            ),
            process([VIGIL, "api"], env, work / "api.log"),
        ):
            wait_http(f"http://127.0.0.1:{trivial_port}/")
            wait_http(f"http://127.0.0.1:{vigil_port}/health")
            run_wrk(wrk, trivial_url, script, 3)  # warm-up both
            run_wrk(wrk, vigil_url, script, 3)
            with psycopg.connect(dsn) as conn:
                before = conn.execute("select count(*) from vigil.metric_history").fetchone()
            requests = bad = 0
            # Alternating rounds, so drift in the machine's load hits both alike.
            for _ in range(args.rounds):
                ceilings.append(run_wrk(wrk, trivial_url, script, args.seconds)[0])
                rate, total, failed = run_wrk(wrk, vigil_url, script, args.seconds)
                rates.append(rate)
                requests += total
                bad += failed
            with psycopg.connect(dsn) as conn:
                after = conn.execute("select count(*) from vigil.metric_history").fetchone()
    assert before is not None and after is not None
    persisted = after[0] - before[0]
    ceiling, rate = statistics.median(ceilings), statistics.median(rates)
    print(
        f"trivial Litestar handler (ceiling): {ceiling:8.0f} req/s  rounds: "
        + ", ".join(f"{c:.0f}" for c in ceilings)
    )
    print(
        f"POST /metric persisted:             {rate:8.0f} req/s  rounds: "
        + ", ".join(f"{r:.0f}" for r in rates)
    )
    print(f"  {requests} requests, {bad} non-2xx, {persisted} history rows written")
    print(
        f"ratio of medians: {rate / ceiling:.0%} of the framework ceiling (target >= 70%); "
        "per round: " + ", ".join(f"{r / c:.0%}" for r, c in zip(rates, ceilings, strict=True))
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
