"""The deny list over HTTP: GET /v1/block/export (a sender token, text/plain, the three
formats), and ingest refusing denied clients with 403 and the reason - every sender route,
never the operator's pages - until the block expires or is removed. The test client comes
from 127.0.0.1; X-Forwarded-For counts only from a trusted proxy (uvicorn's
FORWARDED_ALLOW_IPS: 127.0.0.1 by default)."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import psycopg
from litestar.handlers import HTTPRouteHandler

from api.app import FEATURE_ROUTES
from api.auth.senders import influx_guard, sender_guard
from api.auth.sessions import operator_guard
from api.block.guard import Block, DenyList, client_address, is_sender_route
from api.uptime.routes import reader_guard
from tests.conftest import ApiServer
from tests.support.login import login_client

Conn = psycopg.Connection[tuple[object, ...]]

# (method, path, body): one request on each kind of sender route.
SENDER_REQUESTS = [
    ("POST", "/metric", b'{"host":"web-1","name":"backup","type":"ping","value":"5"}'),
    ("POST", "/v1/metrics", b'{"name":"cpu","value":1}'),
    ("GET", "/v1/metrics", b""),
    ("POST", "/journal", b'{"MESSAGE":"hi"}\n'),
    ("POST", "/api/v1/write", b""),
    ("POST", "/loki/api/v1/push", b'{"streams":[]}'),
    ("POST", "/collectd", b"[]"),
    ("POST", "/write", b"cpu value=1"),
    ("GET", "/ping", b""),
    ("GET", "/ping/0123456789abcdef", b""),
    ("GET", "/api/push/abcdef", b""),
    ("POST", "/v1/requests", b""),
    ("GET", "/v1/block/export", b""),
]
OPERATOR_PATHS = ["/login", "/health", "/static/vigil.css", "/blocks", "/", "/alerts"]


def handlers() -> list[HTTPRouteHandler]:
    found = []
    for routes in FEATURE_ROUTES:
        for handler in routes:
            assert isinstance(handler, HTTPRouteHandler)
            found.append(handler)
    return found


def test_the_guard_covers_every_sender_route_and_no_page() -> None:
    senders = (sender_guard, influx_guard, reader_guard)
    for handler in handlers():
        guards = handler.guards or []
        for path in handler.paths:
            if (
                operator_guard in guards
                or path in ("/health", "/login")
                or path.startswith(("/login/", "/logout", "/auth/"))
            ):
                assert not is_sender_route(handler, path), path
            elif any(g in guards for g in senders) or path.startswith(("/ping", "/api/push")):
                assert is_sender_route(handler, path), path
    paths = {p for h in handlers() for p in h.paths if is_sender_route(h, p)}
    assert {"/metric", "/ping/{a:str}", "/api/push/{token:str}", "/v1/block/export"} <= paths


def test_lookup_finds_the_narrowest_entry_and_ignores_expired_ones() -> None:
    from datetime import UTC, datetime
    from ipaddress import ip_network

    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    deny = DenyList.of(
        [
            Block(ip_network("10.0.0.0/8"), "wide", None),
            Block(ip_network("10.1.2.3/32"), "narrow", now + timedelta(seconds=1)),
            Block(ip_network("2001:db8::/32"), "v6", None),
        ]
    )
    assert len(deny) == 3
    address = client_address("10.1.2.3")
    assert address is not None
    found = deny.find(address, now)
    assert found is not None and found.reason == "narrow"
    later = deny.find(address, now + timedelta(seconds=1))
    assert later is not None and later.reason == "wide"
    mapped = client_address("::ffff:10.9.9.9")  # IPv4-mapped IPv6 is the IPv4 address
    assert mapped is not None and deny.find(mapped, now) is not None
    v6 = client_address("[2001:db8::5]")
    assert v6 is not None and deny.find(v6, now) is not None
    other = client_address("11.0.0.1")
    assert other is not None and deny.find(other, now) is None
    assert client_address("testclient") is None


def test_export_needs_a_token_and_serves_each_format(
    api: ApiServer, conn: Conn, token: str
) -> None:
    conn.execute("select vigil.block_add('203.0.113.7', '1 hour', 'scanner')")
    conn.execute("select vigil.block_add('198.51.100.0/24')")
    conn.execute("select vigil.block_add('192.0.2.1', '1 second')")
    conn.execute("select pg_sleep(1.01)")  # that one has expired
    url = api.url + "/v1/block/export"
    assert httpx.get(url, timeout=10).status_code == 401
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.get(url, headers=auth, timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == "deny 198.51.100.0/24;\ndeny 203.0.113.7;\n"
    r = httpx.get(url, params={"format": "cidr"}, headers=auth, timeout=10)
    assert r.text == "198.51.100.0/24\n203.0.113.7/32\n"
    r = httpx.get(url, params={"format": "ipset"}, headers=auth, timeout=10)
    assert r.text.splitlines() == [
        "create vigil-deny hash:net -exist",
        "flush vigil-deny",
        "add vigil-deny 198.51.100.0/24 -exist",
        "add vigil-deny 203.0.113.7 -exist",
    ]
    # The token in the path, as a cron job's curl may send it.
    r = httpx.get(api.url + f"/t/{token}/v1/block/export?format=cidr", timeout=10)
    assert r.status_code == 200 and r.text.endswith("203.0.113.7/32\n")
    r = httpx.get(url, params={"format": "apache"}, headers=auth, timeout=10)
    assert (r.status_code, r.text) == (400, "400 format must be nginx, ipset or cidr\n")


def test_a_blocked_client_gets_403_on_sender_routes_not_on_pages_until_expiry(
    api: ApiServer, conn: Conn, dsn: str, token: str
) -> None:
    operator = login_client(api.url, dsn, "ops@example.com")  # before the block: from 127.0.0.1
    conn.execute("select vigil.block_add('127.0.0.1', '3 seconds', 'test: too many 404')")
    expires = time.monotonic() + 3
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api.url, headers=auth, timeout=10) as client:
        for method, path, body in SENDER_REQUESTS:
            r = client.request(method, path, content=body)
            assert r.status_code == 403, (path, r.status_code, r.text)
            assert r.text.startswith(
                "403 blocked: 127.0.0.1 is on this server's deny list "
                "(127.0.0.1/32: test: too many 404; until "
            ), path
        r = client.post(f"/t/{token}/metric", content=SENDER_REQUESTS[0][2])
        assert r.status_code == 403
        for path in OPERATOR_PATHS:
            r = client.get(path)
            assert r.status_code != 403, path
        with operator:
            page = operator.get("/blocks")
            assert page.status_code == 200 and "127.0.0.1" in page.text
            # Expiry lifts it (checked on every request, whatever the cache holds).
            time.sleep(max(0.0, expires - time.monotonic()) + 0.1)
            r = client.post("/metric", content=SENDER_REQUESTS[0][2])
            assert r.status_code == 200, r.text
            page = operator.get("/blocks")
            assert 'id="expired-blocks"' in page.text


def test_x_forwarded_for_from_a_trusted_proxy_is_the_client(
    api: ApiServer, conn: Conn, token: str
) -> None:
    conn.execute("select vigil.block_add('203.0.113.0/24', null, 'botnet')")
    body = SENDER_REQUESTS[0][2]
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api.url, headers=auth, timeout=10) as client:
        r = client.post("/metric", content=body, headers={"X-Forwarded-For": "203.0.113.50"})
        assert r.status_code == 403
        assert "203.0.113.50 is on this server's deny list (203.0.113.0/24: botnet;" in r.text
        assert "until removed" in r.text
        r = client.post("/metric", content=body, headers={"X-Forwarded-For": "198.51.100.1"})
        assert r.status_code == 200
        assert client.post("/metric", content=body).status_code == 200
