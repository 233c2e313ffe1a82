"""Hostile and broken input on every ingest and read route: a clear 4xx (never a 5xx, never
a 503 that would make a sender retry forever), and the valid parts of a batch stored."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.conftest import ApiServer
from tests.support.login import login_client

Conn = psycopg.Connection[tuple[object, ...]]

DEEP = b"[" * 5000 + b"]" * 5000
NOW = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def report(host: str, timestamp: str | None = None) -> bytes:
    body: dict[str, object] = {"host": host, "name": "backup", "type": "ping", "value": "5"}
    if timestamp is not None:
        body["timestamp"] = timestamp
    return json.dumps(body).encode()


# (method, path, body, content type): each is refused with a 4xx, or (routes that account
# per line) answered 200 with the line counted as rejected.
CORPUS: list[tuple[str, str, bytes, str]] = [
    ("POST", "/metric", b'{"host":"a","name":"b","type":"ping","state":' + DEEP + b"}", "json"),
    ("POST", "/metric", report("a", "2026-11-29T12:00:00-99:99"), "json"),
    ("POST", "/metric", report("a\x00b"), "json"),
    ("POST", "/journal", DEEP, "json"),
    ("POST", "/journal", b'{"logs":' + DEEP + b"}", "json"),
    ("POST", "/v1/metrics", b'{"name":"x","value":1,"labels":' + DEEP + b"}", "json"),
    ("POST", "/v1/metrics", b'{"name":"x","value":1,"timestamp":1e303}', "json"),
    ("POST", "/v1/metrics", b'{"name":"x\\u0000y","value":1}', "json"),
    ("POST", "/v1/metrics/batch", DEEP, "json"),
    ("POST", "/v1/metrics/batch", b'[{"name":"x","value":1,"timestamp":1e303}]', "json"),
    ("POST", "/write?precision=s", b"cpu usage=1 1e303\n", "text"),
    ("GET", "/v1/metrics/x/day/9999-12-31/9999-12-31", b"", ""),
    ("GET", "/v1/metrics/x\x00y/day/2026-01-01/2026-01-02", b"", ""),
    ("GET", "/v1/metrics/x/day/0001-01-01/0001-01-01", b"", ""),
]


def test_corpus_gets_4xx_never_5xx(api: ApiServer, token: str) -> None:
    with httpx.Client(base_url=api.url, headers=auth(token), timeout=30) as client:
        for method, path, body, kind in CORPUS:
            headers = {"content-type": "application/json"} if kind == "json" else {}
            r = client.request(method, path.replace("\x00", "%00"), content=body, headers=headers)
            if r.status_code == 200 and path == "/journal":
                assert r.json()["rejected"] >= 1, r.text
                continue
            if r.status_code == 200 and method == "GET":
                assert r.json()["data"] == [], r.text  # a valid range with no points
                continue
            assert 400 <= r.status_code < 500, (path, body[:80], r.status_code, r.text)


def test_offsets_beyond_postgresql_s_range_are_stored_in_utc(
    api: ApiServer, token: str, conn: Conn
) -> None:
    """RFC 3339 allows offsets to ±23:59, PostgreSQL's input ±15:59: sent as UTC."""
    r = httpx.post(
        f"{api.url}/metric", content=report("a", "2026-11-29T12:00:00+16:00"), headers=auth(token)
    )
    assert (r.status_code, r.text) == (200, "ok")
    row = conn.execute("select last_seen = '2026-11-28T20:00:00Z' from vigil.metrics").fetchone()
    assert row == (True,)


def test_one_refused_report_never_fails_the_others(api: ApiServer, token: str, conn: Conn) -> None:
    """Reports are grouped into one database call; a report PostgreSQL refuses (here: a
    trigger that refuses host 'poison') is answered alone with a 4xx and the others of its
    group are stored."""
    conn.execute(
        """create function public.refuse_poison() returns trigger language plpgsql as $$
           begin
             if new.host like 'poison%' then
               raise exception 'refused %', new.host using errcode = '22023';
             end if;
             return new;
           end $$"""
    )
    conn.execute(
        "create trigger refuse before insert on vigil.metrics "
        "for each row execute function public.refuse_poison()"
    )

    async def send() -> list[int]:
        # 200 at once: most wait for one of the client's 100 connections, which on a busy
        # machine takes longer than httpx's default 5 s.
        async with httpx.AsyncClient(base_url=api.url, headers=auth(token), timeout=60) as client:
            bodies = [report(f"good-{i}") for i in range(200)]
            bodies[::20] = [report(f"poison-{i}") for i in range(10)]
            replies = await asyncio.gather(*(client.post("/metric", content=b) for b in bodies))
            return [r.status_code for r in replies]

    statuses = asyncio.run(send())
    assert statuses.count(400) == 10
    assert statuses.count(200) == 190
    assert conn.execute("select count(*) from vigil.metrics").fetchone() == (190,)


def test_series_batch_keeps_valid_points(api: ApiServer, token: str, conn: Conn) -> None:
    body = json.dumps(
        [
            {"name": "ok", "value": 1, "timestamp": NOW},
            {"name": "bad", "value": 2, "timestamp": 1e303},
            {"name": "ok", "value": 3, "timestamp": NOW, "labels": {"a": "b"}},
        ]
    )
    r = httpx.post(f"{api.url}/v1/metrics/batch", content=body, headers=auth(token))
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["rejected"]) == (2, 1)
    assert conn.execute("select count(*) from vigil.points").fetchone() == (2,)


def test_truncated_or_garbage_gzip_is_refused(api: ApiServer, token: str, conn: Conn) -> None:
    lines = "".join(f"cpu,host=h{i} usage={i} {int(time.time())}\n" for i in range(500))
    packed = gzip.compress(lines.encode())
    for body in (packed[:75], packed[:-8], b"\x1f\x8b" + b"garbage" * 10):
        r = httpx.post(
            f"{api.url}/write?precision=s",
            content=body,
            headers={**auth(token), "content-encoding": "gzip"},
        )
        assert r.status_code == 400, (len(body), r.status_code, r.text)
        assert "gzip" in r.text
    assert conn.execute("select count(*) from vigil.points").fetchone() == (0,)
    whole = httpx.post(
        f"{api.url}/write?precision=s",
        content=packed,
        headers={**auth(token), "content-encoding": "gzip"},
    )
    assert whole.status_code == 204, whole.text
    assert conn.execute("select count(*) from vigil.points").fetchone() == (500,)


def test_one_bad_journal_line_is_counted_not_fatal(api: ApiServer, token: str, conn: Conn) -> None:
    def line(message: str, **extra: object) -> str:
        fields: dict[str, object] = {
            "__REALTIME_TIMESTAMP": str(int(time.time() * 1_000_000)),
            "_HOSTNAME": "web-1",
            "MESSAGE": message,
            **extra,
        }
        return json.dumps(fields)

    huge = line("huge number").replace('"MESSAGE"', '"X":1e1000000,"MESSAGE"')
    body = "\n".join([line("first"), huge, line("last")]).encode()
    r = httpx.post(f"{api.url}/journal", content=body, headers=auth(token))
    assert r.status_code == 200, r.text
    reply = r.json()
    assert (reply["accepted"], reply["rejected"]) == (2, 1), reply
    messages = {row[0] for row in conn.execute("select message from vigil.journal").fetchall()}
    assert messages == {"first", "last"}


def test_nul_in_a_field_name_on_upload_is_escaped(api: ApiServer, token: str, conn: Conn) -> None:
    def entry(message: str, field: bytes = b"") -> bytes:
        stamp = str(int(time.time() * 1_000_000)).encode()
        return (
            b"__REALTIME_TIMESTAMP=" + stamp + b"\n_HOSTNAME=web-1\nMESSAGE=" + message.encode()
            + b"\n" + field + b"\n"
        )  # fmt: skip

    body = entry("first") + entry("bad", b"BAD\x00NAME=x\n") + entry("last")
    r = httpx.post(
        f"{api.url}/upload",
        content=body,
        headers={**auth(token), "content-type": "application/vnd.fdo.journal"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 3, r.text
    rows = conn.execute("select message, fields ->> 'BAD\\x00NAME' from vigil.journal").fetchall()
    assert sorted(rows, key=str) == [("bad", "x"), ("first", None), ("last", None)]


@pytest.fixture
def signed_in(api: ApiServer, dsn: str) -> Iterator[httpx.Client]:
    with login_client(api.url, dsn, "ann@example.com") as client:
        yield client


@pytest.mark.parametrize(
    "path",
    ["/?host=%00", "/journal/tail?filter=%00", "/charts/series?q=%00", "/journal?filter=%00"],
)
def test_operator_pages_refuse_nul_with_a_4xx(path: str, signed_in: httpx.Client) -> None:
    r = signed_in.get(path)
    assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:200])


def test_dashboard_bookmark_redirects(api: ApiServer) -> None:
    r = httpx.get(f"{api.url}/dashboard", follow_redirects=False)
    assert r.status_code in (301, 308)
    assert r.headers["location"] == "/"
