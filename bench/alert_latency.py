"""Benchmark: time from a ping deadline passing to the Telegram request arriving at a
local fake Bot API server, with a real `vigil notifier` process (portable mode: the
notifier drives the detector every VIGIL_TICK_SECONDS, 0.5 s by default).

N metrics get deadlines spread over a window; each one's latency is the arrival time of
its "Alert:" message minus its deadline. Run: `.venv/bin/python bench/alert_latency.py`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import VIGIL, bench_cluster, percentile, process
from tests.support.fake_telegram import FakeTelegram


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metrics", type=int, default=300)
    parser.add_argument("--window", type=float, default=20.0, help="seconds to spread over")
    args = parser.parse_args()
    telegram = FakeTelegram()
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-latency-"))
    with bench_cluster() as cluster:
        dsn = cluster.dsn()
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "TELEGRAM_TOKEN": telegram.token,
            "TELEGRAM_CHAT_ID": "42",
            "TELEGRAM_API_BASE": telegram.base_url,
        }
        with process([VIGIL, "notifier"], env, work / "notifier.log"):
            start = datetime.now(UTC) + timedelta(seconds=3)
            deadlines: dict[str, datetime] = {}
            with psycopg.connect(dsn, autocommit=True) as conn:
                for i in range(args.metrics):
                    deadline = start + timedelta(seconds=args.window * i / args.metrics)
                    name = f"job-{i}"
                    deadlines[name] = deadline
                    # value "1": a one-minute deadline, so the report is 60 s before it.
                    conn.execute(
                        "select vigil.ingest_metric('bench', %s, 'ping', '1', %s)",
                        (name, deadline - timedelta(minutes=1)),
                    )
            telegram.wait_for(args.metrics, timeout=args.window + 60)
    # FakeTelegram stamps arrivals with time.monotonic(); map them to wall-clock time.
    offset = time.time() - time.monotonic()
    latencies = []
    for request in telegram.delivered:
        name = request.body["text"].split(" - ", 1)[1].split(" Value:")[0]
        arrived = datetime.fromtimestamp(request.at + offset, UTC)
        latencies.append((arrived - deadlines[name]).total_seconds())
    telegram.down()
    latencies.sort()
    print(f"alerts: {len(latencies)} over {args.window:.0f} s")
    print(
        f"deadline -> Telegram request: p50 {percentile(latencies, 50) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms "
        f"(target p99 <= 2000 ms)"
    )


if __name__ == "__main__":
    main()
