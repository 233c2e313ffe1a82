"""POST /api/v1/write with the real client: Debian's Prometheus (2.42) scrapes a small target
and remote_writes to a test Vigil, with a Bearer token, Basic auth and the /t/TOKEN/ prefix;
the samples Vigil stores equal those Prometheus' own API returns. Bad bodies: a 4xx with a
reason, the valid samples kept; a database that cannot take the write: 503, and the retry
stores the samples once."""

from __future__ import annotations

import itertools
import math
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cramjam
import httpx
import pytest

from api.promwrite import decode
from api.promwrite.proto.remote_pb2 import WriteRequest
from api.promwrite.proto.types_pb2 import MetricMetadata
from tests.conftest import free_port
from tests.receivers.conftest import Conn, Vigil, poll

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
COUNTER_STEP = 1.5
FLAPPING_SCRAPES = 3  # the flapping series is exposed this many times, then goes stale


class Target:
    """A scrape target serving Prometheus' text exposition format: a counter that grows by
    COUNTER_STEP per scrape, two gauges, and a series that vanishes (Prometheus then writes a
    stale marker for it)."""

    def __init__(self) -> None:
        self.scrapes = 0
        self.vanished_at = 0.0  # when the flapping series was first missing from a scrape
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target.scrapes += 1
                if target.scrapes == FLAPPING_SCRAPES + 1:
                    target.vanished_at = time.time()
                body = target.exposition(target.scrapes).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def exposition(n: int) -> str:
        text = (
            "# HELP shop_orders_total Orders placed.\n"
            "# TYPE shop_orders_total counter\n"
            f'shop_orders_total{{code="200"}} {n * COUNTER_STEP}\n'
            "# HELP room_temperature_celsius Temperature.\n"
            "# TYPE room_temperature_celsius gauge\n"
            'room_temperature_celsius{room="lab"} 21.5\n'
            f'room_temperature_celsius{{room="hall"}} {19 + n / 8}\n'
        )
        if n <= FLAPPING_SCRAPES:
            text += "# TYPE shop_flapping gauge\nshop_flapping 1\n"
        return text

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def prometheus_config(target: Target, vigil: Vigil) -> str:
    write = f"{vigil.url}/api/v1/write"
    queue = (
        "    queue_config: {batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 500ms}\n"
        "    metadata_config: {send_interval: 1s}\n"
    )

    def only_temperature(via: str) -> str:
        # A copy of the lab series under its own label: the three writers' series stay apart.
        return (
            "    write_relabel_configs:\n"
            "      - {source_labels: [__name__, room], regex: 'room_temperature_celsius;lab', "
            "action: keep}\n"
            f"      - {{target_label: via, replacement: {via}}}\n"
        )

    return (
        "global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1m}\n"
        "scrape_configs:\n"
        f"  - {{job_name: shop, static_configs: [{{targets: ['{target.address}']}}]}}\n"
        "remote_write:\n"
        f"  - url: {write}\n"
        f"    authorization: {{credentials: {vigil.token}}}\n" + queue + f"  - url: {write}\n"
        f"    basic_auth: {{username: prometheus, password: {vigil.token}}}\n"
        + queue
        + only_temperature("basic")
        + f"  - url: {vigil.url}/t/{vigil.token}/api/v1/write\n"
        + queue
        + only_temperature("prefix")
    )


class Prometheus:
    def __init__(self, target: Target, config: str) -> None:
        self.target = target
        self.dir = Path(tempfile.mkdtemp(prefix="vigil-prometheus-"))
        (self.dir / "prometheus.yml").write_text(config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (self.dir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={self.dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ready(self) -> None:
        def probe() -> bool:
            assert self.proc.poll() is None, self.logs()
            try:
                return httpx.get(self.url + "/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        poll(probe, timeout=30)

    def logs(self) -> str:
        return (self.dir / "prometheus.log").read_text(errors="replace")[-3000:]

    def samples(self, selector: str) -> dict[str, list[tuple[int, float]]]:
        """Every raw sample of the last hour, by series (its labels as `k=v,...`), with ms."""
        r = httpx.get(self.url + "/api/v1/query", params={"query": f"{selector}[1h]"}, timeout=5)
        r.raise_for_status()
        out: dict[str, list[tuple[int, float]]] = {}
        for series in r.json()["data"]["result"]:
            labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
            key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            out[key] = [(round(float(t) * 1000), float(v)) for t, v in series["values"]]
        return out

    def own_metrics(self, name: str) -> list[float]:
        """The values of one of Prometheus' own metrics (its /metrics), one per label set."""
        text = httpx.get(self.url + "/metrics", timeout=5).text
        return [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((name + "{", name + " "))
        ]

    def own_metric(self, name: str) -> float:
        """The sum of one of Prometheus' own metrics over its label sets."""
        return sum(self.own_metrics(name))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=1)  # it flushes its queues: not needed here
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def prometheus(vigil: Vigil) -> Iterator[Prometheus]:
    target = Target()
    prom = Prometheus(target, prometheus_config(target, vigil))
    try:
        prom.ready()
        yield prom
    finally:
        prom.stop()
        target.close()


def stored(conn: Conn, name: str) -> dict[str, list[tuple[int, float]]]:
    """What Vigil holds for a series name, as Prometheus.samples gives it."""
    rows = conn.execute(
        "select s.labels, (extract(epoch from p.at) * 1000)::int8, p.value"
        "  from vigil.points p join vigil.series s on s.id = p.series_id"
        " where s.name = %s order by 1::text, 2",
        (name,),
    ).fetchall()
    out: dict[str, list[tuple[int, float]]] = {}
    for labels, at, value in rows:
        key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        out.setdefault(key, []).append((at, value))
    return out


def test_prometheus_samples_arrive_equal_to_its_own_api(
    prometheus: Prometheus, vigil: Vigil
) -> None:
    instance = prometheus_target_labels(prometheus)
    counter_key = f"code=200,{instance}"

    def enough() -> dict[str, list[tuple[int, float]]] | None:
        got = stored(vigil.conn, "shop_orders_total")
        return got if len(got.get(counter_key, [])) >= 4 else None

    poll(enough, timeout=40)
    for name in ("shop_orders_total", "room_temperature_celsius"):
        ours = stored(vigil.conn, name)
        theirs = prometheus.samples(name)
        assert set(theirs) <= set(ours), (name, sorted(ours), sorted(theirs))
        for key, samples in theirs.items():
            newest = ours[key][-1][0]
            # Every sample Prometheus has up to the newest one written is in Vigil, once,
            # with the same timestamp (ms) and value.
            assert ours[key] == [s for s in samples if s[0] <= newest], (name, key)
    # The counter grew by COUNTER_STEP per scrape (by a multiple if a scrape timed out).
    counter = stored(vigil.conn, "shop_orders_total")[counter_key]
    for (at_a, a), (at_b, b) in itertools.pairwise(counter):
        assert at_b > at_a and (b - a) / COUNTER_STEP in (1, 2, 3), counter


def prometheus_target_labels(prometheus: Prometheus) -> str:
    """`instance=...,job=shop` of the scrape target, as the keys of Prometheus.samples."""
    series = poll(lambda: prometheus.samples("up"), timeout=20)
    return next(iter(series))


def test_basic_auth_and_path_prefix_writers(prometheus: Prometheus, vigil: Vigil) -> None:
    instance = prometheus_target_labels(prometheus)

    def both() -> dict[str, list[tuple[int, float]]] | None:
        got = stored(vigil.conn, "room_temperature_celsius")
        keys = {f"{instance},room=lab,via=basic", f"{instance},room=lab,via=prefix"}
        return got if keys <= set(got) else None

    got = poll(both, timeout=40)
    for via in ("basic", "prefix"):
        assert {v for _, v in got[f"{instance},room=lab,via={via}"]} == {21.5}


def test_stale_markers_and_metadata_are_accepted(prometheus: Prometheus, vigil: Vigil) -> None:
    # The flapping series went stale after a few scrapes: Prometheus wrote a stale marker
    # (NaN), which Vigil skips; it answered 2xx to it and to the metadata-only requests.
    poll(lambda: prometheus.own_metric("prometheus_remote_storage_metadata_total") > 0, 40)
    flapping = poll(lambda: stored(vigil.conn, "shop_flapping"), timeout=20)
    assert all(v == 1.0 for samples in flapping.values() for _, v in samples)

    def stale_marker_sent() -> bool:
        # Prometheus appends the marker at the first scrape without the series; every queue
        # has sent past that scrape when its highest sent timestamp is later.
        vanished = prometheus.target.vanished_at
        sent = prometheus.own_metrics(
            "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"
        )
        return bool(vanished) and len(sent) == 3 and min(sent) > vanished + 1

    poll(stale_marker_sent, timeout=20)
    for failed in (
        "prometheus_remote_storage_samples_failed_total",
        "prometheus_remote_storage_metadata_failed_total",
        "prometheus_remote_storage_samples_retried_total",
    ):
        assert prometheus.own_metric(failed) == 0, (failed, prometheus.logs())
    assert not any(math.isnan(v) for s in flapping.values() for _, v in s)


# --- Hand-built requests: the edges Prometheus does not send on its own ---


def write_request(*series: tuple[dict[str, str], list[tuple[float, int]]]) -> WriteRequest:
    request = WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name, text in labels.items():
            ts.labels.add(name=name, value=text)
        for value, at_ms in samples:
            ts.samples.add(value=value, timestamp=at_ms)
    return request


def post(vigil: Vigil, body: bytes, **headers: str) -> httpx.Response:
    headers = {
        "Authorization": f"Bearer {vigil.token}",
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "snappy",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
        **headers,
    }
    return httpx.post(vigil.url + "/api/v1/write", content=body, headers=headers, timeout=10)


def snappy(request: WriteRequest) -> bytes:
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_bad_bodies_are_400_with_a_reason(vigil: Vigil) -> None:
    r = post(vigil, b"not snappy at all")
    assert r.status_code == 400
    assert r.text.startswith("400 body is not snappy-compressed (block format)")
    r = post(vigil, bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff not protobuf")))
    assert r.status_code == 400
    assert "not a remote_write WriteRequest" in r.text
    r = post(vigil, b"", **{"Content-Encoding": "gzip"})
    assert r.status_code == 415
    v2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
    r = post(vigil, b"", **{"Content-Type": v2})
    assert r.status_code == 415 and "remote_write 2.0" in r.text
    assert post(vigil, b"", Authorization="Bearer wrong").status_code == 401


def test_invalid_series_rejected_valid_kept(vigil: Vigil) -> None:
    at = now_ms()
    request = write_request(
        ({"__name__": "edge_valid", "host": "a", "empty": ""}, [(1.0, at), (2.0, at + 1)]),
        ({"job": "no-name"}, [(3.0, at)]),
        ({"__name__": "edge_long", "path": "x" * 300}, [(4.0, at)]),
        ({"__name__": "edge_future"}, [(5.0, at + 3_600_000), (6.0, at)]),
    )
    r = post(vigil, snappy(request))
    assert r.status_code == 400, r.text
    assert r.text.startswith("400 3 of 6 samples rejected (3 stored): series 1: no __name__")
    assert "series 2 ('edge_long'): label values must be at most 255 characters" in r.text
    assert "more than 10 minutes in the future" in r.text
    # The empty label is absent, as Prometheus means it.
    assert stored(vigil.conn, "edge_valid") == {"host=a": [(at, 1.0), (at + 1, 2.0)]}
    assert stored(vigil.conn, "edge_future") == {"": [(at, 6.0)]}
    assert stored(vigil.conn, "edge_long") == {}


def test_nan_infinity_histograms_and_metadata_are_204(vigil: Vigil) -> None:
    at = now_ms()
    request = write_request(
        ({"__name__": "edge_nan"}, [(STALE_NAN, at), (math.nan, at + 1), (math.inf, at + 2)]),
        ({"__name__": "edge_mixed"}, [(STALE_NAN, at), (7.0, at + 1)]),
        ({"__name__": "edge_histogram"}, []),
    )
    request.timeseries[2].histograms.add(count_int=3, sum=1.5, timestamp=at)
    decoded = decode.decode_write_request(request.SerializeToString())
    assert (decoded.skipped, decoded.histograms, decoded.batch.accepted) == (4, 1, 1)
    r = post(vigil, snappy(request))
    assert r.status_code == 204, r.text
    assert stored(vigil.conn, "edge_histogram") == {}
    assert stored(vigil.conn, "edge_nan") == {}
    assert stored(vigil.conn, "edge_mixed") == {"": [(at + 1, 7.0)]}
    metadata_only = WriteRequest()
    metadata_only.metadata.add(
        type=MetricMetadata.COUNTER, metric_family_name="edge_total", help="Edges."
    )
    assert post(vigil, snappy(metadata_only)).status_code == 204
    assert post(vigil, b"").status_code == 204  # an empty WriteRequest


def test_database_refusing_writes_is_503_and_the_retry_stores_once(vigil: Vigil) -> None:
    at = now_ms()
    body = snappy(write_request(({"__name__": "edge_retry"}, [(1.0, at), (2.0, at + 1)])))
    with psycopg_lock(vigil, "vigil.series"):
        r = post(vigil, body)
    assert r.status_code == 503, r.text  # Prometheus retries a 5xx
    assert stored(vigil.conn, "edge_retry") == {}
    assert post(vigil, body).status_code == 204
    assert stored(vigil.conn, "edge_retry") == {"": [(at, 1.0), (at + 1, 2.0)]}


class psycopg_lock:
    """Holds an exclusive lock on a table from a second connection: writes to it time out
    (the test database's lock_timeout) with SQLSTATE 55P03."""

    def __init__(self, vigil: Vigil, table: str) -> None:
        import psycopg

        self.conn = psycopg.connect(vigil.dsn)
        self.table = table

    def __enter__(self) -> None:
        self.conn.execute(f"lock table {self.table} in access exclusive mode")

    def __exit__(self, *_: object) -> None:
        self.conn.rollback()
        self.conn.close()


def test_decoding_is_the_same_with_the_key_cache_cold_warm_or_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    at = now_ms()
    request = write_request(
        ({"__name__": "a", "x": "1"}, [(1.0, at)]),
        ({"x": "no name"}, [(2.0, at)]),
        ({"__name__": "a", "x": "1"}, [(3.0, at + 1)]),  # the same series again
    )
    data = request.SerializeToString()
    decode._keys.clear()
    cold = decode.decode_write_request(data).batch
    warm = decode.decode_write_request(data).batch
    monkeypatch.setattr(decode, "KEY_CACHE_SIZE", 0)  # cleared on every request
    full = decode.decode_write_request(data).batch
    for batch in (cold, warm, full):
        assert batch.keys == {("a", '{"x":"1"}'): 0}
        assert batch.series == [0, 0] and batch.values == [1.0, 3.0]
        assert batch.at_us == [at * 1000, (at + 1) * 1000]
        assert batch.errors == [(1, "series 1: no __name__ label")]


def test_a_body_that_decompresses_too_far_is_refused_before_decompressing() -> None:
    body = bytes(cramjam.snappy.compress_raw(b"\0" * 10_000))
    with pytest.raises(decode.BodyError, match="decompresses to 10000 bytes, more than 1000"):
        decode.unsnappy(body, 1000)
    assert decode.unsnappy(body, 10_000) == b"\0" * 10_000
