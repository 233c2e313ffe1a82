"""Benchmark: log lines from a file to committed rows through `vigil send file`, beside a
POST of the same lines to the same API.

Data: the real log lines of loghub/*.log in the shared data folder ($VIGIL_SHARED_DATA,
else ../shared/data beside the checkout; Loghub, https://github.com/logpai/loghub, cite
loghub/CITATION), repeated to --lines lines per file.

One fresh private PostgreSQL cluster (fsync on) and one real `vigil api` process. Then
--rounds rounds, alternating which goes first, each with a new file of the same lines:
- send: a real `vigil send file PATH --format text --now` process (one-shot: it exits once
  every line it read is delivered, i.e. committed by the API), timed from its start to its
  exit (its Python start-up of a few tenths of a second included);
- POST: the NDJSON bodies `vigil send file --dry-run` prints for another copy of the file
  (the same lines, batches and fields; built before timing), posted in order over one
  keep-alive connection (like the sender's), timed from the first request to the last
  reply.
Both are checked by the rows stored. Reports lines/s of both per round and the ratio
send/POST (min/median/max).

Run: `.venv/bin/python bench/send.py` (`--lines 100000 --rounds 5` is the default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    VIGIL,
    bench_cluster,
    free_port,
    post_requests,
    process,
    send_all,
    wait_http,
)
from bench.journal import loghub_lines
from vigil import tokens


def write_file(path: Path, n: int) -> None:
    source = [line for _, _, line in loghub_lines()]
    with path.open("w") as out:
        for i in range(n):
            out.write(source[i % len(source)] + "\n")


def stored(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select count(*) from vigil.journal_lines").fetchone()
    return int(row[0]) if row else 0


def send_argv(path: Path, state: Path, *extra: str) -> list[str]:
    return [VIGIL, "send", "file", str(path), "--format", "text", "--now", "--host", "bench",
            "--group", "bench", "--state-file", str(state), *extra]  # fmt: skip


def dry_run_bodies(path: Path, state: Path, env: dict[str, str]) -> list[bytes]:
    """The NDJSON bodies `vigil send file --dry-run` would POST to /journal."""
    out = subprocess.run(
        send_argv(path, state, "--dry-run"), env=env, capture_output=True, check=True
    ).stdout.decode()
    bodies: list[bytes] = []
    current: list[str] | None = None
    for line in out.splitlines():
        if line.startswith("POST "):
            if not line.startswith("POST /journal "):
                raise SystemExit(f"unexpected route in the dry run: {line}")
            current = []
            bodies.append(b"")
        elif current is not None and line.startswith("{"):
            bodies[-1] += line.encode() + b"\n"
    return bodies


def run_send(path: Path, state: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(send_argv(path, state), env=env, capture_output=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"vigil send failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return seconds


def accepted(head: bytes, body: bytes) -> bool:
    return head.startswith(b"HTTP/1.1 200") and b'"rejected":0' in body.replace(b" ", b"")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=100_000, help="lines per file")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-send-"))
    try:
        with bench_cluster() as cluster:
            dsn = cluster.dsn()
            with psycopg.connect(dsn, autocommit=True) as conn:
                token = tokens.create(conn, "bench-send")
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            api_env = {**os.environ, "DATABASE_URL": dsn, "VIGIL_PORT": str(port)}
            send_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
            send_env.update(VIGIL_URL=url, VIGIL_TOKEN=token, XDG_STATE_HOME=str(work))
            headers = {"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"}
            rates: dict[str, list[float]] = {"send": [], "post": []}
            with process([VIGIL, "api"], api_env, work / "api.log"):
                wait_http(url + "/health")
                for r in range(args.rounds):
                    rate: dict[str, float] = {}
                    for kind in ("send", "post") if r % 2 == 0 else ("post", "send"):
                        path = work / f"{kind}-{r}.log"
                        write_file(path, args.lines)
                        before = stored(dsn)
                        if kind == "send":
                            seconds = run_send(path, work / f"{kind}-{r}.state", send_env)
                        else:
                            bodies = dry_run_bodies(path, work / f"{kind}-{r}.state", send_env)
                            requests = post_requests(url, "/journal", headers, bodies)
                            seconds = asyncio.run(send_all(url, requests, 1, accepted))
                        got = stored(dsn) - before
                        if got != args.lines:
                            raise SystemExit(f"{kind}: {got} rows stored, not {args.lines}")
                        rate[kind] = args.lines / seconds
                        path.unlink()
                    rates["send"].append(rate["send"])
                    rates["post"].append(rate["post"])
                    print(f"round {r + 1}: vigil send file {rate['send']:,.0f} lines/s, "
                          f"POST {rate['post']:,.0f} lines/s, ratio "
                          f"{rate['send'] / rate['post']:.3f}", flush=True)  # fmt: skip
            ratios = [s / p for s, p in zip(rates["send"], rates["post"], strict=True)]
            print(json.dumps({
                "lines": args.lines,
                "send_lines_per_s": [round(x) for x in rates["send"]],
                "post_lines_per_s": [round(x) for x in rates["post"]],
            }))  # fmt: skip
            print(
                f"vigil send file / POST, per round: min {min(ratios):.3f} / median "
                f"{statistics.median(ratios):.3f} / max {max(ratios):.3f}; median lines/s "
                f"{statistics.median(rates['send']):,.0f} and "
                f"{statistics.median(rates['post']):,.0f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
