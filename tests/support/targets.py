"""A local HTTP target for prober tests: fixed answers per path, counted connections.

Paths: /ok (200 "hello vigil"), /fail (500), /slow (answers after `slow_seconds`),
/switch (200 or 500 as `switch_ok` says), /redirect?to=URL (302 to URL), /teapot (418).
Listens on loopback only.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class Target(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), _Handler)
        self.connections = 0
        self.requests: list[str] = []
        self.switch_ok = True
        self.slow_seconds = 3.0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def get_request(self) -> tuple[socket.socket, Any]:
        request = super().get_request()
        with self.lock:
            self.connections += 1
        return request

    def __enter__(self) -> Target:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: Target
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.server.requests.append(parts.path)
        if parts.path == "/ok":
            self._send(200, b"hello vigil")
        elif parts.path == "/fail":
            self._send(500, b"broken")
        elif parts.path == "/teapot":
            self._send(418, b"teapot")
        elif parts.path == "/slow":
            time.sleep(self.server.slow_seconds)
            self._send(200, b"late")
        elif parts.path == "/switch":
            self._send(200 if self.server.switch_ok else 500, b"switch")
        elif parts.path == "/redirect":
            to = parse_qs(parts.query).get("to", ["/ok"])[0]
            self._send(302, headers={"Location": to})
        else:
            self._send(404, b"no such path")
