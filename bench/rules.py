"""Benchmark: the alert-rule engine.

1. Evaluation time per tick for 1k, 10k and 100k (rule x instance) pairs: rules "avg over
   5 minutes > threshold" over series with a point every 10 s, in the steady state (no
   change of state, the common case), with the minute rollup refreshed as its job does.
   Each round also times the ceiling: the one query that reads the same windows from the raw
   points (the data the rules need, nothing judged or written), alternating, and reports
   min/median/max of evaluation / ceiling.
2. Breach -> Telegram request, with a real `vigil notifier` process (portable mode: it runs
   vigil.evaluate_rules every VIGIL_TICK_SECONDS; the rule's eval_interval is 10 s): a
   windowed series rule (target <= eval interval + 2 s) and the ingest-time disk rule
   (target <= 2 s).

Run: `.venv/bin/python bench/rules.py` (`--sizes 1000,10000` for a shorter run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import VIGIL, bench_cluster, percentile, process
from tests.support.fake_telegram import FakeTelegram

Conn = psycopg.Connection[tuple[object, ...]]
SERIES_PER_RULE = 1000


def setup_pairs(conn: Conn, pairs: int) -> int:
    """pairs / 1000 rules over 1000 series each (their own series name); returns rules."""
    rules = max(1, pairs // SERIES_PER_RULE)
    conn.execute("truncate vigil.series, vigil.points, vigil.alert_instances, vigil.alert_events")
    conn.execute("delete from vigil.alert_rules where not builtin")
    conn.execute(
        "insert into vigil.series (name, labels) "
        "select 'bench_' || r, jsonb_build_object('host', 'h' || i) "
        "from generate_series(1, %s) r, generate_series(1, %s) i",
        (rules, SERIES_PER_RULE),
    )
    conn.execute(
        "insert into vigil.points (series_id, at, value) "
        "select s.id, now() - make_interval(secs => k * 10), random() * 100 "
        "from vigil.series s, generate_series(0, 29) k"
    )
    conn.execute(
        "insert into vigil.alert_rules (name, source, match_name, agg, agg_window, op, threshold) "
        "select 'bench_' || r, 'series', 'bench_' || r, 'avg', '5 minutes', '>', 1000 "
        "from generate_series(1, %s) r",
        (rules,),
    )
    # The rollup job (every minute in production) has run: whole minutes come from it.
    conn.execute("select vigil.refresh_series_rollups(now(), '{}')")
    conn.execute("analyze")
    conn.execute("select vigil.evaluate_rules(now())")  # instances created
    return rules


def timed(conn: Conn, sql: str) -> float:
    t = time.perf_counter()
    conn.execute(sql)
    return time.perf_counter() - t


CEILING = (
    "select s.id, avg(p.value) from vigil.series s "
    "join vigil.points p on p.series_id = s.id and p.at > now() - interval '5 minutes' "
    "where s.name like 'bench\\_%' group by s.id"
)


def evaluation(dsn: str, sizes: list[int], rounds: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for pairs in sizes:
            rules = setup_pairs(conn, pairs)
            ticks, ceilings = [], []
            for _ in range(rounds):
                conn.execute("update vigil.alert_rules set next_eval_at = '-infinity'")
                ticks.append(timed(conn, "select vigil.evaluate_rules(now())"))
                ceilings.append(timed(conn, CEILING))
            ratios = sorted(t / c for t, c in zip(ticks, ceilings, strict=True))
            print(
                f"{pairs:>7} pairs ({rules} rules x {SERIES_PER_RULE} series): tick "
                f"min {min(ticks) * 1000:.0f} / median {statistics.median(ticks) * 1000:.0f} / "
                f"max {max(ticks) * 1000:.0f} ms; ceiling (reading the windows) median "
                f"{statistics.median(ceilings) * 1000:.0f} ms; tick / ceiling min "
                f"{ratios[0]:.1f} / median {statistics.median(ratios):.1f} / max {ratios[-1]:.1f}"
            )


def latency(dsn: str, alerts: int) -> None:
    telegram = FakeTelegram()
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-rules-"))
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "TELEGRAM_TOKEN": telegram.token,
        "TELEGRAM_CHAT_ID": "42",
        "TELEGRAM_API_BASE": telegram.base_url,
    }
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("truncate vigil.series, vigil.points, vigil.alert_instances, vigil.outbox")
        conn.execute("delete from vigil.alert_rules where not builtin")
        conn.execute(
            "insert into vigil.alert_rules (name, source, match_name, agg, op, threshold, "
            "group_wait, eval_interval) values ('temp_high', 'series', 'temp', 'last', '>', 90, "
            "'0', '10 seconds')"
        )
    sent: dict[str, datetime] = {}
    with process([VIGIL, "notifier"], env, work / "notifier.log"):
        time.sleep(3)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for i in range(alerts):
                at = datetime.now(UTC)
                conn.execute(
                    "select vigil.add_point('temp', 95, %s, jsonb_build_object('host', %s::text))",
                    (at, f"s{i}"),
                )
                sent[f'temp{{host="s{i}"}}'] = at
                at = datetime.now(UTC)
                conn.execute("select vigil.ingest_metric(%s, '/', 'disk', '99', %s)", (f"d{i}", at))
                sent[f"d{i} - /"] = at
                time.sleep(0.37)
            telegram.wait_for(2 * alerts, timeout=60)
    offset = time.time() - time.monotonic()
    windowed, ingest = [], []
    for request in telegram.delivered:
        text = request.body["text"].replace("&quot;", '"')
        arrived = datetime.fromtimestamp(request.at + offset, UTC)
        key = text.split(" - ", 1)[1].split(" Value:")[0]
        if text.startswith("Alert: temp_high"):
            windowed.append((arrived - sent[key]).total_seconds())
        else:
            ingest.append(
                (arrived - sent[text.split("Alert: ", 1)[1].split(" Value:")[0]]).total_seconds()
            )
    telegram.down()
    for name, values, target in (
        ("windowed series rule (eval every 10 s)", windowed, 12.0),
        ("ingest-time disk rule", ingest, 2.0),
    ):
        values.sort()
        print(
            f"{name}: {len(values)} alerts, breach -> Telegram request p50 "
            f"{percentile(values, 50):.2f} s, p99 {percentile(values, 99):.2f} s, "
            f"max {values[-1]:.2f} s (target p99 <= {target:.0f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--alerts", type=int, default=60)
    args = parser.parse_args()
    with bench_cluster() as cluster:
        evaluation(cluster.dsn(), [int(s) for s in args.sizes.split(",")], args.rounds)
        latency(cluster.dsn(), args.alerts)


if __name__ == "__main__":
    main()
