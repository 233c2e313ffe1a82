"""Benchmark: journal ingest through POST /journal beside raw COPY, and journal search.

Data: the real log lines of ../shared/data/loghub/*.log (Loghub, https://github.com/logpai/
loghub; cite the paper in loghub/CITATION), wrapped as `journalctl -o json` entries of
8 hosts and 4 units, spread evenly over the last 14 days, plus a few "needle" lines for
the rare-substring search.

Steps, all in one run on one fresh private PostgreSQL cluster (fsync on):
1. --rounds rounds (medians reported), each: raw COPY of the parsed rows, as text and as
   binary COPY, into a plain table with only (at) and (host, at) indexes (the ceiling is
   the faster of the two), then the same lines through a real `vigil api` process
   (uvicorn) into an emptied vigil.journal, several concurrent clients posting
   metrics-sender bodies `{"logs": "..."}` of --batch lines each;
2. the portable maintenance job (builds the pg_trgm index of every closed day);
3. search latencies through vigil.journal_search.

Run: `.venv/bin/python bench/journal.py --lines 200000` (full: `--lines 5000000`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.core.pgcopy import HEADER as COPY_HEADER
from api.core.pgcopy import TRAILER as COPY_TRAILER
from api.journal import QUERIES
from api.journal.formats.journald import parse_lines
from api.journal.store import array_params, copy_rows
from bench.common import VIGIL, bench_cluster, free_port, percentile, process, wait_http
from vigil import tokens
from vigil.db import one_row

LOGHUB = Path(__file__).resolve().parents[2] / "shared" / "data" / "loghub"
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
    if not LOGHUB.is_dir():
        sys.exit(f"{LOGHUB} is missing (see ../shared/data/README.md)")
    out = []
    for path in sorted(LOGHUB.glob("*.log")):
        unit, ident = UNITS.get(path.name.split("_")[0], ("unknown.service", "unknown"))
        out += [(unit, ident, ln) for ln in path.read_text(errors="replace").splitlines() if ln]
    return out


def journal_lines(n: int, days: int, end: datetime) -> Iterator[str]:
    """n journalctl -o json lines, oldest first, evenly over `days` days before end."""
    rng = random.Random(42)
    source = loghub_lines()
    start_us = int((end - timedelta(days=days)).timestamp() * 1_000_000)
    step = days * 86_400_000_000 // n
    needles = {rng.randrange(n) for _ in range(NEEDLES)}
    boot = "8f6a1c0e2b7d4e5f9a3b2c1d0e9f8a7b"
    for i in range(n):
        unit, ident, text = source[rng.randrange(len(source))]
        host = HOSTS[rng.randrange(len(HOSTS))]
        if i in needles:
            text = f"{text} {NEEDLE}"
        ts = start_us + i * step
        pid = 1000 + i % 30000
        priority = "6" if "error" not in text.lower() else "3"
        # what json.dumps would write (only the message needs escaping), 3x faster
        yield (
            f'{{"__CURSOR":"s=3b5a;i={i:x};b={boot};m={i:x};t={ts:x};x={i * 7919:x}",'
            f'"__REALTIME_TIMESTAMP":"{ts}","__MONOTONIC_TIMESTAMP":"{ts - start_us + 1_000_000}",'
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


def write_copy_files(bodies: Path, out_path: Path, binary_path: Path) -> None:
    """The parsed rows of every body as COPY text and as binary COPY rows (not timed). The
    binary file holds, per body, an 8-byte length and the rows without header/trailer."""
    with bodies.open() as src, out_path.open("w") as out, binary_path.open("wb") as binary:
        for body in src:
            batch = parse_lines([s.encode() for s in json.loads(body)["logs"].split("\n")])
            rows = copy_rows(batch.entries)[len(COPY_HEADER) : -len(COPY_TRAILER)]
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


def timescale_compression(lines: int) -> dict[str, float]:
    """TimescaleDB mode on the PGlite test server (tools/pglite): the same loghub entries
    over 3 days ending 3 days ago, every chunk compressed, and the size before/after."""
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
            for start in range(0, len(raw), 2000):
                entries = parse_lines(raw[start : start + 2000]).entries
                conn.execute(QUERIES["journal_ingest_arrays"], array_params(entries))
            conn.execute("select compress_chunk(c) from show_chunks('vigil.journal') c")
            row = one_row(
                conn,
                "select sum(before_compression_total_bytes), sum(after_compression_total_bytes)"
                " from hypertable_compression_stats('vigil.journal')",
            )
        before, after = float(row[0]), float(row[1])
        return {
            "TimescaleDB (PGlite) lines": float(lines),
            "TimescaleDB before compression MB": before / 2**20,
            "TimescaleDB after compression MB": after / 2**20,
            "TimescaleDB compression ratio (x)": before / after,
        }
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
    parser.add_argument(
        "--compression-lines",
        type=int,
        default=100_000,
        help="lines for the TimescaleDB compression ratio on PGlite (0: skip)",
    )
    args = parser.parse_args()
    if args.only_compression:
        for name, value in timescale_compression(args.compression_lines).items():
            print(f"  {name:52s} {value:10,.1f}")
        return
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-journal-"))
    # the oldest line is 10 minutes younger than the retention when the run starts
    end = datetime.now(UTC) + timedelta(minutes=10)
    figures: dict[str, float] = {}
    try:
        t = time.perf_counter()
        bodies = work / "bodies.ndjson"
        write_bodies(bodies, args.lines, args.days, args.batch, end)
        copy_file = work / "rows.copy"
        binary_file = work / "rows.bin"
        write_copy_files(bodies, copy_file, binary_file)
        print(
            f"generated {args.lines} lines in {time.perf_counter() - t:.0f} s "
            f"({bodies.stat().st_size / args.lines:.0f} bytes per JSON line)",
            flush=True,
        )
        with bench_cluster() as cluster:
            dsn = cluster.dsn()
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(RAW_TABLE)
                token = tokens.create(conn, "bench")
                # a running installation has the partitions of the retention window
                conn.execute("select vigil.journal_maintenance(now(), '{\"trigram_index\":false}')")
            port = free_port()
            env = {
                **os.environ,
                "DATABASE_URL": dsn,
                "VIGIL_PORT": str(port),
                "VIGIL_MAX_BODY_BYTES": str(64 * 1024 * 1024),
            }
            rates: dict[str, list[float]] = {"text": [], "binary": [], "api": [], "cpu": []}
            with process([VIGIL, "api"], env, work / "api.log") as api:
                wait_http(f"http://127.0.0.1:{port}/health")
                for r in range(1, args.rounds + 1):
                    # alternating steps on a shared machine: each round sees similar noise
                    empty(dsn, "bench_raw")
                    n, seconds = raw_copy(dsn, copy_file)
                    rates["text"].append(n / seconds)
                    empty(dsn, "bench_raw")
                    rates["binary"].append(n / raw_copy_binary(dsn, binary_file))
                    empty(dsn, "vigil.journal")
                    cpu = cpu_seconds(api.pid)
                    seconds, totals = post_all(
                        f"http://127.0.0.1:{port}/journal", token, bodies, args.clients
                    )
                    rates["cpu"].append((cpu_seconds(api.pid) - cpu) / n * 1e6)
                    rates["api"].append(totals["accepted"] / seconds)
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
            figures["ingest / raw COPY"] = rate / max(text, binary)
            with psycopg.connect(dsn, autocommit=True) as conn:
                t = time.perf_counter()
                conn.execute("select vigil.journal_maintenance(now(), '{}')")
                figures["trigram index build, all closed days, s"] = time.perf_counter() - t
                conn.execute("analyze vigil.journal")
                sizes = one_row(
                    conn,
                    """select sum(pg_table_size(c.oid)) filter (where c.relkind = 'r'),
                              sum(pg_relation_size(c.oid)) filter (where c.relkind = 'i'
                                  and c.relname like '%%trgm'),
                              sum(pg_relation_size(c.oid)) filter (where c.relkind = 'i'
                                  and c.relname not like '%%trgm')
                         from pg_class c join pg_namespace n on n.oid = c.relnamespace
                        where n.nspname = 'vigil' and c.relname like 'journal_p%%'""",
                )
                figures["table MB"] = float(sizes[0] or 0) / 2**20
                figures["trigram indexes MB"] = float(sizes[1] or 0) / 2**20
                figures["btree indexes MB"] = float(sizes[2] or 0) / 2**20
            figures.update(searches(dsn, end, args.days, args.runs))
        if args.compression_lines:
            figures.update(timescale_compression(args.compression_lines))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.lines} lines over {args.days} days, loghub lines as journald entries")
    for name, value in figures.items():
        if "/" in name and "ingest /" in name:
            print(f"  {name:52s} {value:10.0%}  (target >= 70%)")
        else:
            print(f"  {name:52s} {value:10,.1f}")


if __name__ == "__main__":
    main()
