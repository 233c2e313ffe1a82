"""Benchmark: find by request or trace id (vigil.trace, sql/57_trace.sql) at scale.

One fresh private PostgreSQL cluster (portable mode). --journal journal lines and
--requests request records over the last 12 days, built set-based (generate_series into
the staging tables, stored by vigil.journal_ingest_staged / vigil.requests_ingest_staged in
batches of --batch, so the id index is filled by the real insert path). Traces are local in
time: request record r carries trace id md5(r / 10) and request id req-r; every other journal
line j carries trace id md5(j / 10), in turn as a TRACE_ID field, a traceparent field and
text in the message (the rest carry none); so a lookup finds 10 request records and 5 journal
lines.

Then --rounds alternating rounds of --lookups lookups of random trace ids each: vigil.trace
(every item with its fields, oldest first), and the ceiling: a plain btree lookup of the same
id in a bare table holding one (id, at, ref) row per id occurrence (no fields returned).
Reports p50/p95 of vigil.trace and per-round ratios (min/median/max) of the two medians.

Run: `.venv/bin/python bench/trace.py --journal 200000 --requests 200000` (quick);
the issue's scale is the default (5M + 5M).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_cluster, percentile

JOURNAL_BATCH = """
insert into pg_temp.journal_stage (at, key, priority, set_id, host, message, fields)
select now() - interval '12 days' * (1 - j::float8 / %(n)s), (j %% 2147483647)::integer, 6,
       (j %% 4) + 1, 'host-' || (j %% 8),
       case when j %% 2 = 1 then 'worker ' || j || ' did its work in ' || (j %% 97) || ' ms'
            when j %% 6 = 4 then 'payment failed trace_id=' || md5((j / 10)::text) || ' code=7'
            else 'handled step ' || j end,
       case when j %% 6 = 0 then jsonb_build_object('TRACE_ID', md5((j / 10)::text))
            when j %% 6 = 2 then jsonb_build_object(
              'traceparent', '00-' || md5((j / 10)::text) || '-00f067aa0ba902b7-01')
            else jsonb_build_object('CODE_LINE', (j %% 500)::text) end
  from generate_series(%(lo)s::bigint, %(hi)s::bigint) j
"""

REQUEST_BATCH = """
insert into pg_temp.requests_stage (at, key, host, vhost, ip, method, path, query, protocol,
                                    status, bytes, user_agent, request_time, request_id,
                                    trace_id)
select now() - interval '12 days' * (1 - r::float8 / %(n)s), r, 'edge-' || (r %% 4),
       'shop.example', ('10.0.' || (r %% 200) || '.' || (r %% 250))::inet,
       'GET', '/item/' || (r %% 10000), 'page=' || (r %% 7), 'HTTP/1.1',
       case when r %% 50 = 0 then 502 else 200 end, r %% 100000, 'Mozilla/5.0',
       (r %% 1000) / 1000.0, 'req-' || r, md5((r / 10)::text)
  from generate_series(%(lo)s::bigint, %(hi)s::bigint) r
"""

BARE = """
create table bench_ids (id text not null, at timestamptz not null, ref bigint not null);
insert into bench_ids
select md5((j / 10)::text), now() - interval '12 days' * (1 - j::float8 / %(nj)s::bigint), j
  from generate_series(0, %(nj)s::bigint - 1) j where j %% 2 = 0;
insert into bench_ids
select md5((r / 10)::text), now() - interval '12 days' * (1 - r::float8 / %(nr)s::bigint), r
  from generate_series(0, %(nr)s::bigint - 1) r;
create index on bench_ids (id);
analyze bench_ids;
"""


def build(dsn: str, journal: int, requests: int, batch: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("select vigil.trace_journal_index(true)")  # opt-in (sql/57_trace.sql)
        conn.execute(
            "select vigil.journal_sets_put(array[1, 2, 3, 4]::bigint[],"
            " array['shop.service', 'pay.service', 'cart.service', 'web.service'],"
            " array[null, null, null, null]::text[], array[false, false, false, false],"
            " array[null, null, null, null]::text[], array[null, null, null, null]::text[],"
            " array['{}', '{}', '{}', '{}']::jsonb[])"
        )
        steps = (
            ("journal", "select vigil.journal_stage()", JOURNAL_BATCH,
             "select accepted from vigil.journal_ingest_staged()", journal),
            ("requests", "select vigil.requests_stage()", REQUEST_BATCH,
             "select accepted from vigil.requests_ingest_staged()", requests),
        )  # fmt: skip
        for name, stage, sql, ingest, n in steps:
            t0 = time.perf_counter()
            stored = 0
            for lo in range(0, n, batch):
                with conn.transaction():
                    conn.execute(stage)
                    conn.execute(sql, {"lo": lo, "hi": min(lo + batch, n) - 1, "n": n})
                    row = conn.execute(ingest).fetchone()
                    stored += int(row[0]) if row else 0
            seconds = time.perf_counter() - t0
            assert stored == n, (name, stored, n)
            out[f"{name}_rows_per_s"] = n / seconds
            print(f"{name}: {n} rows stored in {seconds:.1f} s ({n / seconds:,.0f} rows/s)",
                  flush=True)  # fmt: skip
        t0 = time.perf_counter()
        for statement in BARE.split(";"):
            if statement.strip():
                conn.execute(statement, {"nj": journal, "nr": requests})
        conn.execute("analyze vigil.journal_lines")
        conn.execute("analyze vigil.requests")
        print(f"bare table built in {time.perf_counter() - t0:.1f} s", flush=True)
    return out


def ingest_cost(dsn: str, n: int, batch: int, rounds: int) -> list[float]:
    """Per round (alternating): journal rows/s without the id index over rows/s with it,
    storing the same n lines into an emptied vigil.journal_lines each time."""
    ratios = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(rounds):
            rate = {}
            for indexed in (True, False):
                conn.execute("truncate vigil.journal_lines")
                if not indexed:
                    conn.execute("select vigil.trace_journal_index(false)")
                t0 = time.perf_counter()
                for lo in range(0, n, batch):
                    with conn.transaction():
                        conn.execute("select vigil.journal_stage()")
                        conn.execute(
                            JOURNAL_BATCH, {"lo": lo, "hi": min(lo + batch, n) - 1, "n": n}
                        )
                        conn.execute("select vigil.journal_ingest_staged()")
                rate[indexed] = n / (time.perf_counter() - t0)
                if not indexed:
                    conn.execute("select vigil.trace_journal_index(true)")
            ratios.append(rate[False] / rate[True])
            print(f"journal rows/s with the id index {rate[True]:,.0f}, without {rate[False]:,.0f}")
    return ratios


def lookups(conn: psycopg.Connection[tuple[object, ...]], sql: str, ids: list[str]) -> list[float]:
    times = []
    for trace_id in ids:
        t0 = time.perf_counter()
        rows = conn.execute(sql, (trace_id,)).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
        assert rows, trace_id
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--journal", type=int, default=5_000_000, help="journal lines")
    parser.add_argument("--requests", type=int, default=5_000_000, help="request records")
    parser.add_argument("--batch", type=int, default=250_000, help="rows per insert batch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lookups", type=int, default=100, help="lookups per round and kind")
    parser.add_argument(
        "--cost-lines", type=int, default=200_000, help="lines per round of the ingest cost"
    )
    args = parser.parse_args()
    rng = random.Random(16)
    traces = min(args.journal, args.requests) // 10
    with bench_cluster(durable=False) as cluster:
        build(cluster.dsn(), args.journal, args.requests, args.batch)
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            found = conn.execute("select count(*) from vigil.trace(md5('7'))").fetchone()
            print(f"items per lookup: {found[0] if found else 0}")
            trace_sql = "select * from vigil.trace(%s)"
            bare_sql = "select * from bench_ids where id = %s"
            warm = [f"{rng.randrange(traces)}" for _ in range(20)]
            lookups(conn, "select * from vigil.trace(md5(%s))", warm)
            all_trace: list[float] = []
            ratios: list[float] = []
            for _ in range(args.rounds):
                ids = [
                    conn.execute("select md5(%s)", (str(rng.randrange(traces)),)).fetchone()[0]  # type: ignore[index]
                    for _ in range(args.lookups)
                ]
                t = lookups(conn, trace_sql, ids)
                b = lookups(conn, bare_sql, ids)
                all_trace += t
                ratios.append(statistics.median(t) / statistics.median(b))
            print(
                f"vigil.trace at {args.journal:,} journal lines + {args.requests:,} requests: "
                f"p50 {percentile(all_trace, 50):.2f} ms, p95 {percentile(all_trace, 95):.2f} ms,"
                f" max {max(all_trace):.2f} ms ({len(all_trace)} lookups)"
            )
            print(
                "median ratio to a bare btree lookup per round: "
                f"min {min(ratios):.2f} / median {statistics.median(ratios):.2f} / "
                f"max {max(ratios):.2f}"
            )
            sizes = conn.execute(
                "select pg_size_pretty(sum(pg_relation_size(i.indexrelid)))"
                "  from pg_index i join pg_class c on c.oid = i.indexrelid"
                " where c.relname like '%%ids_idx%%'"
            ).fetchone()
            print(f"journal id index size: {sizes[0] if sizes else '?'}")
        cost = ingest_cost(cluster.dsn(), args.cost_lines, args.batch, 3)
        print(
            "ingest: rows/s without the id index over with it, per round: "
            f"min {min(cost):.2f} / median {statistics.median(cost):.2f} / max {max(cost):.2f}"
        )


if __name__ == "__main__":
    main()
