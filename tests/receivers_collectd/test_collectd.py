"""POST /collectd over real HTTP, and the real collectd 5.12 (Debian collectd-core + libyajl2,
installed by make test) with write_http in both formats, authenticating with User/Password
after Vigil's Basic challenge. Its csv plugin writes the same values to files: the reference
the stored points are compared with."""

from __future__ import annotations

import base64
import csv
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.receivers_collectd.conftest import Vigil, points, poll

COLLECTD = "/usr/sbin/collectd"
FORMATS = {"json-host": "JSON", "cmd-host": "Command"}
CHALLENGE = 'Basic realm="vigil"'


def basic(password: str, user: str = "collectd") -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def post(vigil: Vigil, body: bytes, content_type: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{vigil.url}/collectd",
        content=body,
        headers={"content-type": content_type, **basic(vigil.token), **headers},
        timeout=10,
    )


def value_list(host: str, type_instance: str, value: Any, at: float) -> dict[str, Any]:
    return {
        "values": [value],
        "dstypes": ["gauge"],
        "dsnames": ["value"],
        "time": at,
        "interval": 10.0,
        "host": host,
        "plugin": "memory",
        "plugin_instance": "",
        "type": "memory",
        "type_instance": type_instance,
    }


# --- the route ------------------------------------------------------------------------------


def test_every_sender_401_carries_the_basic_challenge(vigil: Vigil) -> None:
    for path in ("/collectd", "/journal", "/v1/metrics/batch", "/write"):
        for headers in ({}, basic("wrong-token"), {"authorization": "Bearer wrong"}):
            r = httpx.post(f"{vigil.url}{path}", content=b"[]", headers=headers, timeout=10)
            assert r.status_code == 401, (path, headers)
            assert r.headers["www-authenticate"] == CHALLENGE, (path, headers)
            assert r.headers["content-type"].startswith("text/plain")
            assert r.text.startswith("401 "), r.text  # the one line of text, as before
    assert "www-authenticate" not in httpx.get(f"{vigil.url}/ping").headers


def test_basic_password_is_the_token_on_every_sender_route(vigil: Vigil) -> None:
    now = time.time()
    h = basic(vigil.token, user="anyone")
    r = httpx.post(f"{vigil.url}/v1/metrics", json={"name": "b", "value": 1}, headers=h)
    assert r.status_code == 201
    line = json.dumps({"__REALTIME_TIMESTAMP": str(int(now * 1e6)), "MESSAGE": "basic"})
    r = httpx.post(f"{vigil.url}/journal", content=line.encode(), headers=h)
    assert r.json()["accepted"] == 1
    assert httpx.post(f"{vigil.url}/write", content=b"m v=1", headers=h).status_code == 204
    # a token without a user name, and a header that is not base64 (then no token: 401)
    token_only = {"authorization": "Basic " + base64.b64encode(f":{vigil.token}".encode()).decode()}
    assert httpx.get(f"{vigil.url}/v1/metrics", headers=token_only).status_code == 200
    bad = {"authorization": "Basic %%%"}
    assert httpx.get(f"{vigil.url}/v1/metrics", headers=bad).status_code == 401
    # Influx v1 clients: a header that is not base64 still falls back to ?p=
    r = httpx.post(f"{vigil.url}/write?p={vigil.token}", content=b"m v=2", headers=bad)
    assert r.status_code == 204


def test_json_and_putval_bodies_are_stored(vigil: Vigil) -> None:
    at = round(time.time() - 60, 3)
    body = json.dumps(
        [value_list("api-host", "used", 1024, at), value_list("api-host", "free", 2048.5, at)]
    )
    r = post(vigil, body.encode(), "application/json")
    assert (r.status_code, r.json()) == (200, {"accepted": 2, "rejected": 0, "errors": []})
    putval = f"PUTVAL api-host/load/load interval=10.000 {at}:0.5:0.25:U\r\n".encode()
    r = post(vigil, putval, "text/plain; charset=utf-8")
    assert (r.status_code, r.json()["accepted"]) == (200, 2)
    stored = {(name, value) for name, _, _, value in points(vigil.conn, "api-host")}
    assert stored == {
        ("memory_memory_used", 1024.0),
        ("memory_memory_free", 2048.5),
        ("load_load_shortterm", 0.5),
        ("load_load_midterm", 0.25),
    }
    ats = {stamp for _, _, stamp, _ in points(vigil.conn, "api-host")}
    assert ats == {datetime.fromtimestamp(at, UTC)}
    # the token as a path prefix, for a URL-only configuration
    r = httpx.post(
        f"{vigil.url}/t/{vigil.token}/collectd",
        content=b"PUTVAL api-host/memory/memory-cached N:1\n",
        headers={"content-type": "text/plain"},
    )
    assert (r.status_code, r.json()["accepted"]) == (200, 1)


def test_bad_input_is_a_clear_4xx_and_valid_value_lists_are_kept(vigil: Vigil) -> None:
    at = time.time()
    good = value_list("bad-host", "used", 1, at)
    body = json.dumps([good, {**good, "values": ["x"]}, {**good, "type": ""}]).encode()
    r = post(vigil, body, "application/json")
    assert r.status_code == 200
    assert r.json() == {
        "accepted": 1,
        "rejected": 2,
        "errors": [
            {"index": 1, "message": "Expected `float | null`, got `str` - at `$.values[0]`"},
            {"index": 2, "message": "type must not be empty"},
        ],
    }
    assert [name for name, *_ in points(vigil.conn, "bad-host")] == ["memory_memory_used"]

    r = post(vigil, json.dumps([{**good, "time": "x"}]).encode(), "application/json")
    assert (r.status_code, r.json()["accepted"], r.json()["rejected"]) == (400, 0, 1)
    r = post(vigil, b'[{"values": [1]', "application/json")
    assert r.status_code == 400
    assert r.json()["message"].startswith("not a JSON array of collectd value lists")
    r = post(vigil, b"PUTVAL bad-host/cpu/cpu N:1\nFLUSH\n", "text/plain")
    assert r.status_code == 200
    assert r.json()["errors"] == [
        {"index": 1, "message": "line 2: unknown command 'FLUSH': only PUTVAL is accepted"}
    ]
    r = post(vigil, b"PUTVAL x/cpu/cpu N:\xff\n", "text/plain")
    assert (r.status_code, r.json()) == (400, {"message": "the body is not UTF-8 text"})
    for content_type in ("application/x-www-form-urlencoded", ""):
        r = post(vigil, b"[]", content_type)
        assert r.status_code == 415
        assert r.json()["message"].startswith("Content-Type must be application/json")
    r = post(vigil, b"", "application/json")
    assert (r.status_code, r.json()["accepted"]) == (200, 0)
    r = post(vigil, b"[" + b" " * (4 * 1024 * 1024) + b"]", "application/json")
    assert r.status_code == 413


# --- the real collectd ----------------------------------------------------------------------

CONFIG = """\
Hostname "{host}"
FQDNLookup false
Interval 1
BaseDir "{base}"
PIDFile "{base}/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "{base}/collectd.log"
</Plugin>
LoadPlugin cpu
LoadPlugin load
LoadPlugin memory
LoadPlugin csv
<Plugin csv>
  DataDir "{base}/csv"
</Plugin>
LoadPlugin write_http
<Plugin write_http>
  <Node "vigil">
    URL "{url}/collectd"
    Format "{format}"
    User "collectd"
    Password "{token}"
  </Node>
</Plugin>
"""


@pytest.fixture(scope="module")
def collectd(vigil: Vigil, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Two collectd daemons, one per write_http format, run until both stored load, memory
    and two rounds of cpu values, then stopped (which flushes write_http's buffer): the
    directory of each one's csv files by host."""
    assert shutil.which(COLLECTD) or Path(COLLECTD).exists(), (
        "install collectd-core and libyajl2: scripts/ensure-system-deps test (make test does)"
    )
    bases: dict[str, Path] = {}
    daemons: list[subprocess.Popen[bytes]] = []
    try:
        for host, form in FORMATS.items():
            base = tmp_path_factory.mktemp(host)
            conf = base / "collectd.conf"
            conf.write_text(
                CONFIG.format(host=host, base=base, url=vigil.url, format=form, token=vigil.token)
            )
            with (base / "stdout").open("wb") as out:
                daemons.append(subprocess.Popen([COLLECTD, "-f", "-C", str(conf)], stdout=out,
                                                stderr=subprocess.STDOUT))  # fmt: skip
            bases[host] = base / "csv" / host

        def enough(host: str) -> bool:
            names = [name for name, *_ in points(vigil.conn, host)]
            return names.count("cpu_0_cpu_idle") >= 2 and "load_load_shortterm" in names

        for host in FORMATS:
            poll(lambda host=host: enough(host), timeout=30)  # type: ignore[misc]
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
    yield bases


def reference(directory: Path) -> dict[tuple[str, str], list[list[str]]]:
    """What the csv plugin wrote: (plugin directory, type file without its date) -> rows."""
    files: dict[tuple[str, str], list[list[str]]] = {}
    for path in sorted(directory.glob("*/*")):
        key = (path.parent.name, path.name.rsplit("-", 3)[0])
        with path.open() as f:
            files.setdefault(key, []).extend(list(csv.reader(f)))
    return files


def series(stored: list[tuple[Any, ...]], name: str) -> list[tuple[float, float]]:
    return [(round(at.timestamp(), 3), value) for n, _, at, value in stored if n == name]


@pytest.mark.parametrize("host", list(FORMATS))
def test_real_collectd_values_arrive_with_the_documented_names(
    vigil: Vigil, collectd: dict[str, Path], host: str
) -> None:
    """Every value collectd wrote to its csv files is stored, once, under the documented
    name with the label host, at the same time (ms) and with the same value (the csv plugin
    prints gauges with 6 decimals); counters and derives (cpu) as sent."""
    stored = points(vigil.conn, host)
    assert {str(labels["host"]) for _, labels, _, _ in stored} == {host}
    files = reference(collectd[host])
    expected: dict[str, list[tuple[float, float]]] = {
        "cpu_0_cpu_idle": [],
        "memory_memory_used": [],
        "load_load_shortterm": [],
        "load_load_midterm": [],
        "load_load_longterm": [],
    }
    total = 0
    for (directory, type_file), rows in files.items():
        header = rows[0]
        assert header[0] == "epoch", header
        for row in rows[1:]:
            total += sum(1 for cell in row[1:] if cell not in ("", "nan"))
            at = float(row[0])
            if (directory, type_file) == ("cpu-0", "cpu-idle"):
                expected["cpu_0_cpu_idle"].append((at, float(row[1])))
            if (directory, type_file) == ("memory", "memory-used"):
                expected["memory_memory_used"].append((at, float(row[1])))
            if (directory, type_file) == ("load", "load"):
                for column, name in enumerate(("shortterm", "midterm", "longterm"), start=1):
                    expected[f"load_load_{name}"].append((at, float(row[column])))
    assert len(stored) == total  # every value, once
    for name, values in expected.items():
        assert len(values) >= 2 if name == "cpu_0_cpu_idle" else values, name
        got = series(stored, name)
        assert [at for at, _ in got] == [at for at, _ in values], name
        assert [v for _, v in got] == pytest.approx([v for _, v in values], abs=1e-6), name
    cpu = series(stored, "cpu_0_cpu_idle")
    assert cpu[-1][1] >= cpu[0][1] > 1000  # a derive: the jiffies counter, not a rate
