"""Benchmark: journal ingest through POST /journal beside raw COPY, and journal search.

Data: the real log lines of loghub/*.log in the shared data folder (Loghub,
https://github.com/logpai/loghub; cite the paper in loghub/CITATION): $VIGIL_SHARED_DATA,
else ../shared/data beside the checkout (--allow-generated: lines of the same shape when
they are missing). They are wrapped as `journalctl -o json` entries
of 8 hosts and 4 units, spread evenly over the last 14 days, plus a few "needle" lines for
the rare-substring search.

Steps, all in one run on one fresh private PostgreSQL cluster (fsync on):
1. --rounds rounds (medians reported), each: raw COPY of the parsed rows, as text and as
   binary COPY, into a plain table with only (at) and (host, at) indexes (the ceiling is
   the faster of the two), then the same lines through a real `vigil api` process
   (uvicorn) into an emptied vigil.journal, several concurrent clients posting
   metrics-sender bodies `{"logs": "..."}` of --batch lines each;
2. the portable maintenance job until every closed day has its pg_trgm index; bytes per
   stored line by component (heap, TOAST, each index), beside the NDJSON and the plain
   table of step 1;
3. search latencies through vigil.journal_search;
4. backfill against current lines (--backfill-lines, own databases, alternating rounds):
   PostgreSQL CPU per line for lines of the last hour, and for the same number of lines
   spread over the 14 days before, as a new install receives them (the maintenance job
   has run before and runs during the backfill); both including the deferred index
   builds until every closed day is indexed;
5. TimescaleDB mode on the PGlite test server: compression ratio, compressed bytes by column.
Ratios are taken per round and reported as min/median/max.

Run: `.venv/bin/python bench/journal.py --lines 200000` (full: `--lines 5000000`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.core import pgcopy
from api.core.pgcopy import HEADER as COPY_HEADER
from api.core.pgcopy import TRAILER as COPY_TRAILER
from api.core.timestamps import PG_EPOCH_US
from api.journal import QUERIES
from api.journal.formats.journald import Entry, parse_lines
from api.journal.store import Inserter, array_params
from bench.common import (
    VIGIL,
    bench_cluster,
    compressed_chunks,
    free_port,
    percentile,
    process,
    wait_http,
)
from tests.support.datasets import SHARED_DATA_ENV, shared_data_dir
from vigil import tokens
from vigil.cluster import Cluster
from vigil.db import one_row

ALLOW_GENERATED = False  # --allow-generated


def loghub_dir() -> Path:
    """$VIGIL_SHARED_DATA/loghub, else ../shared/data/loghub beside the checkout."""
    return shared_data_dir() / "loghub"


def generated_lines() -> list[tuple[str, str, str]]:
    """Lines in the shape of the Loghub samples (syslog, sshd, Apache, HDFS), for a clone
    without them (--allow-generated)."""
    rng = random.Random(5)
    templates = [
        ("Linux", "{} combo sshd(pam_unix)[{}]: authentication failure; logname= uid=0 "
         "euid=0 tty=NODEVssh ruser= rhost=10.0.{}.{}"),
        ("OpenSSH", "Dec 10 06:55:48 LabSZ sshd[{}]: Failed password for invalid user u{} "
         "from 173.234.{}.{} port {} ssh2"),
        ("Apache", "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state "
         "{} {} {} {}"),
        ("HDFS", "081109 203615 {} INFO dfs.DataNode$PacketResponder: PacketResponder {} for "
         "block blk_{}{} terminating"),
    ]  # fmt: skip
    out = []
    for i in range(8000):
        kind, template = templates[i % 4]
        unit, ident = UNITS[kind]
        numbers = [rng.randrange(10_000) for _ in range(5)]
        out.append((unit, ident, template.format(*numbers)))
    return out


HOSTS = [f"node-{i:02d}" for i in range(8)]
UNITS = {
    "Apache": ("httpd.service", "httpd"),
    "HDFS": ("hdfs-datanode.service", "java"),
    "Linux": ("systemd-logind.service", "sshd"),
    "OpenSSH": ("ssh.service", "sshd"),
}
NEEDLE = "zq-needle-4711"
NEEDLES = 6


def loghub_lines() -> list[tuple[str, str, str]]:
    """(unit, identifier, line) for every line of the Loghub samples."""
    loghub = loghub_dir()
    if not any(loghub.glob("*.log")):
        if ALLOW_GENERATED:
            print(f"note: no Loghub samples in {loghub}; using generated lines", flush=True)
            return generated_lines()
        sys.exit(
            f"no Loghub samples (*.log) in {loghub}: download them from "
            "https://github.com/logpai/loghub (e.g. Linux_2k.log, OpenSSH_2k.log) into a "
            f"folder loghub/ and set {SHARED_DATA_ENV} to its parent folder, or pass "
            "--allow-generated for lines of the same shape"
        )
    out = []
    for path in sorted(loghub.glob("*.log")):
        unit, ident = UNITS.get(path.name.split("_")[0], ("unknown.service", "unknown"))
        out += [(unit, ident, ln) for ln in path.read_text(errors="replace").splitlines() if ln]
    return out


def journal_lines(n: int, days: int, end: datetime, span: timedelta | None = None) -> Iterator[str]:
    """n journalctl -o json lines, oldest first, evenly over `days` days (or `span`)
    before end."""
    rng = random.Random(42)
    source = loghub_lines()
    span = span or timedelta(days=days)
    start_us = int((end - span).timestamp() * 1_000_000)
    step = (span // timedelta(microseconds=1)) // n
    needles = {rng.randrange(n) for _ in range(NEEDLES)}
    boot = "8f6a1c0e2b7d4e5f9a3b2c1d0e9f8a7b"
    # journald's x= is a hash of the entry's fields: 64 bits that look random
    xors = random.Random(7)
    for i in range(n):
        unit, ident, text = source[rng.randrange(len(source))]
        host = HOSTS[rng.randrange(len(HOSTS))]
        if i in needles:
            text = f"{text} {NEEDLE}"
        ts = start_us + i * step
        pid = 1000 + i % 30000
        monotonic = ts - start_us + 1_000_000
        priority = "6" if "error" not in text.lower() else "3"
        # what json.dumps would write (only the message needs escaping), 3x faster
        yield (
            f'{{"__CURSOR":"s=3b5a;i={i:x};b={boot};m={monotonic:x};t={ts:x};'
            f'x={xors.getrandbits(64):x}","__REALTIME_TIMESTAMP":"{ts}","__MONOTONIC_TIMESTAMP":"{monotonic}",'
            f'"_BOOT_ID":"{boot}","_MACHINE_ID":"0a1b2c3d4e5f60718293a4b5c6d7e8f9",'
            f'"_HOSTNAME":"{host}","_TRANSPORT":"syslog","PRIORITY":"{priority}",'
            f'"SYSLOG_FACILITY":"3","SYSLOG_IDENTIFIER":"{ident}","_PID":"{pid}","_UID":"0",'
            f'"_GID":"0","_COMM":"{ident}","_SYSTEMD_CGROUP":"/system.slice/{unit}",'
            f'"_SYSTEMD_UNIT":"{unit}","_SYSTEMD_SLICE":"system.slice",'
            f'"MESSAGE":{json.dumps(text)}}}'
        )


def write_bodies(path: Path, n: int, days: int, batch: int, end: datetime) -> list[int]:
    """Writes metrics-sender bodies, one per line of the file; returns line counts."""
    sizes = []
    with path.open("w") as out:
        chunk: list[str] = []
        for ln in journal_lines(n, days, end):
            chunk.append(ln)
            if len(chunk) == batch:
                out.write(json.dumps({"logs": "\n".join(chunk)}) + "\n")
                sizes.append(len(chunk))
                chunk = []
        if chunk:
            out.write(json.dumps({"logs": "\n".join(chunk)}) + "\n")
            sizes.append(len(chunk))
    return sizes


def _copy_text(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


_RAW_START = struct.Struct("!hiqi").pack
_PRIORITY = [b"\x00\x00\x00\x02" + struct.pack("!h", p) for p in range(8)]


def raw_rows(entries: list[Entry]) -> bytes:
    """Binary COPY rows (no header/trailer) of bench_raw: every column as parsed."""
    rows: list[bytes] = []
    for e in entries:
        m = e.message.encode()
        rows += (
            _RAW_START(8, 8, e.us - PG_EPOCH_US, 32),
            e.sha256,
            pgcopy.text(e.host),
            pgcopy.text(e.unit),
            pgcopy.text(e.container),
            pgcopy.NULL if e.priority is None else _PRIORITY[e.priority],
            pgcopy.length(len(m)),
            m,
            pgcopy.jsonb(e.fields),
        )
    return b"".join(rows)


def write_copy_files(bodies: Path, out_path: Path, binary_path: Path) -> None:
    """The parsed rows of every body as COPY text and as binary COPY rows (not timed). The
    binary file holds, per body, an 8-byte length and the rows without header/trailer."""
    with bodies.open() as src, out_path.open("w") as out, binary_path.open("wb") as binary:
        for body in src:
            batch = parse_lines([s.encode() for s in json.loads(body)["logs"].split("\n")])
            rows = raw_rows(batch.entries)
            binary.write(len(rows).to_bytes(8, "little") + rows)
            for e in batch.entries:
                out.write(
                    "\t".join(
                        _copy_text(v)
                        for v in (
                            e.at,
                            e.sha256,
                            e.host,
                            e.unit,
                            e.container,
                            e.priority,
                            e.message,
                            e.fields.decode(),
                        )
                    )
                    + "\n"
                )


RAW_TABLE = """
create table bench_raw (at timestamptz not null, sha256 bytea not null, host text, unit text,
  container text, priority smallint, message text not null, fields jsonb not null);
create index on bench_raw (at);
create index on bench_raw (host, at);
"""


COLUMNS = "(at, sha256, host, unit, container, priority, message, fields)"


def empty(dsn: str, table: str) -> None:
    """Empties a table and checkpoints, so every timed step starts alike."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"truncate {table}")
        conn.execute("checkpoint")


def raw_copy(dsn: str, copy_file: Path) -> tuple[int, float]:
    """Text COPY of the rows into bench_raw, one COPY (transaction) per ~8 MB."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        n = 0
        with copy_file.open("rb") as src:
            while True:
                block = src.read(8 * 1024 * 1024)
                if not block:
                    break
                # one COPY (one transaction) per ~8 MB, like a bulk loader
                rest = src.readline()
                block += rest
                n += block.count(b"\n")
                with conn.cursor().copy(
                    "copy bench_raw (at, sha256, host, unit, container, priority, message,"
                    " fields) from stdin"
                ) as copy:
                    copy.write(block)
        return n, time.perf_counter() - started


def raw_copy_binary(dsn: str, binary_file: Path) -> float:
    """Binary COPY of the same rows into bench_raw, one COPY per ~8 MB; returns seconds."""
    with psycopg.connect(dsn, autocommit=True) as conn, binary_file.open("rb") as src:
        started = time.perf_counter()
        done = False
        while not done:
            block: list[bytes] = []
            size = 0
            while size < 8 * 1024 * 1024:
                head = src.read(8)
                if not head:
                    done = True
                    break
                block.append(src.read(int.from_bytes(head, "little")))
                size += len(block[-1])
            if block:
                with conn.cursor().copy(
                    f"copy bench_raw {COLUMNS} from stdin (format binary)"
                ) as c:
                    c.write(COPY_HEADER + b"".join(block) + COPY_TRAILER)
        return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post_all(url: str, token: str, bodies: Path, clients: int) -> tuple[float, dict[str, int]]:
    """Every body of the file, posted by `clients` threads (each reads its own share from
    the file, so a 5M-line run does not hold gigabytes in memory)."""
    offsets = []
    with bodies.open("rb") as src:
        position = 0
        for body in src:
            offsets.append((position, len(body) - 1))
            position += len(body)
    totals = {"accepted": 0, "duplicated": 0, "rejected": 0, "errors": 0}
    lock = threading.Lock()
    errors: list[str] = []

    def client(k: int) -> None:
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        with httpx.Client(timeout=120, headers=headers) as http, bodies.open("rb") as src:
            for start, length in offsets[k::clients]:
                src.seek(start)
                r = http.post(url, content=src.read(length))
                with lock:
                    if r.status_code != 200:
                        totals["errors"] += 1
                        errors.append(f"{r.status_code} {r.text[:200]}")
                        continue
                    for key in ("accepted", "duplicated", "rejected"):
                        totals[key] += r.json()[key]

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for error in errors[:5]:
        print("  error:", error)
    return time.perf_counter() - started, totals


def timed(
    conn: psycopg.Connection[tuple[object, ...]], sql: str, params: tuple[object, ...]
) -> tuple[float, list[tuple[object, ...]]]:
    started = time.perf_counter()
    rows = conn.execute(sql, params).fetchall()
    return (time.perf_counter() - started) * 1000, rows


SEARCH = (
    "select at, id, message from vigil.journal_search(p_from => %s, p_to => %s, p_host => %s,"
    " p_text => %s, p_after_at => %s, p_after_id => %s, p_limit => %s)"
)


def searches(dsn: str, end: datetime, days: int, runs: int) -> dict[str, float]:
    rng = random.Random(7)
    out: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        hour_ms = []
        for _ in range(runs):
            t0 = end - timedelta(hours=rng.uniform(1, days * 24 - 1))
            host = rng.choice(HOSTS)
            ms, _rows = timed(
                conn, SEARCH, (t0, t0 + timedelta(hours=1), host, "session", None, None, 100)
            )
            hour_ms.append(ms)
        out["host + 1 h + substring, first page p95 ms"] = percentile(hour_ms, 95)
        rare_ms = []
        hits = 0
        for _ in range(runs):
            ms, rows = timed(conn, SEARCH, (None, None, None, NEEDLE.upper(), None, None, 100))
            rare_ms.append(ms)
            hits = len(rows)
        out["rare substring, all hosts, whole retention p95 ms"] = percentile(rare_ms, 95)
        out["rare substring hits"] = hits
        # keyset: walk to page 50 for one host, then time page 1 and page 50
        host = HOSTS[0]
        cursor: tuple[object, object] = (None, None)
        for _ in range(49):
            _ms, rows = timed(conn, SEARCH, (None, None, host, None, *cursor, 100))
            cursor = (rows[-1][0], rows[-1][1])
        p1, p50 = [], []
        for _ in range(runs):
            p1.append(timed(conn, SEARCH, (None, None, host, None, None, None, 100))[0])
            p50.append(timed(conn, SEARCH, (None, None, host, None, *cursor, 100))[0])
        out["page 1 (one host, newest first) p95 ms"] = percentile(p1, 95)
        out["page 50 (keyset) p95 ms"] = percentile(p50, 95)
    return out


def spread(values: list[float]) -> str:
    """min / median / max of per-round figures."""
    return " / ".join(f"{v:,.2f}" for v in (min(values), statistics.median(values), max(values)))


def cluster_cpu(data_dir: Path) -> float:
    """CPU seconds (user + system) of a PostgreSQL cluster so far: the postmaster, its live
    children, and the children it has reaped (closed connections)."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        elif int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def lines_table(conn: psycopg.Connection[tuple[object, ...]]) -> str:
    """The table holding the lines: vigil.journal_lines, or vigil.journal (older layout)."""
    row = one_row(conn, "select to_regclass('vigil.journal_lines') is not null")
    return "vigil.journal_lines" if row[0] else "vigil.journal"


def count_sql(table: str, what: str = "count(*)") -> str:
    """select <what> from <table> (a schema-qualified name from lines_table)."""
    query = sql.SQL("select {} from {}").format(sql.SQL(what), sql.Identifier(*table.split(".")))
    return query.as_string(None)


def settle_indexes(conn: psycopg.Connection[tuple[object, ...]], at: datetime) -> int:
    """Runs the maintenance job as of `at` until no closed day lacks its trigram index."""
    table = lines_table(conn)
    for runs in range(1, 6):
        conn.execute("select vigil.journal_maintenance(%s, '{}')", (at,))
        missing = one_row(
            conn,
            """select count(*) from pg_inherits i join pg_class c on c.oid = i.inhrelid
                 where i.inhparent = %s::regclass and c.relname ~ '^journal_p[0-9]{8}$'
                   and substr(c.relname, 10)::date < (%s at time zone 'UTC')::date
                   and pg_relation_size(c.oid) > 0
                   and to_regclass('vigil.' || c.relname || '_message_trgm') is null""",
            (table, at),
        )
        if not missing[0]:
            return runs
    return runs


def component_bytes(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, float]:
    """Bytes of the stored journal by component (all partitions)."""
    table = lines_table(conn)
    heap = one_row(
        conn,
        """select sum(pg_relation_size(c.oid, 'main')),
                   sum(pg_relation_size(c.oid, 'fsm') + pg_relation_size(c.oid, 'vm')),
                   coalesce(sum(pg_total_relation_size(nullif(c.reltoastrelid, 0))), 0)
              from pg_inherits i join pg_class c on c.oid = i.inhrelid
             where i.inhparent = %s::regclass""",
        (table,),
    )
    out = {
        "heap": float(str(heap[0] or 0)),
        "free space + visibility maps": float(str(heap[1] or 0)),
    }
    out["TOAST"] = float(str(heap[2]))
    for kind, size in conn.execute(
        """select case when x.indisunique then 'index: unique (at, dedupe key)'
                        when pg_get_indexdef(x.indexrelid) like '%%gin%%where%%'
                          then 'index: trigram (today, partial)'
                        when pg_get_indexdef(x.indexrelid) like '%%gin%%'
                          then 'index: trigram (closed days)'
                        else 'index: (host, at)' end,
                   sum(pg_relation_size(x.indexrelid))
              from pg_inherits i join pg_index x on x.indrelid = i.inhrelid
             where i.inhparent = %s::regclass group by 1 order by 1""",
        (table,),
    ):
        out[str(kind)] = float(str(size))
    if table == "vigil.journal_lines":
        out["shared fields (journal_sets)"] = float(
            str(one_row(conn, "select pg_total_relation_size('vigil.journal_sets')")[0])
        )
    return out


async def insert_entries(
    dsn: str, entries: list[Entry], every: int = 0, job: str = "", data_dir: Path | None = None
) -> float:
    """The entries through the API's insert path (store.Inserter), 1,000 per call;
    every `every` calls, `job` runs (the maintenance job ticking during a backfill).
    Returns the cluster CPU seconds the job runs took."""
    job_cpu = 0.0
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        inserter = Inserter(conn)
        oldest, newest, _ = await inserter.bounds()
        for k, start in enumerate(range(0, len(entries), 1000), 1):
            await inserter.insert(entries[start : start + 1000], oldest, newest)
            if every and k % every == 0 and data_dir is not None:
                cpu = cluster_cpu(data_dir)
                await conn.execute(job)
                job_cpu += cluster_cpu(data_dir) - cpu
    return job_cpu


def backfill_rounds(cluster: Cluster, template: str, n: int, rounds: int) -> dict[str, float]:
    """PostgreSQL CPU per line: lines of the last hour against the same number spread over
    the 14 days before (a new install's backfill), each in a fresh database cloned from
    the migrated template, alternating; deferred index builds included."""
    end = datetime.now(UTC) - timedelta(minutes=5)
    kinds = {
        "current": parse_lines(
            [ln.encode() for ln in journal_lines(n, 1, end, timedelta(minutes=50))]
        ).entries,
        "backfill": parse_lines(
            [ln.encode() for ln in journal_lines(n, 14, end, timedelta(days=14, minutes=-20))]
        ).entries,
    }
    per_line: dict[str, list[float]] = {k: [] for k in kinds}
    ingest_only: dict[str, list[float]] = {k: [] for k in kinds}
    ratios: list[float] = []
    insert_ratios: list[float] = []
    index_bytes: dict[str, list[float]] = {k: [] for k in kinds}
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        for r in range(rounds):
            order = list(kinds) if r % 2 == 0 else list(reversed(kinds))
            for kind in order:
                db = f"bench_{kind}_{r}"
                admin.execute(f"create database {db} template {template}")
                dsn = cluster.dsn(db)
                with psycopg.connect(dsn, autocommit=True) as conn:
                    # what a running installation's job did before the lines were written
                    # (today's partial trigram index ends before the current lines)
                    conn.execute(
                        "select vigil.journal_maintenance(%s, '{}')", (end - timedelta(minutes=55),)
                    )
                    conn.execute("checkpoint")
                cpu = cluster_cpu(cluster.data)
                # the job ticks 4 times during the backfill (every 10 minutes in production)
                every = max(1, n // 1000 // 4) if kind == "backfill" else 0
                job_cpu = asyncio.run(
                    insert_entries(
                        dsn,
                        kinds[kind],
                        every,
                        "select vigil.journal_maintenance(now(), '{}')",
                        cluster.data,
                    )
                )
                ingested = cluster_cpu(cluster.data) - job_cpu
                with psycopg.connect(dsn, autocommit=True) as conn:
                    # the current lines' day closes later: its index is built then
                    at = datetime.now(UTC) + (
                        timedelta(days=1) if kind == "current" else timedelta()
                    )
                    settle_indexes(conn, at)
                    conn.execute("checkpoint")
                    sizes = component_bytes(conn)
                done = cluster_cpu(cluster.data)
                per_line[kind].append((done - cpu) / n * 1e6)
                ingest_only[kind].append((ingested - cpu) / n * 1e6)
                index_bytes[kind].append(
                    sum(v for k, v in sizes.items() if k.startswith("index")) / n
                )
                admin.execute(f"drop database {db}")
            ratios.append(per_line["backfill"][-1] / per_line["current"][-1])
            # on a busy machine the inserts alone of a small run can measure as ~0 CPU
            insert_ratios.append(
                ingest_only["backfill"][-1] / ingest_only["current"][-1]
                if ingest_only["current"][-1] > 0
                else float("nan")
            )
            print(
                f"backfill round {r + 1}: PostgreSQL CPU µs/line current "
                f"{per_line['current'][-1]:.1f} (inserts {ingest_only['current'][-1]:.1f}), "
                f"backfill {per_line['backfill'][-1]:.1f} "
                f"(inserts {ingest_only['backfill'][-1]:.1f}); ratio {ratios[-1]:.2f} "
                f"(inserts only {insert_ratios[-1]:.2f})",
                flush=True,
            )
    return {
        "backfill lines": float(n),
        "current: PG CPU µs/line incl. index build (median)": statistics.median(
            per_line["current"]
        ),
        "backfill: PG CPU µs/line incl. index builds (median)": statistics.median(
            per_line["backfill"]
        ),
        "current: PG CPU µs/line ingest only (median)": statistics.median(ingest_only["current"]),
        "backfill: PG CPU µs/line ingest only (median)": statistics.median(ingest_only["backfill"]),
        "current: index bytes/line": statistics.median(index_bytes["current"]),
        "backfill: index bytes/line": statistics.median(index_bytes["backfill"]),
        "backfill / current PG CPU, min": min(ratios),
        "backfill / current PG CPU, median": statistics.median(ratios),
        "backfill / current PG CPU, max": max(ratios),
        "backfill / current PG CPU of the inserts alone, min": min(insert_ratios),
        "backfill / current PG CPU of the inserts alone, median": statistics.median(insert_ratios),
        "backfill / current PG CPU of the inserts alone, max": max(insert_ratios),
    }


def compressed_columns(
    conn: psycopg.Connection[tuple[object, ...]], table: str
) -> dict[str, float]:
    """Bytes of the compressed chunks of `table` by column, largest first: pg_column_size of
    every compressed batch (TOAST included, as stored: compressed), the batch metadata
    (_ts_meta_*: counts, min/max, bloom filters) together, and the rest of the relations
    (page, tuple and TOAST headers, free space, indexes) as "pages, headers and indexes"."""
    sizes: dict[str, float] = {}
    rest = 0.0
    for chunk in compressed_chunks(conn, table):
        for name, size in chunk.columns.items():
            key = "batch metadata (_ts_meta_*)" if name.startswith("_ts_meta_") else name
            sizes[key] = sizes.get(key, 0.0) + size
        rest += chunk.rest + chunk.indexes + chunk.maps
    sizes["pages, headers and indexes"] = rest
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


def timescale_compression(lines: int) -> dict[str, float]:
    """TimescaleDB mode on the PGlite test server (tools/pglite): the same loghub entries
    over 3 days ending 3 days ago, every chunk compressed, and the size before/after (and
    after by column)."""
    from tools.pglite import harness
    from vigil.migrate import upgrade

    work = Path(tempfile.mkdtemp(prefix="vigil-bench-pglite-"))
    port = free_port()
    proc = harness.start_pglite(port, work)
    try:
        upgrade(f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable")
        end = datetime.now(UTC) - timedelta(days=3)
        raw = [ln.encode() for ln in journal_lines(lines, 3, end)]
        with psycopg.connect(harness.dsn(port), autocommit=True) as conn:
            # 1,000 lines per call: with 2,000 the PGlite server stalled mid-load here
            for start in range(0, len(raw), 1000):
                entries = parse_lines(raw[start : start + 1000]).entries
                conn.execute(QUERIES["journal_ingest_arrays"], array_params(entries))
            table = lines_table(conn)
            conn.execute("select compress_chunk(c) from show_chunks(%s::regclass) c", (table,))
            row = one_row(
                conn,
                "select sum(before_compression_total_bytes), sum(after_compression_total_bytes)"
                " from hypertable_compression_stats(%s::regclass)",
                (table,),
            )
            stored = float(str(one_row(conn, count_sql(table))[0]))
            columns = compressed_columns(conn, table)
        before, after = float(row[0]), float(row[1])
        figures = {
            "TimescaleDB (PGlite) lines": stored,
            "TimescaleDB before compression MB": before / 2**20,
            "TimescaleDB after compression MB": after / 2**20,
            "TimescaleDB bytes/line after compression": after / stored,
            "TimescaleDB compression ratio (x)": before / after,
        }
        figures.update(
            (f"TimescaleDB compressed bytes/line: {name}", size / stored)
            for name, size in columns.items()
        )
        return figures
    finally:
        harness.stop(proc)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--batch", type=int, default=1000, help="lines per POST")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--rounds", type=int, default=3, help="ingest rounds (raw COPY and API alternate)"
    )
    parser.add_argument("--runs", type=int, default=50, help="queries per search figure")
    parser.add_argument("--only-compression", action="store_true")
    parser.add_argument("--only-backfill", action="store_true")
    parser.add_argument(
        "--compression-lines",
        type=int,
        default=100_000,
        help="lines for the TimescaleDB compression ratio on PGlite (0: skip)",
    )
    parser.add_argument(
        "--backfill-lines",
        type=int,
        default=200_000,
        help="lines per backfill/current round (0: skip that step)",
    )
    parser.add_argument("--backfill-rounds", type=int, default=3)
    parser.add_argument(
        "--allow-generated",
        action="store_true",
        help="without the Loghub samples, run on generated lines of the same shape",
    )
    args = parser.parse_args()
    global ALLOW_GENERATED
    ALLOW_GENERATED = args.allow_generated
    if args.only_compression:
        for name, value in timescale_compression(args.compression_lines).items():
            print(f"  {name:64s} {value:10,.1f}")
        return
    loghub_lines()  # a clear message before any work when the data is missing
    if args.only_backfill:
        with bench_cluster() as cluster:
            with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
                conn.execute("create database bench_template template vigil")
            found = backfill_rounds(
                cluster, "bench_template", args.backfill_lines, args.backfill_rounds
            )
        for name, value in found.items():
            print(f"  {name:60s} {value:12,.2f}")
        return
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-journal-"))
    # the oldest line is 10 minutes younger than the retention when the run starts
    end = datetime.now(UTC) + timedelta(minutes=10)
    figures: dict[str, float] = {}
    spreads: dict[str, str] = {}
    try:
        t = time.perf_counter()
        bodies = work / "bodies.ndjson"
        write_bodies(bodies, args.lines, args.days, args.batch, end)
        copy_file = work / "rows.copy"
        binary_file = work / "rows.bin"
        write_copy_files(bodies, copy_file, binary_file)
        ndjson = (bodies.stat().st_size - 12 * args.lines / args.batch) / args.lines
        print(
            f"generated {args.lines} lines in {time.perf_counter() - t:.0f} s "
            f"({ndjson:.0f} bytes per JSON line)",
            flush=True,
        )
        with bench_cluster() as cluster:
            dsn = cluster.dsn()
            with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as conn:
                conn.execute("create database bench_template template vigil")
            if args.backfill_lines:
                figures.update(
                    backfill_rounds(
                        cluster, "bench_template", args.backfill_lines, args.backfill_rounds
                    )
                )
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(RAW_TABLE)
                token = tokens.create(conn, "bench")
                # a running installation has the partitions of the retention window
                conn.execute("select vigil.journal_maintenance(now(), '{\"trigram_index\":false}')")
                table = lines_table(conn)
            port = free_port()
            env = {
                **os.environ,
                "DATABASE_URL": dsn,
                "VIGIL_PORT": str(port),
                "VIGIL_MAX_BODY_BYTES": str(64 * 1024 * 1024),
            }
            rates: dict[str, list[float]] = {"text": [], "binary": [], "api": [], "cpu": []}
            ratios: list[float] = []
            with process([VIGIL, "api"], env, work / "api.log") as api:
                wait_http(f"http://127.0.0.1:{port}/health")
                for r in range(1, args.rounds + 1):
                    # alternating steps on a shared machine: each round sees similar noise
                    empty(dsn, "bench_raw")
                    n, seconds = raw_copy(dsn, copy_file)
                    rates["text"].append(n / seconds)
                    empty(dsn, "bench_raw")
                    rates["binary"].append(n / raw_copy_binary(dsn, binary_file))
                    empty(dsn, table)
                    cpu = cpu_seconds(api.pid)
                    seconds, totals = post_all(
                        f"http://127.0.0.1:{port}/journal", token, bodies, args.clients
                    )
                    rates["cpu"].append((cpu_seconds(api.pid) - cpu) / n * 1e6)
                    rates["api"].append(totals["accepted"] / seconds)
                    ratios.append(rates["api"][-1] / max(rates["text"][-1], rates["binary"][-1]))
                    print(
                        f"round {r}: raw COPY text {rates['text'][-1]:,.0f} rows/s, binary "
                        f"{rates['binary'][-1]:,.0f} rows/s; POST /journal {totals} "
                        f"{rates['api'][-1]:,.0f} lines/s, API CPU "
                        f"{rates['cpu'][-1]:.1f} µs/line",
                        flush=True,
                    )
            text, binary, rate = (statistics.median(rates[k]) for k in ("text", "binary", "api"))
            figures["raw COPY text rows/s (median)"] = text
            figures["raw COPY binary rows/s (median)"] = binary
            figures[
                f"ingest lines/s (median; {args.clients} clients, {args.batch} lines/request)"
            ] = rate
            figures["API CPU µs per line (median)"] = statistics.median(rates["cpu"])
            spreads["ingest / best raw COPY, min / median / max"] = spread(ratios)
            with psycopg.connect(dsn, autocommit=True) as conn:
                t = time.perf_counter()
                runs = settle_indexes(conn, datetime.now(UTC))
                figures[f"trigram index build, all closed days ({runs} job runs), s"] = (
                    time.perf_counter() - t
                )
                conn.execute("vacuum analyze")
                conn.execute("checkpoint")
                stored = float(str(one_row(conn, count_sql(table))[0]))
                parts = component_bytes(conn)
                raw_table = float(
                    str(one_row(conn, "select pg_total_relation_size('bench_raw')")[0])
                )
                message = float(
                    str(one_row(conn, count_sql(table, "avg(octet_length(message))"))[0])
                )
            figures["stored lines"] = stored
            figures["NDJSON bytes/line"] = ndjson
            figures["message text bytes/line"] = message
            figures["plain table (bench_raw, 2 btrees) bytes/line"] = raw_table / stored
            for name, size in parts.items():
                figures[f"  {name} bytes/line"] = size / stored
            figures["stored bytes/line, total"] = sum(parts.values()) / stored
            figures.update(searches(dsn, end, args.days, args.runs))
        if args.compression_lines:
            figures.update(timescale_compression(args.compression_lines))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.lines} lines over {args.days} days, loghub lines as journald entries")
    for name, value in figures.items():
        print(f"  {name:60s} {value:12,.2f}")
    for name, figure in spreads.items():
        print(f"  {name:60s} {figure}")


if __name__ == "__main__":
    main()
