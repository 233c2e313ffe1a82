"""A local HTTP server that speaks the Telegram Bot API's sendMessage.

It checks what the real API checks that matters to Vigil (token, chat, HTML entities,
length) and answers in the real format, including 429 retry_after, 403, "chat not
found" and group-to-supergroup migration. Tests queue scripted answers and read the
requests it received. `down()` closes the port (connection refused), `up()` reopens it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ALLOWED_TAG = re.compile(r"</?(b|strong|i|em|u|ins|s|strike|del|a|code|pre|tg-spoiler)(\s[^>]*)?>")


@dataclass
class Received:
    token: str
    method: str
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class FakeTelegram:
    def __init__(self, token: str = "123:TEST", chats: tuple[str, ...] = ("42",)) -> None:
        self.token = token
        self.chats = set(chats)
        self.migrations: dict[str, str] = {}
        self.script: list[tuple[int, dict[str, Any]]] = []
        self.delay = 0.0
        self.received: list[Received] = []
        self.delivered: list[Received] = []
        self._lock = threading.Lock()
        self._message_id = 0
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                status, payload = fake.handle(self.path, raw)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def respond(self, *answers: tuple[int, dict[str, Any]]) -> None:
        """Queues answers for the next requests (after the token check)."""
        with self._lock:
            self.script.extend(answers)

    def texts(self) -> list[str]:
        with self._lock:
            return [r.body.get("text", "") for r in self.delivered]

    def wait_for(self, count: int, timeout: float = 15.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.delivered) >= count:
                return self.texts()
            time.sleep(0.02)
        raise AssertionError(f"expected {count} delivered messages, got {self.texts()}")

    @staticmethod
    def error(code: int, description: str, **parameters: Any) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return code, body

    def handle(self, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", path)
        if not match:
            return self.error(404, "Not Found")
        token, method = match.groups()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self.error(400, "Bad Request: invalid JSON")
        request = Received(token, method, body)
        with self._lock:
            self.received.append(request)
        if self.delay:
            time.sleep(self.delay)  # an answer that comes late, after the request arrived
        with self._lock:
            if token != self.token:
                return self.error(401, "Unauthorized")
            if method != "sendMessage":
                return self.error(404, "Not Found: method not found")
            if self.script:
                return self.script.pop(0)
            return self._send_message(request)

    def _send_message(self, request: Received) -> tuple[int, dict[str, Any]]:
        chat = str(request.body.get("chat_id", ""))
        text = request.body.get("text")
        if chat in self.migrations:
            return self.error(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=int(self.migrations[chat]),
            )
        if chat not in self.chats:
            return self.error(400, "Bad Request: chat not found")
        if not isinstance(text, str) or not text:
            return self.error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return self.error(400, "Bad Request: message is too long")
        if request.body.get("parse_mode") == "HTML":
            stripped = ALLOWED_TAG.sub("", text)
            if "<" in stripped or re.search(r"&(?!(lt|gt|amp|quot|#\d+);)", stripped):
                return self.error(400, "Bad Request: can't parse entities")
        self._message_id += 1
        self.delivered.append(request)
        return 200, {
            "ok": True,
            "result": {
                "message_id": self._message_id,
                "date": int(time.time()),
                "chat": {"id": int(chat), "type": "group"},
                "text": text,
            },
        }
