"""Slow and hostile clients against the API as `python -m api` serves it (api.core.server):
half a request head, silence, a dripping body are cut off at their deadlines; large
bodies take turns, so memory stays bounded."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import cast

import httpx
import pytest
from litestar.types import Scope

from api.app import create_app
from api.core.bodies import LargeBodies
from api.core.server import TimedH11Protocol, uvicorn_config
from tests.conftest import ApiServer, free_port, make_settings


class Served(ApiServer):
    """The API as `python -m api` serves it (api.core.server.uvicorn_config)."""

    def __init__(self, dsn: str) -> None:
        settings = make_settings(dsn, VIGIL_PORT=str(free_port()))
        self.app = create_app(settings)
        super().__init__(settings, uvicorn_config(self.app, settings, "warning"))


@pytest.fixture
def served(dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setattr(TimedH11Protocol, "head_seconds", 1.0)
    monkeypatch.setattr(TimedH11Protocol, "body_idle_seconds", 1.0)
    with Served(dsn) as served:
        yield served


def connect(served: Served, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.settings.port), timeout=10)
    if first:
        sock.sendall(first)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the socket (EOF) within `seconds`."""
    sock.settimeout(seconds)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.close()


def test_incomplete_heads_and_silence_are_cut_off(served: Served) -> None:
    half = b"POST /metric HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    sockets = [connect(served, half) for _ in range(200)] + [connect(served) for _ in range(50)]
    started = time.monotonic()
    assert all(closed_within(s, 5) for s in sockets)
    assert time.monotonic() - started < 5
    assert httpx.get(f"{served.url}/ping").json() == {"status": "up"}  # still serving


def test_a_dripping_body_is_cut_off(served: Served) -> None:
    sock = connect(
        served, b"POST /v1/metrics/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n["
    )
    time.sleep(0.5)
    sock.sendall(b" ")  # a read within the idle limit restarts its clock
    assert closed_within(sock, 4)


def test_a_head_sent_in_pieces_within_the_deadline_is_served(served: Served) -> None:
    sock = connect(served, b"GET /ping HTTP/1.1\r\n")
    time.sleep(0.4)
    sock.sendall(b"Host: x\r\n\r\n")
    sock.settimeout(5)
    reply = sock.recv(4096)
    sock.close()
    assert reply.startswith(b"HTTP/1.1 200")


def test_large_bodies_take_turns(served: Served, token: str) -> None:
    now = int(time.time())
    bodies = [
        "\n".join(
            json.dumps(
                {"name": f"big{k}", "value": i, "timestamp": now - i, "labels": {"n": str(i % 7)}}
            )
            for i in range(20_000)
        ).encode()
        for k in range(6)
    ]  # six senders' points (the same points six times would be one sender retrying)
    assert len(bodies[0]) > 1024 * 1024

    async def send() -> list[int]:
        async with httpx.AsyncClient(
            base_url=served.url, headers={"authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            replies = await asyncio.gather(
                *(client.post("/v1/metrics/batch", content=body) for body in bodies)
            )
            return [r.status_code for r in replies]

    assert asyncio.run(send()) == [200] * 6
    assert isinstance(served.app, LargeBodies)
    assert served.app.most_in_flight == 2
    assert served.app.in_flight == 0


def test_a_compressed_body_counts_by_what_it_may_inflate_to() -> None:
    def scope(length: int, **headers: str) -> Scope:
        pairs = [(b"content-length", str(length).encode())]
        pairs += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
        http = {"type": "http", "method": "POST", "path": "/loki/api/v1/push", "headers": pairs}
        return cast(Scope, http)

    assert not LargeBodies._large(scope(20_000))
    assert LargeBodies._large(scope(20_000, content_encoding="gzip"))
    assert LargeBodies._large(scope(20_000, content_type="application/x-protobuf"))
    assert not LargeBodies._large(scope(10_000, content_encoding="snappy"))  # a remote_write
    assert LargeBodies._large(scope(300_000))
