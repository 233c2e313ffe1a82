"""Prometheus remote_write benchmark: samples/s through POST /api/v1/write end to end, beside
the InfluxDB line protocol batch path (POST /write) with the same points, in the same run.

The load is a replay at full speed of WriteRequests built as Prometheus builds them from
node_exporter hosts: --hosts hosts of ~1,000 series each (node_exporter's usual names and
labels), one sample per series per 15-second scrape, cut into requests of at most 500 samples
(Prometheus' max_samples_per_send), snappy-compressed, encoded before timing. The Influx
bodies hold the same points (measurement `name` minus its last `_part`, field that part: the
same series name in Vigil) in the same chunks, with millisecond timestamps. A real `vigil api`
process (one worker) on a fresh cluster with production durability; --clients keep-alive
connections (Prometheus' shards). Rounds alternate which path goes first; the series exist
before the first round (a warm-up writes them), the points are emptied before each run.
Printed: each run's samples/s and API CPU per sample, and the ratio remote_write / Influx per
round with its min / median / max.

    .venv/bin/python bench/remote_write.py                 # ~2-3 minutes on 2 cores
    .venv/bin/python bench/remote_write.py --scrapes 10    # quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cramjam
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.promwrite.proto.remote_pb2 import WriteRequest
from bench.common import (
    VIGIL,
    bench_cluster,
    cpu_seconds,
    free_port,
    post_requests,
    process,
    wait_http,
)
from bench.series import run_api
from vigil import tokens

Series = tuple[str, dict[str, str]]
Point = tuple[int, str, dict[str, str], float]  # series index, name, labels, value

SCRAPE_MS = 15_000
MAX_SAMPLES_PER_SEND = 500


def node_exporter_series(host: int) -> list[Series]:
    """~1,000 series named and labelled as node_exporter's on a 16-CPU host."""
    base = {"instance": f"node-{host:02d}:9100", "job": "node"}
    out: list[Series] = []
    modes = ("idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user")
    for cpu in range(16):
        for mode in modes:
            out.append(("node_cpu_seconds_total", {**base, "cpu": str(cpu), "mode": mode}))
        out.append(("node_cpu_scaling_frequency_hertz", {**base, "cpu": str(cpu)}))
    for dev in ("nvme0n1", "nvme1n1", "sda", "sdb", "dm-0", "dm-1"):
        for name in (
            "node_disk_read_bytes_total", "node_disk_written_bytes_total",
            "node_disk_reads_completed_total", "node_disk_writes_completed_total",
            "node_disk_io_time_seconds_total", "node_disk_io_now",
            "node_disk_read_time_seconds_total", "node_disk_write_time_seconds_total",
        ):  # fmt: skip
            out.append((name, {**base, "device": dev}))
    for dev in ("eth0", "eth1", "lo", "docker0", *(f"veth{i:04x}" for i in range(12))):
        for name in (
            "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
            "node_network_receive_packets_total", "node_network_transmit_packets_total",
            "node_network_receive_errs_total", "node_network_transmit_errs_total",
            "node_network_receive_drop_total", "node_network_transmit_drop_total",
            "node_network_up", "node_network_mtu_bytes",
        ):  # fmt: skip
            out.append((name, {**base, "device": dev}))
    mounts = [("/", "ext4", "/dev/nvme0n1p2"), ("/boot", "vfat", "/dev/nvme0n1p1")]
    mounts += [(f"/srv/vol{i}", "xfs", f"/dev/mapper/vol{i}") for i in range(6)]
    for mountpoint, fstype, device in mounts:
        labels = {**base, "device": device, "fstype": fstype, "mountpoint": mountpoint}
        for name in (
            "node_filesystem_size_bytes", "node_filesystem_free_bytes",
            "node_filesystem_avail_bytes", "node_filesystem_files",
            "node_filesystem_files_free", "node_filesystem_readonly",
        ):  # fmt: skip
            out.append((name, labels))
    for i in range(1000 - len(out)):  # the long tail: memory, vmstat, netstat, ...
        kind = ("node_memory", "node_vmstat", "node_netstat", "node_sockstat")[i % 4]
        out.append((f"{kind}_metric_{i // 4}_total", base))
    return out


def scrapes(hosts: int, count: int, start_ms: int) -> list[list[tuple[Series, int, float]]]:
    """Per scrape, every host's samples (series, ms, value), in scrape order."""
    series = [s for host in range(hosts) for s in node_exporter_series(host)]
    rounds = []
    for n in range(count):
        at = start_ms + n * SCRAPE_MS
        rounds.append(
            [(s, at, float((i * 7919 + n * 104729) % 100_000) / 8) for i, s in enumerate(series)]
        )
    return rounds


def chunks(samples: list[tuple[Series, int, float]]) -> list[list[tuple[Series, int, float]]]:
    return [
        samples[i : i + MAX_SAMPLES_PER_SEND] for i in range(0, len(samples), MAX_SAMPLES_PER_SEND)
    ]


def remote_write_body(chunk: list[tuple[Series, int, float]]) -> bytes:
    request = WriteRequest()
    for (name, labels), at, value in chunk:
        ts = request.timeseries.add()
        ts.labels.add(name="__name__", value=name)
        for key in sorted(labels):
            ts.labels.add(name=key, value=labels[key])
        ts.samples.add(value=value, timestamp=at)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def _tag(value: str) -> str:
    return value.replace(" ", "\\ ").replace(",", "\\,").replace("=", "\\=")


def influx_body(chunk: list[tuple[Series, int, float]]) -> bytes:
    lines = []
    for (name, labels), at, value in chunk:
        measurement, field = name.rsplit("_", 1)
        tags = "".join(f",{k}={_tag(v)}" for k, v in sorted(labels.items()))
        lines.append(f"{measurement}{tags} {field}={value!r} {at}")
    return "\n".join(lines).encode()


def empty_points(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [
            t
            for t in ("vigil.points", "vigil.points_invalidations")
            if conn.execute("select to_regclass(%s)", (t,)).fetchone() != (None,)
        ]
        conn.execute(f"truncate {', '.join(tables)}")
        conn.execute("checkpoint")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--scrapes", type=int, default=20, help="scrapes replayed per run")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    start_ms = (time.time_ns() // 1_000_000) - (args.scrapes + 2) * SCRAPE_MS
    samples = [s for scrape in scrapes(args.hosts, args.scrapes, start_ms) for s in scrape]
    parts = [c for scrape in scrapes(args.hosts, args.scrapes, start_ms) for c in chunks(scrape)]
    total = len(samples)
    per_host = len(node_exporter_series(0))
    print(f"bench/remote_write.py on {os.cpu_count()} CPUs: {args.hosts} hosts x {per_host} "
          f"series x {args.scrapes} scrapes = {total:,} samples in {len(parts)} requests of "
          f"<= {MAX_SAMPLES_PER_SEND}, {args.clients} clients")  # fmt: skip
    t0 = time.perf_counter()
    bodies = {"remote_write": [remote_write_body(c) for c in parts]}
    bodies["influx"] = [influx_body(c) for c in parts]
    print(f"  encoded in {time.perf_counter() - t0:.1f} s; bytes per sample: remote_write "
          f"{sum(map(len, bodies['remote_write'])) / total:.1f} (snappy), influx "
          f"{sum(map(len, bodies['influx'])) / total:.1f}")  # fmt: skip
    log = Path(tempfile.mkdtemp(prefix="vigil-bench-rw-log-")) / "api.log"
    with bench_cluster() as cluster, contextlib.ExitStack() as stack:
        dsn = cluster.dsn()
        with psycopg.connect(dsn, autocommit=True) as conn:
            token = tokens.create(conn, "bench")
        port = free_port()
        env = {**os.environ, "DATABASE_URL": dsn, "VIGIL_PORT": str(port)}
        env["VIGIL_DATA_DIR"] = tempfile.mkdtemp(prefix="vigil-bench-rw-")
        url = f"http://127.0.0.1:{port}"
        proc = stack.enter_context(process([VIGIL, "api"], env, log))
        wait_http(f"{url}/ping")
        auth = {"authorization": f"Bearer {token}"}
        remote_write_headers = {
            **auth,
            "content-type": "application/x-protobuf",
            "content-encoding": "snappy",
            "x-prometheus-remote-write-version": "0.1.0",
        }
        requests = {
            "remote_write": post_requests(
                url, "/api/v1/write", remote_write_headers, bodies["remote_write"]
            ),
            "influx": post_requests(
                url,
                "/write?db=bench&precision=ms",
                {**auth, "content-type": "text/plain"},
                bodies["influx"],
            ),
        }
        # Warm-up: the series exist before the timed runs (both paths write the same ones).
        per_scrape = len(parts) // args.scrapes
        asyncio.run(run_api(url, requests["remote_write"][:per_scrape], 1, args.clients))
        rates: dict[str, list[float]] = {"remote_write": [], "influx": []}
        ratios: list[float] = []
        for rnd in range(args.rounds):
            order = ["remote_write", "influx"] if rnd % 2 == 0 else ["influx", "remote_write"]
            for what in order:
                empty_points(dsn)
                cpu0 = cpu_seconds(proc.pid)
                rate = asyncio.run(run_api(url, requests[what], total, args.clients))
                api_us = (cpu_seconds(proc.pid) - cpu0) / total * 1e6
                rates[what].append(rate)
                print(f"  round {rnd + 1} {what:>12}: {rate:>9,.0f} samples/s; API CPU "
                      f"{api_us:.2f} us per sample")  # fmt: skip
            ratios.append(rates["remote_write"][-1] / rates["influx"][-1])
            with psycopg.connect(dsn, autocommit=True) as conn:
                stored = conn.execute("select count(*) from vigil.points").fetchone()
            assert stored == (total,), (stored, total)
    for what, values in rates.items():
        print(f"{what:>12}: median {statistics.median(values):,.0f} samples/s "
              f"(min {min(values):,.0f}, max {max(values):,.0f})")  # fmt: skip
    print(f"remote_write / influx per round: min {min(ratios):.2f}, median "
          f"{statistics.median(ratios):.2f}, max {max(ratios):.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
