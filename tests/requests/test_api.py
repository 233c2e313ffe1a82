"""POST /v1/requests and GET /v1/requests over real HTTP: formats, dedupe, unparsable lines
kept in the journal with a reason, the read contract (filters, keyset paging), auth."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from tests.conftest import ApiServer
from tests.requests.data import access_lines
from tests.support.login import login_client

Conn = psycopg.Connection[tuple[object, ...]]
NOW = datetime.now(UTC).replace(microsecond=0)
NOW_US = int(NOW.timestamp()) * 1_000_000
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def restamped(lines: list[bytes]) -> list[bytes]:
    """The real log's lines moved to the last hours (it is from 2015, past any retention)."""
    out = []
    for i, line in enumerate(lines):
        at = NOW - timedelta(seconds=len(lines) - i)
        start, end = line.index(b"["), line.index(b"]")
        out.append(line[: start + 1] + f"{at:%d/%b/%Y:%H:%M:%S} +0000".encode() + line[end:])
    return out


def post(api: ApiServer, token: str, body: bytes, ctype: str = "text/plain", **params: str) -> Any:
    r = httpx.post(
        api.url + "/v1/requests",
        content=body,
        params=params,
        headers={"authorization": f"Bearer {token}", "content-type": ctype},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return r.json()


def get(api: ApiServer, token: str | None, **params: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.get(api.url + "/v1/requests", params=params, headers=headers)


def test_text_lines_real_log_and_unparsable_lines(api: ApiServer, token: str, conn: Conn) -> None:
    lines = restamped(access_lines())
    garbage = [b"this is not an access log line", b"\xff\xfe broken \x00 bytes"]
    body = b"\n".join(lines[:2500] + garbage + lines[2500:]) + b"\n"
    out = post(api, token, body, format="combined", host="web-1")
    assert (out["accepted"], out["duplicated"], out["rejected"]) == (5000, 0, 2)
    assert out["kept_in_journal"] == 2
    assert out["reasons"] == {"not a common or combined log line": 2}
    assert [s["line"] for s in out["rejected_lines"]] == [2501, 2502]
    # the unparsable lines are journal lines with the reason
    kept = conn.execute(
        "select host, message, fields ->> 'VIGIL_REASON' from vigil.journal"
        " where fields ->> 'SYSLOG_IDENTIFIER' = 'vigil-requests'"
    ).fetchall()
    assert sorted(kept, key=lambda r: str(r[1]), reverse=True) == [
        ("web-1", "this is not an access log line", "not a common or combined log line"),
        ("web-1", "\\xff\\xfe broken \\x00 bytes", "not a common or combined log line"),
    ]
    # the same body again: nothing stored twice, not even in the journal
    again = post(api, token, body, format="combined", host="web-1")
    assert (again["accepted"], again["duplicated"]) == (0, 5000)
    assert conn.execute("select count(*) from vigil.requests").fetchone() == (5000,)


def test_ndjson_lines_and_nginx_records(api: ApiServer, token: str, conn: Conn) -> None:
    line = f'10.0.0.7 - - [{NOW:%d/%b/%Y:%H:%M:%S} +0000] "GET /health HTTP/1.1" 200 2 "-" "probe"'
    records = [
        # identical health checks in one second at distinct offsets: all kept
        {"line": line, "format": "combined", "host": "lb-1", "file_id": "a", "offset": 0},
        {"line": line, "format": "combined", "host": "lb-1", "file_id": "a", "offset": 100},
        {"line": line, "format": "combined", "host": "lb-1", "file_id": "a", "offset": 200},
        {
            "time_iso8601": NOW.isoformat(),
            "remote_addr": "2001:db8::1",
            "request": "POST /api/orders?x=1 HTTP/2.0",
            "status": "503",
            "body_bytes_sent": "0",
            "request_time": "2.5",
            "host": "shop.example",
            "http_x_request_id": "req-42",
            "http_traceparent": TRACEPARENT,
        },
        {"line": 5, "time": NOW_US},
        {"remote_addr": "1.2.3.4", "status": "200", "time": NOW_US},
    ]
    body = "\n".join(json.dumps(r) for r in records).encode()
    out = post(api, token, body, "application/x-ndjson")
    assert (out["accepted"], out["rejected"], out["kept_in_journal"]) == (4, 2, 2)
    assert out["reasons"] == {
        '"line" must be a string': 1,
        "no time_iso8601, msec or time_local": 1,
    }
    # sent again: nothing stored twice (the unparsable lines too, given their time)
    body += b"\n{broken"
    again = post(api, token, body, "application/x-ndjson")
    assert (again["accepted"], again["duplicated"], again["kept_in_journal"]) == (0, 4, 1)
    assert again["reasons"]["not valid JSON"] == 1
    row = conn.execute(
        "select vhost, method, path, query, status, request_time, request_id, trace_id"
        " from vigil.requests where status = 503"
    ).fetchone()
    assert row == (
        "shop.example", "POST", "/api/orders", "x=1", 503, 2.5, "req-42",
        "4bf92f3577b34da6a3ce929d0e0e4736",
    )  # fmt: skip


def test_read_contract_filters_and_paging(api: ApiServer, token: str, dsn: str) -> None:
    lines = [
        f"10.{i % 2}.0.{i} - - [{NOW - timedelta(seconds=i):%d/%b/%Y:%H:%M:%S} +0000] "
        f'"GET /{"api" if i % 3 else "static"}/{i} HTTP/1.1" {(200, 404, 500)[i % 3]} {i} "-" "t"'
        for i in range(1, 31)
    ]
    assert post(api, token, "\n".join(lines).encode(), host="web-1")["accepted"] == 30
    r = get(api, token, limit="4")
    assert r.status_code == 200
    page = r.json()
    assert set(page) == {"items", "next"}
    first = page["items"][0]
    assert {"time", "host", "ip", "method", "path", "status", "bytes"} <= set(first)
    assert (first["host"], first["ip"], first["method"], first["path"], first["bytes"]) == (
        "web-1", "10.1.0.1", "GET", "/api/1", 1
    )  # fmt: skip
    assert first["time"] == (NOW - timedelta(seconds=1)).isoformat().replace("+00:00", ".000000Z")
    # keyset paging: every record once, newest first, next null at the end
    seen, cursor = [], None
    while True:
        params = {"limit": "7"} | ({"cursor": cursor} if cursor else {})
        page = get(api, token, **params).json()
        seen += page["items"]
        cursor = page["next"]
        if cursor is None:
            break
    assert [i["bytes"] for i in seen] == list(range(1, 31))
    # filters
    assert {i["status"] for i in get(api, token, status="5xx").json()["items"]} == {500}
    assert len(get(api, token, status="404").json()["items"]) == 10
    assert {i["ip"] for i in get(api, token, ip="10.1.0.0/16").json()["items"]} == {
        f"10.1.0.{i}" for i in range(1, 31, 2)
    }
    assert [i["ip"] for i in get(api, token, ip="10.0.0.4").json()["items"]] == ["10.0.0.4"]
    assert all(
        i["path"].startswith("/static/") for i in get(api, token, path="/static/").json()["items"]
    )
    window = get(
        api,
        token,
        start=(NOW - timedelta(seconds=5)).isoformat(),
        end=(NOW - timedelta(seconds=2)).isoformat(),
    ).json()["items"]
    assert [i["bytes"] for i in window] == [3, 4, 5]
    assert get(api, token, host="other").json() == {"items": [], "next": None}
    # bad parameters: 400 with the reason
    for params, reason in (
        ({"status": "6xx"}, "status must be"),
        ({"ip": "10.0.0.300"}, "ip must be"),
        ({"limit": "0"}, "limit must be"),
        ({"start": "yesterday"}, "start must be"),
        ({"cursor": "garbage"}, "bad cursor"),
        ({"cursor": "2026-11-30T08:00:00+00:00,99999999999999999999"}, "bad cursor"),
        ({"limit": "\u00b2"}, "limit must be"),  # a digit to str.isdigit, not to int()
        ({"status": "\u00b2\u00b2\u00b2"}, "status must be"),
    ):
        r = get(api, token, **params)
        assert r.status_code == 400 and reason in r.text, (params, r.text)
    # auth: a sender token or an operator session; nothing else
    assert get(api, None).status_code == 401
    assert get(api, "wrong-token").status_code == 401
    with login_client(api.url, dsn, "ann@example.com") as operator:
        assert len(operator.get("/v1/requests", params={"limit": "3"}).json()["items"]) == 3


def test_post_refuses_an_unknown_format_and_needs_a_token(api: ApiServer, token: str) -> None:
    r = httpx.post(
        api.url + "/v1/requests?format=xml",
        content=b"x",
        headers={"authorization": f"Bearer {token}"},
    )
    assert r.status_code == 400 and "unknown format 'xml'" in r.text
    assert httpx.post(api.url + "/v1/requests", content=b"x").status_code == 401


def test_hostile_input_never_fails_the_batch(api: ApiServer, token: str, conn: Conn) -> None:
    """Values PostgreSQL would refuse are cleaned or the line is rejected alone: no 4xx or
    5xx for the batch, the valid lines kept."""
    at = NOW.isoformat()
    good = {"time_iso8601": at, "remote_addr": "10.0.0.1", "request": "GET / HTTP/1.1",
            "status": "200"}  # fmt: skip
    records = [
        good,
        {**good, "status": "099"},  # outside the column's check
        {**good, "body_bytes_sent": "99999999999999999999"},  # beyond bigint
        {**good, "remote_addr": "fe80::1%eth0", "request": "GET /zone HTTP/1.1"},
        {**good, "request": "GET /\ud800\u0000 HTTP/1.1", "http_user_agent": "\udfff"},
        {"msec": "999999999999.5", "remote_addr": "10.0.0.1", "status": "200"},
        {"line": "x", "host": "h\u0000\ud800", "file_id": "\ud800", "offset": 1},
    ]
    body = "\n".join(json.dumps(r) for r in records).encode()
    r = httpx.post(
        api.url + "/v1/requests?host=a%00b",
        content=body,
        headers={"authorization": f"Bearer {token}", "content-type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["accepted"], out["rejected"]) == (4, 3), out
    assert set(out["reasons"]) == {
        "the status is not between 100 and 999",
        "msec is after the year 9999",
        "not a common or combined log line",
    }
    rows = conn.execute(
        "select host, host(ip), path, bytes, user_agent from vigil.requests order by path"
    ).fetchall()
    assert ("a\\x00b", "10.0.0.1", "/\\ud800\\x00", None, "\\udfff") in rows
    assert ("a\\x00b", "fe80::1", "/zone", None, None) in rows
    kept = conn.execute(
        "select host, message from vigil.journal"
        " where fields ->> 'SYSLOG_IDENTIFIER' = 'vigil-requests' order by message"
    ).fetchall()
    assert len(kept) == 3 and ("h\\x00\\ud800", "x") in kept
