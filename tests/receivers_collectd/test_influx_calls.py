"""InfluxDB clients' own calls (ping, version, build, ready) with the real InfluxDB 1.x and 2.x
Python clients, beside the metrics-server replies that win where a path collides (GET /ping's
body, GET /health)."""

from __future__ import annotations

import httpx
import pytest
from influxdb import InfluxDBClient as InfluxV1  # type: ignore[import-untyped]
from influxdb_client.client.influxdb_client import InfluxDBClient as InfluxV2

from api.series.routes import INFLUX_HEADERS
from tests.conftest import ApiServer, free_port, make_settings
from tests.receivers_collectd.conftest import Vigil, points

VERSION = INFLUX_HEADERS["X-Influxdb-Version"]


def test_ping_keeps_metrics_servers_reply_and_answers_influx_clients(vigil: Vigil) -> None:
    assert VERSION.startswith("vigil-")
    for accept in (None, "*/*", "application/json", "text/html,*/*;q=0.8"):
        headers = {"accept": accept} if accept else {}
        r = httpx.get(f"{vigil.url}/ping", headers=headers)
        assert (r.status_code, r.json()) == (200, {"status": "up"}), accept
        assert r.headers["x-influxdb-version"] == VERSION
        assert r.headers["x-influxdb-build"] == "OSS"
    r = httpx.get(f"{vigil.url}/ping", headers={"accept": "application/x-msgpack"})
    assert (r.status_code, r.content) == (204, b"")
    assert r.headers["x-influxdb-version"] == VERSION
    r = httpx.head(f"{vigil.url}/ping")
    assert (r.status_code, r.headers["x-influxdb-version"]) == (204, VERSION)
    health = httpx.get(f"{vigil.url}/health").json()  # Vigil's own shape, not Influx's
    assert health["status"] == "up" and health["resources"][0]["name"] == "database"
    ready = httpx.get(f"{vigil.url}/ready").json()
    assert ready["status"] == "ready" and ready["up"].endswith("s")


def test_influxdb_1x_client(vigil: Vigil) -> None:
    port = int(vigil.url.rsplit(":", 1)[1])
    client = InfluxV1(host="127.0.0.1", port=port, username="telegraf", password=vigil.token)
    try:
        assert client.ping() == VERSION  # GET /ping, expecting 204 and the version header
        client.create_database("metrics")  # POST /query: answered, does nothing
        point = {"measurement": "v1client", "tags": {"host": "v1-host"}, "fields": {"x": 1.5}}
        assert client.write_points([point])
    finally:
        client.close()
    assert [(name, value) for name, _, _, value in points(vigil.conn, "v1-host")] == [
        ("v1client_x", 1.5)
    ]


def test_influxdb_2x_client(vigil: Vigil) -> None:
    with InfluxV2(url=vigil.url, token=vigil.token, org="home") as client:
        assert client.ping() is True
        assert client.version() == VERSION
        assert client.build() == "OSS"
        ready = client.ready()
        assert ready.status == "ready" and ready.up.endswith("s") and ready.started is not None
        with pytest.warns(DeprecationWarning):  # deprecated by the client in favour of ping()
            health = client.health()
        assert health.status == "fail"  # GET /health is Vigil's own (docs/compatibility.md)


def test_ready_is_503_while_the_database_does_not_answer() -> None:
    settings = make_settings(
        f"postgresql://postgres@127.0.0.1:{free_port()}/none?connect_timeout=1",
        VIGIL_PORT=str(free_port()),
    )
    with ApiServer(settings) as server:
        r = httpx.get(f"{server.url}/ready", timeout=15)
        assert r.status_code == 503
        assert r.json()["status"] == "unready"
        assert r.json()["message"] == "database unavailable, retry later"
        assert httpx.head(f"{server.url}/ping").status_code == 204  # liveness needs no database
