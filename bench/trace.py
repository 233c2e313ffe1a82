"""Benchmark: find by request or trace id (vigil.trace, sql/57_trace.sql) at scale.

One fresh private PostgreSQL cluster (portable mode). --journal journal lines and
--requests request records over the last 12 days, built set-based (generate_series into
the staging tables, stored by vigil.journal_ingest_staged / vigil.requests_ingest_staged in
batches of --batch, so the id index is filled by the real insert path; a journal line's ids
column is what the API's extraction gives it, known by construction). Traces are local in
time: request record r carries trace id md5(r / 10) and request id req-r; every other journal
line j carries trace id md5(j / 10), in turn as a TRACE_ID field, a traceparent field and
text in the message (the rest carry none); so a lookup finds 10 request records and 5 journal
lines.

Then --rounds alternating rounds of --lookups lookups of random trace ids each: vigil.trace
(every item with its fields, oldest first), and the ceiling: a plain btree lookup of the same
id in a bare table holding one (id, at, ref) row per id occurrence (no fields returned).
Reports p50/p95 of vigil.trace and per-round ratios (min/median/max) of the two medians.

Last, the ingest cost of the ids: --cost-rounds alternating rounds storing the same
--cost-lines journal lines (the real Loghub samples as `journalctl -o json` entries of the
last hour, as bench/journal.py builds them; one in --cost-share (3) carries a trace id, in
turn as a TRACE_ID field, a traceparent field and text in the message) through the API's insert path
(api/journal/store.Inserter, 1,000 lines per call, parsed beforehand) into an emptied
vigil.journal_lines: with the ids extracted and indexed, and without (no extraction, no id
index: the journal before this feature). Reports lines/s of both and the per-round ratio
with/without (min/median/max).

Run: `.venv/bin/python bench/trace.py --journal 200000 --requests 200000` (quick);
the issue's scale is the default (5M + 5M).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import api.journal.ids
from api.journal.formats.journald import Entry, parse_lines
from api.journal.store import Inserter
from bench.common import bench_cluster, cpu_seconds, percentile
from bench.journal import journal_lines
from vigil.cluster import Cluster

_decode_fields = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode

JOURNAL_BATCH = """
insert into pg_temp.journal_stage (at, key, priority, set_id, host, message, fields, ids)
select now() - interval '12 days' * (1 - j::float8 / %(n)s), (j %% 2147483647)::integer, 6,
       (j %% 4) + 1, 'host-' || (j %% 8),
       case when j %% 2 = 1 then 'worker ' || j || ' did its work in ' || (j %% 97) || ' ms'
            when j %% 6 = 4 then 'payment failed trace_id=' || md5((j / 10)::text) || ' code=7'
            else 'handled step ' || j end,
       case when j %% 6 = 0 then jsonb_build_object('TRACE_ID', md5((j / 10)::text))
            when j %% 6 = 2 then jsonb_build_object(
              'traceparent', '00-' || md5((j / 10)::text) || '-00f067aa0ba902b7-01')
            else jsonb_build_object('CODE_LINE', (j %% 500)::text) end,
       case when j %% 2 = 0 then array[md5((j / 10)::text)] end
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


def cost_entries(n: int, share: int = 3) -> list[Entry]:
    """n journal entries of the last hour from the Loghub samples, one in `share` with an
    id (in turn a TRACE_ID field, a traceparent field, text in the message)."""
    out = []
    end = datetime.now(UTC) - timedelta(minutes=5)
    for i, line in enumerate(journal_lines(n, 1, end, timedelta(minutes=50))):
        trace = f"{(i // 30) * 0x9E3779B97F4A7C15 % 2**128:032x}"
        kind = (i // share) % 3 if i % share == 0 else -1
        if kind == 0:
            line = f'{{"TRACE_ID":"{trace}",' + line[1:]
        elif kind == 1:
            line = f'{{"traceparent":"00-{trace}-00f067aa0ba902b7-01",' + line[1:]
        elif kind == 2:
            line = line.replace('"MESSAGE":"', f'"MESSAGE":"trace_id={trace} ', 1)
        out.append(line.encode())
    return parse_lines(out).entries


async def store(dsn: str, entries: list[Entry]) -> tuple[float, float]:
    """Seconds to store the entries through the API's insert path, 1,000 per call, and the
    CPU seconds it took: this process's and its PostgreSQL backend's."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        inserter = Inserter(conn)
        oldest, newest, _ = await inserter.bounds()
        row = await (await conn.execute("select pg_backend_pid()")).fetchone()
        backend = int(row[0]) if row else 0
        cpu = time.process_time() + cpu_seconds(backend)
        t0 = time.perf_counter()
        for start in range(0, len(entries), 1000):
            counts = await inserter.insert(entries[start : start + 1000], oldest, newest)
            assert counts[0] == len(entries[start : start + 1000]), counts
        seconds = time.perf_counter() - t0
        return seconds, time.process_time() + cpu_seconds(backend) - cpu


def ingest_cost(cluster: Cluster, n: int, rounds: int, share: int) -> dict[str, list[float]]:
    """Per round (alternating which goes first), with the ids (extracted and indexed) and
    without them: lines/s (wall clock) and lines per CPU second (this process and its
    PostgreSQL backend: steadier than the wall clock on a shared machine)."""
    dsn = cluster.dsn()
    entries = cost_entries(n, share)
    extract = api.journal.ids.line_ids
    out: dict[str, list[float]] = {"with": [], "without": [], "with_cpu": [], "without_cpu": []}
    with psycopg.connect(dsn, autocommit=True) as conn:
        carrying = sum(1 for e in entries if extract(msgspec_fields(e), e.message))
        print(f"ingest cost: {n:,} lines per round, {carrying:,} of them with an id", flush=True)
        for k in range(rounds):
            rate = {}
            cpu_rate = {}
            for ids in (True, False) if k % 2 == 0 else (False, True):
                conn.execute("truncate vigil.journal_lines")
                conn.execute("checkpoint")
                conn.execute(f"select vigil.trace_journal_index({str(ids).lower()})")
                api.journal.ids.line_ids = extract if ids else no_ids  # type: ignore[assignment]
                try:
                    seconds, cpu = asyncio.run(store(dsn, entries))
                finally:
                    api.journal.ids.line_ids = extract
                rate[ids] = n / seconds
                cpu_rate[ids] = n / cpu
            conn.execute("select vigil.trace_journal_index(true)")
            out["with"].append(rate[True])
            out["without"].append(rate[False])
            out["with_cpu"].append(cpu_rate[True])
            out["without_cpu"].append(cpu_rate[False])
            print(f"  round {k + 1}: lines/s with ids {rate[True]:,.0f}, without "
                  f"{rate[False]:,.0f} (ratio {rate[True] / rate[False]:.3f}); lines per CPU "
                  f"second {cpu_rate[True]:,.0f} and {cpu_rate[False]:,.0f} (ratio "
                  f"{cpu_rate[True] / cpu_rate[False]:.3f})", flush=True)  # fmt: skip
    return out


def no_ids(
    _fields: Mapping[str, msgspec.Raw], _message: str, _encoded: bytes | None = None
) -> list[str] | None:
    return None


def msgspec_fields(entry: Entry) -> dict[str, msgspec.Raw]:
    return _decode_fields(entry.fields)


def lookups(conn: psycopg.Connection[tuple[object, ...]], sql: str, ids: list[str]) -> list[float]:
    times = []
    for trace_id in ids:
        t0 = time.perf_counter()
        rows = conn.execute(sql, (trace_id,)).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
        assert rows, trace_id
    return times


def lookup_step(dsn: str, args: argparse.Namespace, rng: random.Random) -> None:
    """Builds the data, then alternating rounds of lookups (see the module doc)."""
    traces = min(args.journal, args.requests) // 10
    build(dsn, args.journal, args.requests, args.batch)
    with psycopg.connect(dsn, autocommit=True) as conn:
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
    parser.add_argument("--cost-rounds", type=int, default=6, help="rounds of the ingest cost")
    parser.add_argument("--cost-only", action="store_true", help="only the ingest cost")
    parser.add_argument(
        "--cost-share", type=int, default=3, help="one line in this many carries an id"
    )
    args = parser.parse_args()
    rng = random.Random(16)
    with bench_cluster(durable=False) as cluster:
        if not args.cost_only:
            lookup_step(cluster.dsn(), args, rng)
        cost = ingest_cost(cluster, args.cost_lines, args.cost_rounds, args.cost_share)
        for unit, key in (("lines/s", ""), ("lines per CPU second", "_cpu")):
            a, b = cost["with" + key], cost["without" + key]
            r = [x / y for x, y in zip(a, b, strict=True)]
            print(
                f"ingest {unit}, with ids (median) {statistics.median(a):,.0f}, without "
                f"{statistics.median(b):,.0f}; ratio with/without per round: min {min(r):.3f}"
                f" / median {statistics.median(r):.3f} / max {max(r):.3f}"
            )


if __name__ == "__main__":
    main()
