"""vigil/accesslog.py: the real access log, every field of the formats, hostile lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.requests.data import access_lines
from vigil.accesslog import MAX_LINE, MAX_TEXT, LineError, parse_line, trace_id_of

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_real_log_parses_completely() -> None:
    lines = access_lines()
    assert len(lines) == 5000
    failures = {}
    records = []
    for n, line in enumerate(lines, 1):
        try:
            records.append(parse_line(line, "combined"))
        except LineError as exc:  # pragma: no cover - the assertion below shows them
            failures[n] = (str(exc), line[:200])
    assert failures == {}
    assert {r.method for r in records} >= {"GET"}
    assert all(r.ip and 100 <= r.status <= 599 for r in records)
    assert sum(r.user_agent is not None for r in records) > 4800  # the rest logged "-"
    # every record's request line split into method, path and protocol
    assert all((r.method and r.path and r.protocol) or r.request for r in records)
    # auto-detection agrees with the explicit format
    assert [parse_line(line) for line in lines[:200]] == records[:200]


def test_combined_fields() -> None:
    r = parse_line(
        b'203.0.113.9 - alice [10/Oct/2000:13:55:36 -0700] "GET /a/b?x=1&y=2 HTTP/1.1" 200 2326 '
        b'"http://example.com/start" "Mozilla/4.08 [en] (Win98; I ;Nav)"'
    )
    assert r.at == datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)
    assert (r.ip, r.user, r.method, r.path, r.query, r.protocol) == (
        "203.0.113.9", "alice", "GET", "/a/b", "x=1&y=2", "HTTP/1.1"
    )  # fmt: skip
    assert (r.status, r.bytes, r.referrer) == (200, 2326, "http://example.com/start")
    assert r.user_agent == "Mozilla/4.08 [en] (Win98; I ;Nav)"
    assert r.request is None


def test_common_format_and_dash_bytes() -> None:
    r = parse_line(b'::1 - - [01/Jan/2026:00:00:00 +0000] "HEAD / HTTP/1.0" 304 -', "common")
    assert (r.ip, r.method, r.status, r.bytes, r.referrer, r.user_agent) == (
        "::1", "HEAD", 304, None, None, None
    )  # fmt: skip
    assert r.query is None


def test_vhost_and_appended_fields() -> None:
    r = parse_line(
        b'shop.example:443 198.51.100.7 - - [30/Nov/2026:08:00:01 +0100] "POST /pay HTTP/2.0" '
        b'502 0 "-" "curl/8.5" rt=1.250 urt="1.000, 0.200" request_id=abc-1 '
        + f"traceparent={TRACEPARENT}".encode()
    )
    assert r.vhost == "shop.example"
    assert r.at == datetime(2026, 11, 30, 7, 0, 1, tzinfo=UTC)
    assert (r.request_time, r.upstream_time) == (1.25, 1.2)
    assert r.request_id == "abc-1"
    assert r.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_bare_request_id_and_request_time() -> None:
    r = parse_line(
        b'10.1.2.3 - - [30/Nov/2026:08:00:01 +0000] "GET / HTTP/1.1" 200 5 "-" "-" '
        b'"10.9.9.9" 0123456789abcdef0123456789abcdef 0.004'
    )
    assert (r.request_id, r.request_time) == ("0123456789abcdef0123456789abcdef", 0.004)


def test_nginx_json() -> None:
    obj = {
        "time_iso8601": "2026-11-30T08:00:00+00:00",
        "remote_addr": "2001:db8::1",
        "request": "POST /api/v1/items?page=2 HTTP/2.0",
        "status": "201",
        "body_bytes_sent": "17",
        "http_referer": "",
        "http_user_agent": "Go-http-client/2.0",
        "request_time": "0.031",
        "upstream_response_time": "0.020 : 0.010",
        "host": "api.example",
        "request_id": "7f3c",
        "http_x_request_id": "client-chosen",
        "http_traceparent": TRACEPARENT,
    }
    r = parse_line(json.dumps(obj).encode())
    assert (r.ip, r.method, r.path, r.query, r.protocol, r.status, r.bytes) == (
        "2001:db8::1", "POST", "/api/v1/items", "page=2", "HTTP/2.0", 201, 17
    )  # fmt: skip
    assert r.referrer is None and r.user_agent == "Go-http-client/2.0"
    assert (r.request_time, r.upstream_time, r.vhost) == (0.031, 0.03, "api.example")
    assert r.request_id == "client-chosen"  # X-Request-ID wins over nginx's own id
    assert r.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    # split variables, msec time, numbers as numbers
    r = parse_line(
        json.dumps(
            {"msec": "1796025600.250", "remote_addr": "10.0.0.1", "request_method": "get",
             "request_uri": "/x?y", "status": 404, "bytes_sent": 9}
        ).encode(),
        "nginx-json",
    )  # fmt: skip
    assert (r.method, r.path, r.query, r.status, r.bytes) == ("GET", "/x", "y", 404, 9)
    assert r.us == 1796025600250000


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "empty line"),
        (b"Nov 30 08:00:01 web-1 sshd[1]: hello", "not a common or combined log line"),
        (b'999.1.1.1 - - [30/Nov/2026:08:00:01 +0000] "GET / HTTP/1.1" 200 1', "not an IP"),
        (b'1.1.1.1 - - [30/Foo/2026:08:00:01 +0000] "GET / HTTP/1.1" 200 1', "the time"),
        (b'1.1.1.1 - - [31/Feb/2026:08:00:01 +0000] "GET / HTTP/1.1" 200 1', "valid date"),
        (b'1.1.1.1 - - [30/Nov/2026:08:00:01 +0000] "GET / HTTP/1.1" 2000 1', "not a common"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a common"),
        (b'{"remote_addr": "1.1.1.1", "status": "200"}', "no time_iso8601"),
        (b'{"remote_addr": "1.1.1.1", "msec": "1", "status": "ok"}', "no 3-digit status"),
        (b'{"status": "200"}', "no remote_addr"),
        (b"x" * (MAX_LINE + 1), "longer than"),
    ],
)
def test_unreadable_lines_say_why(line: bytes, reason: str) -> None:
    with pytest.raises(LineError, match=reason):
        parse_line(line)


def test_hostile_lines() -> None:
    base = b'1.1.1.1 - - [30/Nov/2026:08:00:01 +0000] "%s" 400 0 "-" "%s"'
    # a TLS handshake sent to a plain port, as nginx logs it (escaped bytes)
    r = parse_line(base % (b"\\x16\\x03\\x01\\x00\\xc8", b"-"))
    assert r.method is None and r.path is None
    assert r.request == "\\x16\\x03\\x01\\x00\\xc8"  # not valid UTF-8 decoded: kept as written
    # escaped quotes and backslashes inside quoted fields
    r = parse_line(base % (b'GET /q\\"a\\\\b HTTP/1.1', b'evil\\" agent'))
    assert r.path == '/q"a\\b' and r.user_agent == 'evil" agent'
    # raw invalid UTF-8 and NUL: visible escapes, never an exception
    r = parse_line(base % (b"GET /\xff\xfe\x00 HTTP/1.1", b"\xc3\x28"))
    assert r.path == "/\\xff\\xfe\\x00" and r.user_agent == "\\xc3("
    # a huge field is cut, the line still parses
    r = parse_line(base % (b"GET /" + b"a" * 40_000 + b" HTTP/1.1", b"b" * 20_000))
    assert r.path is not None and len(r.path) == MAX_TEXT and r.path.endswith("...")
    assert r.user_agent is not None and len(r.user_agent) == MAX_TEXT
    # an escaped NUL stays escaped (PostgreSQL text holds no NUL)
    r = parse_line(base % (b"GET /\\x00 HTTP/1.1", b"-"))
    assert r.path == "/\\x00"
    # control characters in JSON: kept as text, NUL escaped
    obj = {
        "time_iso8601": "2026-11-30T08:00:00Z",
        "remote_addr": "1.1.1.1",
        "status": "200",
        "request": "GET /\u0000\u202e HTTP/1.1",
        "http_user_agent": "a" * 30_000,
    }
    r = parse_line(json.dumps(obj).encode())  # fmt: skip
    assert r.path == "/\\x00\u202e" and r.user_agent is not None
    assert len(r.user_agent) == MAX_TEXT


def test_trace_id_of() -> None:
    assert trace_id_of(TRACEPARENT) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_of(TRACEPARENT.upper()) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_of("4BF92F3577B34DA6A3CE929D0E0E4736") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_of("00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None  # invalid per W3C
    assert trace_id_of("nonsense") is None
    assert trace_id_of(None) is None
