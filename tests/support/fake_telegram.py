"""A local HTTP server that speaks the Telegram Bot API's sendMessage.

It checks what the real API checks that matters to Vigil (token, chat, HTML entities,
length) and answers in the real format, including 429 retry_after, 403, "chat not
found" and group-to-supergroup migration. Tests queue scripted answers and read the
requests it received. `down()` closes the port (connection refused), `up()` reopens it.

Faults: `rate_limit(n)` answers the next request 429 retry_after=n and every request in
the n seconds after it 429 too, as Telegram's flood control does (`windows`,
`requests_between`); `drip(every, match)` answers requests whose text contains `match`
with headers, then one byte of body every `every` seconds, forever (until the client
hangs up: `drips_open`, `drips_ended`); `flaky(rate)` answers that share of requests 502.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DRIP = 0
"""Status handle() gives for a request whose reply is dripped."""
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
        self.windows: list[tuple[float, float]] = []
        self.drip_every: float | None = None
        self.drip_match = ""
        self.drips_open = 0
        self.drips_ended: list[float] = []
        self.failure_rate = 0.0
        self._random = random.Random(7)
        self._limit_next: int | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._message_id = 0
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, chat: str = "42") -> dict[str, str]:
        """The settings that point Vigil at this fake: its bot token, a chat, its URL (for
        `vigil_env(dsn, **telegram.env(), ...)` or `make_settings(dsn, **telegram.env())`)."""
        return {
            "TELEGRAM_TOKEN": self.token,
            "TELEGRAM_CHAT_ID": chat,
            "TELEGRAM_API_BASE": self.base_url,
        }

    def up(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                status, payload = fake.handle(self.path, raw)
                try:
                    if status == DRIP:
                        fake._drip(self)
                        return
                    data = json.dumps(payload).encode()
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (its deadline) and hung up

        self._closed.clear()
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def down(self) -> None:
        self._closed.set()  # ends the drips
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def respond(self, *answers: tuple[int, dict[str, Any]]) -> None:
        """Queues answers for the next requests (after the token check)."""
        with self._lock:
            self.script.extend(answers)

    def rate_limit(self, seconds: int) -> None:
        """The next request opens a flood-control window of `seconds`: it and every request
        within the window get 429 with the retry_after left."""
        with self._lock:
            self._limit_next = seconds

    def requests_between(self, start: float, end: float) -> list[Received]:
        """The requests that arrived after `start` and before `end` (time.monotonic())."""
        with self._lock:
            return [r for r in self.received if start < r.at < end]

    def drip(self, every: float, match: str = "") -> None:
        """Requests whose text contains `match` get headers, then a body byte every `every`
        seconds, never ending; `drip(0)` turns it off."""
        with self._lock:
            self.drip_every = every or None
            self.drip_match = match

    def flaky(self, rate: float, seed: int = 7) -> None:
        """That share of requests (at random, reproducibly) is answered 502 Bad Gateway."""
        with self._lock:
            self.failure_rate = rate
            self._random = random.Random(seed)

    def _drip(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(1 << 20))
        handler.end_headers()
        with self._lock:
            self.drips_open += 1
            every = self.drip_every or 1.0
        try:
            while not self._closed.wait(every):
                handler.wfile.write(b" ")  # JSON allows leading whitespace
        except OSError:
            pass  # the client hung up
        finally:
            with self._lock:
                self.drips_open -= 1
                self.drips_ended.append(time.monotonic())

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
            if self._limit_next is not None:
                self.windows.append((request.at, request.at + self._limit_next))
                wait, self._limit_next = self._limit_next, None
                return self.error(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
            for start, end in self.windows:
                if start <= request.at < end:
                    wait = math.ceil(end - request.at)
                    return self.error(
                        429, f"Too Many Requests: retry after {wait}", retry_after=wait
                    )
            if self.script:
                return self.script.pop(0)
            if self.drip_every and self.drip_match in str(body.get("text", "")):
                return DRIP, {}
            if self.failure_rate and self._random.random() < self.failure_rate:
                return self.error(502, "Bad Gateway")
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
