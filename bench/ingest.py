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
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import VIGIL, bench_cluster, free_port, process, wait_http
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
    path = shutil.which("wrk")
    if path is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        path = shutil.which("wrk")
    assert path is not None
    return path


def run_wrk(wrk: str, url: str, script: Path, seconds: int) -> tuple[float, int, int]:
    out = subprocess.run(
        [wrk, "-t2", "-c32", f"-d{seconds}s", "-s", str(script), "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, total, int(bad.group(1)) if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    wrk = ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-ingest-"))
    with bench_cluster() as cluster:
        dsn = cluster.dsn()
        with psycopg.connect(dsn, autocommit=True) as conn:
            token = tokens.create(conn, "bench")
        script = work / "post.lua"
        script.write_text(WRK_SCRIPT % {"token": token})

        port = free_port()
        with process([sys.executable, str(Path(__file__).with_name("trivial_app.py")),
                      str(port)], dict(os.environ), work / "trivial.log"):
            wait_http(f"http://127.0.0.1:{port}/")
            run_wrk(wrk, f"http://127.0.0.1:{port}/metric", script, 3)  # warm-up
            ceiling, _, _ = run_wrk(wrk, f"http://127.0.0.1:{port}/metric", script, args.seconds)

        port = free_port()
        env = {**os.environ, "DATABASE_URL": dsn, "VIGIL_PORT": str(port)}
        with process([VIGIL, "api"], env, work / "api.log"):
            wait_http(f"http://127.0.0.1:{port}/health")
            run_wrk(wrk, f"http://127.0.0.1:{port}/metric", script, 3)
            with psycopg.connect(dsn) as conn:
                before = conn.execute("select count(*) from vigil.metric_history").fetchone()
            vigil_rps, total, bad = run_wrk(wrk, f"http://127.0.0.1:{port}/metric", script,
                                            args.seconds)
            with psycopg.connect(dsn) as conn:
                after = conn.execute("select count(*) from vigil.metric_history").fetchone()
        assert before is not None and after is not None
        persisted = after[0] - before[0]

    print(f"trivial Litestar handler (ceiling): {ceiling:8.0f} req/s")
    print(f"POST /metric persisted:             {vigil_rps:8.0f} req/s "
          f"({total} requests, {bad} non-2xx, {persisted} history rows written)")
    print(f"ratio: {vigil_rps / ceiling:.0%} of the framework ceiling (target >= 70%)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
