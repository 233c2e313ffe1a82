"""The series API over real HTTP: metrics-server bodies, batches, Influx line protocol."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import ApiServer
from tests.series import cases

Conn = psycopg.Connection[Any]
INVALID = {"message": "Invalid Payload. Please verify the request payload and try again."}


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_upstream_post_list_and_averages(api: ApiServer, token: str, conn: Conn) -> None:
    h = auth(token)
    body = {"timestamp": "2024-02-02T11:43:02.099Z", "name": "temperature", "value": 30}
    r = httpx.post(f"{api.url}/v1/metrics", json=body, headers=h)
    assert (r.status_code, r.json()) == (201, {"status": "success"})
    for ts, value in (("2024-02-02T11:50:00Z", 20), ("2024-02-02T12:10:00+01:00", 40.5)):
        body = {"timestamp": ts, "name": "temperature", "value": value}
        assert httpx.post(f"{api.url}/v1/metrics", json=body, headers=h).status_code == 201
    httpx.post(f"{api.url}/v1/metrics", json={"name": "humidity", "value": 1}, headers=h)
    assert httpx.get(f"{api.url}/v1/metrics/", headers=h).json() == ["humidity", "temperature"]
    r = httpx.get(f"{api.url}/v1/metrics/temperature/hour/2024-02-01/2024-02-02", headers=h)
    assert r.status_code == 200
    assert r.json() == {
        "metricName": "temperature",
        "granularity": "hour",
        "startTime": "2024-02-01T00:00:00Z",
        "endTime": "2024-02-02T00:00:00Z",
        "data": [],  # inclusive range of bucket starts: 2024-02-02T00:00Z is the last
    }
    r = httpx.get(f"{api.url}/v1/metrics/temperature/hour/2024-02-01/2024-02-03", headers=h)
    assert r.json()["data"] == [
        {"timeFrame": "2024-02-02T11:00:00Z", "avg": 30.166666666666668},
    ]
    r = httpx.get(f"{api.url}/v1/metrics/temperature/minute/2024-02-02/2024-02-03", headers=h)
    assert [d["timeFrame"] for d in r.json()["data"]] == [
        "2024-02-02T11:50:00Z",
        "2024-02-02T11:43:00Z",
        "2024-02-02T11:10:00Z",
    ]  # newest first
    r = httpx.get(f"{api.url}/v1/metrics/temperature/day/2024-02-02/2024-02-02", headers=h)
    assert r.json()["data"] == [{"timeFrame": "2024-02-02T00:00:00Z", "avg": 30.166666666666668}]


def test_backfilled_point_is_in_the_averages_at_once(
    api: ApiServer, token: str, conn: Conn
) -> None:
    """Read your writes through the metrics-server route: a point sent late for an hour the
    rollups already hold counts in the next read, before the next rollup run."""
    h = auth(token)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)

    def point(at: datetime, value: float) -> dict[str, Any]:
        return {"name": "temp", "value": value, "timestamp": at.isoformat()}

    points = [point(day + timedelta(minutes=m), float(m % 7)) for m in range(0, 6 * 60, 5)]
    assert httpx.post(f"{api.url}/v1/metrics/batch", json=points, headers=h).status_code == 200
    conn.execute("select vigil.refresh_series_rollups(now(), '{}')")
    url = f"{api.url}/v1/metrics/temp/hour/{day.date()}/{day.date() + timedelta(days=1)}"
    before = httpx.get(url, headers=h).json()["data"]
    late = point(day + timedelta(hours=2, seconds=1), 100.0)
    assert httpx.post(f"{api.url}/v1/metrics", json=late, headers=h).status_code == 201
    after = httpx.get(url, headers=h).json()["data"]
    want = cases.reference(conn, "temp", None, "hour", day, day + timedelta(days=2))
    assert [d["timeFrame"] for d in after] == [f"{day:%Y-%m-%d}T0{5 - i}:00:00Z" for i in range(6)]
    assert [d["avg"] for d in after] == pytest.approx([w[1] for w in want], rel=1e-12)
    changed = [a["timeFrame"] for a, b in zip(after, before, strict=True) if a != b]
    assert changed == [f"{day:%Y-%m-%d}T02:00:00Z"]


def test_upstream_errors(api: ApiServer, token: str) -> None:
    h = auth(token)
    for bad in (b"{", b'{"name":"x"}', b'{"name":"x","value":"30"}', b'{"name":"","value":1}',
                b'{"name":"x","value":1,"timestamp":"yesterday"}'):  # fmt: skip
        r = httpx.post(f"{api.url}/v1/metrics", content=bad, headers=h)
        assert (r.status_code, r.json()) == (400, INVALID), bad
    base = f"{api.url}/v1/metrics/t/hour"
    r = httpx.get(f"{base}/2024-13-01/2024-02-02", headers=h)
    assert (r.status_code, r.json()) == (400, {"message": "Invalid startDate format"})
    r = httpx.get(f"{base}/2024-02-01/02-02-2024", headers=h)
    assert (r.status_code, r.json()) == (400, {"message": "Invalid endDate format"})
    r = httpx.get(f"{api.url}/v1/metrics/t/week/2024-02-01/2024-02-02", headers=h)
    assert r.status_code == 400
    assert httpx.post(f"{api.url}/v1/metrics", json={"name": "x", "value": 1}).status_code == 401
    assert httpx.get(f"{api.url}/v1/metrics/").status_code == 401
    assert httpx.get(f"{api.url}/ping").json() == {"status": "up"}


def test_batch_json_and_ndjson_store_valid_points(api: ApiServer, token: str, conn: Conn) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    taxi = cases.shifted(cases.nab_series("nyc_taxi.csv"), now - timedelta(minutes=1))
    points: list[Any] = [
        {"name": "taxi", "value": v, "timestamp": at.isoformat(), "labels": {"city": "nyc"}}
        for at, v in taxi
    ]
    points[5] = {"name": "taxi", "value": "many"}
    points[9] = {"name": "taxi", "value": 1, "timestamp": "2999-01-01T00:00:00Z"}
    r = httpx.post(f"{api.url}/v1/metrics/batch", json=points, headers=auth(token))
    assert r.status_code == 200
    summary = r.json()
    assert (summary["accepted"], summary["rejected"]) == (len(taxi) - 2, 2)
    assert [e["index"] for e in summary["errors"]] == [5, 9]
    assert "future" in summary["errors"][1]["message"]
    ndjson = "\n".join(
        json.dumps({"name": "load", "value": i / 3, "timestamp": now.timestamp() - i})
        for i in range(100)
    )
    r = httpx.post(
        f"{api.url}/v1/metrics/batch",
        content=ndjson + "\nnot json\n",
        headers={**auth(token), "content-type": "application/x-ndjson"},
    )
    assert (r.json()["accepted"], r.json()["rejected"]) == (100, 1)
    rows = dict(
        conn.execute(
            "select s.name || s.labels::text, count(*) from vigil.points p"
            " join vigil.series s on s.id = p.series_id group by 1"
        ).fetchall()
    )
    assert rows == {'taxi{"city": "nyc"}': len(taxi) - 2, "load{}": 100}
    stored = conn.execute(
        "select sum(value) from vigil.points p join vigil.series s on s.id = p.series_id"
        " where s.name = 'taxi'"
    ).fetchone()
    assert stored == (sum(v for i, (_, v) in enumerate(taxi) if i not in (5, 9)),)
    r = httpx.post(f"{api.url}/v1/metrics/batch", content=b"[1, 2", headers=auth(token))
    assert r.status_code == 400
    # A string that is not UTF-8 spoils only its own point, in an array and in NDJSON.
    good, bad = b'{"name":"utf8","value":1}', b'{"name":"x\xff","value":2}'
    for body, reason in ((b"[" + good + b"," + bad + b"]", ""), (good + b"\n" + bad, "line 2: ")):
        r = httpx.post(f"{api.url}/v1/metrics/batch", content=body, headers=auth(token))
        assert (r.status_code, r.json()["accepted"]) == (200, 1)
        assert r.json()["errors"][0]["message"].startswith(reason + "'utf-8' codec can't decode")
    assert httpx.post(f"{api.url}/v1/metrics", content=bad, headers=auth(token)).status_code == 400
    r = httpx.post(f"{api.url}/v1/metrics/batch", content=b'[{"name": 1}]', headers=auth(token))
    assert (r.status_code, r.json()["rejected"]) == (400, 1)


LINES = """\
# telegraf
cpu,host=web-1,cpu=cpu-total usage_idle=99.5,usage_user=0.25 1700000000000000000
mem,host=web-1 used=123i,available_percent=40.5,ok=true,note="a \\"b\\" c" 1700000000000000000
disk,host=web-1,path=/var\\ lib used_percent=91 1700000000000000000
broken line without fields
cpu,host=web-1 usage_idle=abc 1700000000000000000
"""


def test_influx_v1_and_v2(api: ApiServer, token: str, conn: Conn) -> None:
    good = "\n".join(LINES.splitlines()[:4])
    r = httpx.post(
        f"{api.url}/write?db=telegraf", content=good, headers={"authorization": f"Token {token}"}
    )
    assert r.status_code == 204, r.text
    series = dict(
        conn.execute("select s.name, s.labels from vigil.series s order by name").fetchall()
    )
    assert series == {
        "cpu_usage_idle": {"host": "web-1", "cpu": "cpu-total"},
        "cpu_usage_user": {"host": "web-1", "cpu": "cpu-total"},
        "mem_used": {"host": "web-1"},
        "mem_available_percent": {"host": "web-1"},
        "mem_ok": {"host": "web-1"},
        "disk_used_percent": {"host": "web-1", "path": "/var lib"},
    }
    at = conn.execute("select distinct at from vigil.points").fetchall()
    assert at == [(datetime.fromtimestamp(1_700_000_000, UTC),)]
    # v1 password forms and a partial write: valid lines stored, 400 with Influx's body.
    basic = base64.b64encode(f"telegraf:{token}".encode()).decode()
    r = httpx.post(
        f"{api.url}/write?db=x&precision=s",
        content="up,host=a value=1 1700000060\n" + LINES.splitlines()[4],
        headers={"authorization": f"Basic {basic}"},
    )
    assert r.status_code == 400
    assert r.json()["error"].startswith("partial write: line 2:")
    assert r.json()["error"].endswith("dropped=1")
    r = httpx.post(f"{api.url}/write?u=telegraf&p={token}&precision=ms", content="up value=2")
    assert r.status_code == 204
    # v2 (Telegraf's influxdb_v2 output gzips by default).
    r = httpx.post(
        f"{api.url}/api/v2/write?org=o&bucket=b&precision=s",
        content=gzip.compress(b"up,host=a value=3 1700000120\nup,host=a value=x 1\n"),
        headers={"authorization": f"Token {token}", "content-encoding": "gzip"},
    )
    assert (r.status_code, r.json()["code"]) == (400, "invalid")
    assert "dropped=1" in r.json()["message"]
    values = conn.execute(
        "select p.value from vigil.points p join vigil.series s on s.id = p.series_id"
        " where s.name = 'up_value' order by p.value"
    ).fetchall()
    assert values == [(1.0,), (2.0,), (3.0,)]
    assert httpx.post(f"{api.url}/write", content="up value=1").status_code == 401
    assert httpx.post(f"{api.url}/write?p=wrong", content="up value=1").status_code == 401
    r = httpx.post(
        f"{api.url}/query?q=CREATE+DATABASE+x", headers={"authorization": f"Token {token}"}
    )
    assert r.status_code == 200


def test_series_id_cache_forgets_deleted_series(api: ApiServer, token: str, conn: Conn) -> None:
    """The API caches series ids; a series deleted (or truncated) and sent again is created
    anew and its points belong to it, not to the deleted id."""
    h = auth(token)
    now = datetime.now(UTC).replace(microsecond=0)

    def send(value: float, seconds: int) -> None:
        body = [
            {"name": "cached", "labels": {"host": "a"}, "value": value,
             "timestamp": (now - timedelta(seconds=seconds)).isoformat()},
            {"name": "cached", "labels": {"host": "b"}, "value": value,
             "timestamp": (now - timedelta(seconds=seconds)).isoformat()},
        ]  # fmt: skip
        r = httpx.post(f"{api.url}/v1/metrics/batch", json=body, headers=h)
        assert r.json()["accepted"] == 2, r.text

    def points() -> list[tuple[str, int, float]]:
        rows = conn.execute(
            "select s.labels->>'host', count(*), sum(p.value) from vigil.points p"
            " join vigil.series s on s.id = p.series_id group by 1 order by 1"
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    send(1.0, 30)
    send(2.0, 20)  # known series: from the cache
    assert points() == [("a", 2, 3.0), ("b", 2, 3.0)]
    conn.execute("select vigil.delete_series(id) from vigil.series where labels->>'host' = 'a'")
    send(4.0, 10)
    assert points() == [("a", 1, 4.0), ("b", 3, 7.0)]
    conn.execute("truncate vigil.series, vigil.points")
    send(8.0, 5)
    assert points() == [("a", 1, 8.0), ("b", 1, 8.0)]
