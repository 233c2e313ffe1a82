"""POST /loki/api/v1/push with real clients: python-logging-loki (JSON, Basic auth) and
winston-loki from npm (snappy protobuf without Content-Encoding, and JSON); their lines arrive
in the journal with the labels mapped to host, unit and priority. Hand-built pushes cover the
edges: gzip JSON, `Content-Encoding: snappy`, structured metadata, nanosecond timestamps,
duplicates, bad entries (400, the valid ones kept), a database that cannot take the write
(503, the retry stores once)."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import subprocess
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import cramjam
import httpx
import logging_loki
import pytest

from api.loki.decode import LineError, parse_json, parse_labels, priority_of
from api.loki.proto.push_pb2 import PushRequest
from tests.receivers.conftest import Vigil
from tests.receivers.test_remote_write import psycopg_lock

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE = shutil.which("node") or "/usr/bin/node"


def lines(vigil: Vigil, run: str) -> list[dict[str, Any]]:
    """The journal lines of one run (label `run`), by message."""
    rows = vigil.conn.execute(
        "select at, host, unit, container, priority, message, fields from vigil.journal"
        " where fields->>'run' = %s order by message",
        (run,),
    ).fetchall()
    keys = ("at", "host", "unit", "container", "priority", "message", "fields")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def test_python_logging_loki(vigil: Vigil) -> None:
    run = uuid.uuid4().hex
    handler = logging_loki.LokiHandler(
        url=f"{vigil.url}/loki/api/v1/push",
        tags={"application": "billing", "host": "web-7", "run": run},
        auth=("tenant", vigil.token),
        version="1",
    )
    logger = logging.getLogger(f"billing.{run}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    failures: list[str] = []
    handler.handleError = lambda record: failures.append(record.getMessage())
    try:
        logger.error("payment failed for order %s", "A-1")
        logger.warning("retrying", extra={"tags": {"unit": "billing.service"}})
        logger.info("paid ✓")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert not failures  # each push was answered 204 (the handler raises otherwise)
    got = lines(vigil, run)
    assert [(g["message"], g["host"], g["unit"], g["priority"]) for g in got] == [
        ("paid ✓", "web-7", None, 6),
        ("payment failed for order A-1", "web-7", None, 3),
        ("retrying", "web-7", "billing.service", 4),
    ]
    assert got[0]["fields"] == {
        "application": "billing",
        "host": "web-7",
        "run": run,
        "severity": "info",
        "logger": f"billing.{run}",
    }
    assert all(abs(g["at"].timestamp() - time.time()) < 60 for g in got)


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_winston_loki(vigil: Vigil, encoding: str) -> None:
    run = uuid.uuid4().hex
    result = subprocess.run(
        [NODE, str(NODE_DIR / "push.js"), vigil.url, vigil.token, encoding, run],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    got = lines(vigil, run)
    # winston-loki appends the log call's meta as JSON to the line
    assert [(g["message"].split(" {")[0], g["host"], g["unit"], g["priority"]) for g in got] == [
        ("order placed", "web-9", "shop.service", 6),
        ("payment declined", "web-9", None, 3),
        ("stock low", "web-9", None, 4),
    ]
    assert {g["fields"]["app"] for g in got} == {"shop"}
    assert {g["fields"]["level"] for g in got} == {"info", "error", "warn"}


# --- Hand-built pushes ---


def push(vigil: Vigil, body: bytes, **headers: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {vigil.token}", **headers}
    return httpx.post(vigil.url + "/loki/api/v1/push", content=body, headers=headers, timeout=10)


def push_json(vigil: Vigil, streams: list[dict[str, Any]], **headers: str) -> httpx.Response:
    body = json.dumps({"streams": streams}).encode()
    return push(vigil, body, **{"Content-Type": "application/json", **headers})


def ns(offset_s: float = 0) -> str:
    return str(time.time_ns() + int(offset_s * 1e9))


def test_json_gzip_metadata_nanoseconds_and_label_mapping(vigil: Vigil) -> None:
    run = uuid.uuid4().hex
    at = time.time_ns() // 1000 * 1000 + 789  # nanoseconds below the microsecond
    streams = [
        {
            "stream": {
                "hostname": "db-1",
                "service_name": "postgres",
                "container_name": "pg",
                "detected_level": "WARNING",
                "run": run,
            },
            "values": [
                [str(at), "checkpoint slow", {"trace_id": "abc", "run": "meta"}],
                [str(at), "checkpoint slow", {"trace_id": "abc", "run": "meta"}],  # repeated
            ],
        },
        {"stream": {"host": "db-2", "priority": "2", "run": run}, "values": [[ns(), "crit"]]},
    ]
    body = gzip.compress(json.dumps({"streams": streams}).encode())
    r = push(vigil, body, **{"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 204, r.text
    got = lines(vigil, run)
    assert [(g["host"], g["unit"], g["container"], g["priority"]) for g in got] == [
        ("db-1", "postgres", "pg", 4),
        ("db-2", None, None, 2),
    ]
    first = got[0]
    assert int(first["at"].timestamp() * 1_000_000) == at // 1000
    assert first["fields"]["trace_id"] == "abc"  # structured metadata kept
    assert first["fields"]["run"] == run and first["fields"]["run_metadata"] == "meta"
    # The same push again: 204, nothing stored twice.
    again = push(vigil, body, **{"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert again.status_code == 204
    assert len(lines(vigil, run)) == 2


def test_protobuf_with_snappy_content_encoding(vigil: Vigil) -> None:
    run = uuid.uuid4().hex
    request = PushRequest()
    stream = request.streams.add(labels=f'{{host="web-3", unit="nginx.service", run="{run}"}}')
    entry = stream.entries.add(line="GET / 200")
    entry.timestamp.seconds = int(time.time())
    entry.timestamp.nanos = 123_456_789
    entry.structuredMetadata.add(name="user", value='quote " and \\ backslash')
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
    r = push(vigil, body, **headers)
    assert r.status_code == 204, r.text
    assert push(vigil, body).status_code == 204  # no headers at all: recognised, stored once
    [got] = lines(vigil, run)
    assert (got["host"], got["unit"], got["message"]) == ("web-3", "nginx.service", "GET / 200")
    assert got["at"].microsecond == 123_456
    assert got["fields"]["user"] == 'quote " and \\ backslash'


def test_bad_entries_are_400_and_the_valid_ones_kept(vigil: Vigil) -> None:
    run = uuid.uuid4().hex
    streams: list[dict[str, Any]] = [
        {
            "stream": {"run": run},
            "values": [
                [ns(), "kept"],
                [time.time_ns(), "kept: a number is read as nanoseconds too"],
                ["yesterday", "bad timestamp"],
                [ns(), 42],
                [ns(), "bad metadata", {"n": 1}],
                "not an entry",
                ["99999999999999999999999", "out of range"],
                [ns(-40 * 86400), "older than the retention"],
            ],
        },
        {"stream": {"run": 5}, "values": [[ns(), "labels not strings"]]},
        {"values": "nope"},
    ]
    r = push_json(vigil, streams)
    assert r.status_code == 400
    assert r.text.startswith("400 8 of 10 entries rejected (2 stored): ")
    assert "the timestamp must be a string of nanoseconds since 1970 (1)" in r.text
    assert [g["message"] for g in lines(vigil, run)] == [
        "kept",
        "kept: a number is read as nanoseconds too",
    ]

    request = PushRequest()
    request.streams.add(labels="not labels").entries.add(line="x")
    good = request.streams.add(labels=f'{{run="{run}"}}').entries.add(line="kept too")
    good.timestamp.seconds = int(time.time())
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    r = push(vigil, body, **{"Content-Type": "application/x-protobuf"})
    assert r.status_code == 400 and "are not a label set" in r.text
    assert [g["message"] for g in lines(vigil, run)] == [
        "kept",
        "kept too",
        "kept: a number is read as nanoseconds too",
    ]


def test_unreadable_bodies(vigil: Vigil) -> None:
    r = push(vigil, b"{not json", **{"Content-Type": "application/json"})
    assert r.status_code == 400 and r.text.startswith("400 malformed JSON")
    r = push(vigil, b'{"streams": 1}', **{"Content-Type": "application/json"})
    assert r.status_code == 400 and '{"streams": [...]}' in r.text
    r = push(vigil, b"garbage", **{"Content-Type": "application/x-protobuf"})
    assert r.status_code == 400 and "snappy" in r.text
    not_proto = bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff"))
    r = push(vigil, not_proto, **{"Content-Type": "application/x-protobuf"})
    assert r.status_code == 400 and "not a Loki PushRequest" in r.text
    r = push(vigil, b"x", **{"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 400 and "invalid compressed body" in r.text
    r = push(vigil, b"not gzip", **{"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 400 and "incorrect header check" in r.text
    truncated = gzip.compress(b'{"streams": []}')[:-6]
    r = push(vigil, truncated, **{"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 400 and "truncated" in r.text
    r = push(vigil, b"{}", **{"Content-Encoding": "br"})
    assert r.status_code == 415


@pytest.mark.parametrize("encoding", ["deflate", "snappy"])
def test_json_deflate_and_snappy(vigil: Vigil, encoding: str) -> None:
    run = uuid.uuid4().hex
    body = json.dumps({"streams": [{"stream": {"run": run}, "values": [[ns(), encoding]]}]})
    data = body.encode()
    data = (
        zlib.compress(data) if encoding == "deflate" else bytes(cramjam.snappy.compress_raw(data))
    )
    r = push(vigil, data, **{"Content-Type": "application/json", "Content-Encoding": encoding})
    assert r.status_code == 204, r.text
    assert [g["message"] for g in lines(vigil, run)] == [encoding]
    assert push(vigil, b"", **{"Content-Type": "application/json"}).status_code == 204
    assert push(vigil, b"{}", Authorization="Basic " + "eDp5").status_code == 401


def test_database_refusing_writes_is_503_and_the_retry_stores_once(vigil: Vigil) -> None:
    run = uuid.uuid4().hex
    streams = [{"stream": {"run": run}, "values": [[ns(), "one"], [ns(), "two"]]}]
    with psycopg_lock(vigil, "vigil.journal"):
        r = push_json(vigil, streams)
    assert r.status_code == 503, r.text
    assert lines(vigil, run) == []
    assert push_json(vigil, streams).status_code == 204
    assert [g["message"] for g in lines(vigil, run)] == ["one", "two"]


# --- The pure parts ---


def test_label_sets_and_levels() -> None:
    assert parse_labels('{a="1", b_c="x\\"y\\n\\u00e9\\x41", d.e="" }') == {
        "a": "1",
        "b_c": 'x"y\néA',
        "d.e": "",
    }
    assert parse_labels(" {} ") == {}
    for bad in ('a="1"', '{a="1"', "{a=1}", '{a="1"} x', '{a="1",,}'):
        with pytest.raises(LineError):
            parse_labels(bad)
    assert [priority_of(x) for x in ("EMERG", "crit", "Warning", "5", "info ", "8", "loud")] == [
        0, 2, 4, 5, 6, None, None
    ]  # fmt: skip


def test_a_timestamp_of_thousands_of_digits_is_refused_not_a_failure() -> None:
    body = json.dumps({"streams": [{"stream": {"a": "b"}, "values": [["9" * 5000, "x"]]}]})
    batch = parse_json(body.encode())
    assert (len(batch.entries), batch.rejected) == (0, 1)
