"""How the API is served: uvicorn with read deadlines on slow clients.

uvicorn's HTTP/1.1 protocol times out only idle keep-alive connections: a client that
connects and sends nothing, or half a request head, or a body one byte a minute, holds
its socket (and a file descriptor, and memory) for as long as it likes. `TimedH11Protocol`
adds two deadlines, so a thousand such clients cannot exhaust the server:
- the request head (request line and headers) must arrive within HEAD_SECONDS of the
  connection, or of the previous response on a kept-alive connection;
- while a body is being received, no gap between two reads may exceed BODY_IDLE_SECONDS,
  except on the streamed journal upload (`systemd-journal-upload --follow` keeps one
  request open and sends entries as they are logged), where the gap may be
  STREAM_IDLE_SECONDS; that route checks the sender's token before reading the body.
A client that misses one is disconnected (a request that had started reading its body
sees the disconnect and is answered nothing; the sender retries).
"""

from __future__ import annotations

import asyncio

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from vigil.settings import Settings

HEAD_SECONDS = 10.0
BODY_IDLE_SECONDS = 30.0
STREAM_IDLE_SECONDS = 600.0
STREAMED_PATHS = ("/upload",)
"""Path endings of the long-lived streamed requests (the journal upload): their body may be
idle for STREAM_IDLE_SECONDS, and `api.core.bodies.LargeBodies` never queues them."""


class TimedH11Protocol(H11Protocol):
    head_seconds = HEAD_SECONDS
    body_idle_seconds = BODY_IDLE_SECONDS
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.head_seconds)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            path = self.scope["path"] if self.scope else ""
            streamed = path.endswith(STREAMED_PATHS)
            # every read restarts the idle clock
            self._arm(STREAM_IDLE_SECONDS if streamed else self.body_idle_seconds)
        elif state is not h11.IDLE:
            self._disarm()  # the whole request is in: the app's time, not the client's
        # IDLE: part of a head; its deadline keeps running from when it was armed

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm(self.head_seconds)  # the next request's head, on a kept-alive socket

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self.transport.close()


def uvicorn_config(app: object, settings: Settings, log_level: str = "info") -> uvicorn.Config:
    """The server configuration of `python -m api` (and of the tests' API servers)."""
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.host,
        port=settings.port,
        http=TimedH11Protocol,
        access_log=False,
        log_level=log_level,
        server_header=False,
        lifespan="on",
    )
