"""The Telegram client keeps its connection alive between requests and still ends each
request at its total deadline, wherever it is: name lookup, headers, body, through a proxy.

The fake Bot API (tests/support/fake_telegram.py) speaks HTTP/1.0 and closes every
connection; the server here speaks HTTP/1.1 with keep-alive, and can drip its headers.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from notifier.channels import Delivered, Retry
from notifier.channels.telegram import TelegramClient, environment_proxy

OK = json.dumps({"ok": True, "result": {"message_id": 1}}).encode()


class KeepAliveServer(socketserver.ThreadingTCPServer):
    """Answers every request on a connection until the client closes it; with `drip`, it
    sends the status line and then one byte of a header every `drip` seconds, forever."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections = 0
        self.targets: list[str] = []
        self.drip: float | None = None
        self.closed = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(socketserver.StreamRequestHandler):
    server: KeepAliveServer

    def handle(self) -> None:
        self.server.connections += 1
        while True:
            request_line = self.rfile.readline()
            if not request_line:
                return  # the client closed the connection
            self.server.targets.append(request_line.split()[1].decode())
            length = 0
            while (line := self.rfile.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            self.rfile.read(length)
            try:
                if self.server.drip:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    while not self.server.closed.wait(self.server.drip):
                        self.wfile.write(b"a")
                    return
                self.wfile.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(OK), OK)
                )
            except OSError:
                return  # the client hung up (its deadline)


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    srv = KeepAliveServer()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv
    finally:
        srv.closed.set()
        srv.shutdown()
        srv.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_requests_share_one_kept_alive_connection(server: KeepAliveServer) -> None:
    client = TelegramClient(server.url, "123:TEST", 2)
    try:
        assert [client.send("42", f"m{i}") for i in range(3)] == [Delivered()] * 3
    finally:
        client.close()
    assert server.targets == ["/bot123:TEST/sendMessage"] * 3
    assert server.connections == 1


def test_dripping_headers_end_at_the_deadline_and_the_next_request_connects_anew(
    server: KeepAliveServer,
) -> None:
    client = TelegramClient(server.url, "123:TEST", 1)
    try:
        assert client.send("42", "first") == Delivered()
        server.drip = 0.3  # a header byte every 0.3 s: no read ever waits long
        started = time.monotonic()
        outcome = client.send("42", "slow")
        took = time.monotonic() - started
        assert outcome == Retry("timeout: no complete reply within 1 s")
        assert 1.0 <= took < 1.3
        server.drip = None
        assert client.send("42", "after") == Delivered()
    finally:
        client.close()
    assert server.connections == 2  # the cut connection was dropped, not reused


def test_a_slow_name_lookup_ends_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(3)
        raise socket.gaierror("too late")

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    client = TelegramClient("http://api.telegram.test", "123:TEST", 1)
    started = time.monotonic()
    try:
        outcome = client.send("42", "lookup")
    finally:
        client.close()
    assert outcome == Retry("timeout: no complete reply within 1 s")
    assert 1.0 <= time.monotonic() - started < 1.3


def test_a_failed_name_lookup_is_a_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", failing)
    client = TelegramClient("http://api.telegram.test", "123:TEST", 1)
    try:
        assert client.send("42", "lookup") == Retry("connection error: ConnectError")
    finally:
        client.close()


def test_every_resolved_address_is_tried(
    server: KeepAliveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: connecting to it is refused
    closed_port = refused.getsockname()[1]
    real = socket.getaddrinfo

    def two(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if port == closed_port or args:  # socket.create_connection's own lookup of an address
            return real(host, port, *args, **kwargs)
        first = real(host, closed_port, **kwargs)  # the refusing address, then the server
        return [*first, *real(host, port, **kwargs)]

    monkeypatch.setattr(socket, "getaddrinfo", two)
    client = TelegramClient(server.url, "123:TEST", 2)
    try:
        assert client.send("42", "second address") == Delivered()
    finally:
        client.close()
        refused.close()
    assert server.connections == 1


def test_the_environment_proxy_is_used_and_the_deadline_holds_through_it(
    server: KeepAliveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", server.url)
    client = TelegramClient("http://api.telegram.test", "123:TEST", 1)
    try:
        assert client.send("42", "via proxy") == Delivered()
        server.drip = 0.3
        started = time.monotonic()
        assert client.send("42", "slow") == Retry("timeout: no complete reply within 1 s")
        assert 1.0 <= time.monotonic() - started < 1.3
    finally:
        client.close()
    assert server.targets[0] == "http://api.telegram.test/bot123:TEST/sendMessage"


def test_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    base = "https://api.telegram.org"
    assert environment_proxy(base) is None
    monkeypatch.setenv("ALL_PROXY", "http://all.example:1")
    assert environment_proxy(base) == "http://all.example:1"
    monkeypatch.setenv("HTTPS_PROXY", "proxy.example:3128")
    assert environment_proxy(base) == "http://proxy.example:3128"
    assert environment_proxy("http://127.0.0.1:8081") == "http://all.example:1"
    monkeypatch.setenv("NO_PROXY", "telegram.org")
    assert environment_proxy(base) is None
