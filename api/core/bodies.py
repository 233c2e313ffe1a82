"""Bounded memory for large request bodies.

A 4 MiB batch becomes many times its size in Python objects while it is parsed, and
glibc keeps freed memory mapped: after a burst of large batches the API's resident size
stayed at ~500 MB. `LargeBodies` (ASGI middleware) lets at most LARGE_AT_ONCE requests
with a large (or unknown-length, i.e. chunked) body run at a time; the others wait
their turn before their body is read, so peak memory is bounded whatever the number of
senders; a compressed body counts by what it may inflate to. When the last large request of
a burst ends, memory is given back to the operating system (malloc_trim).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from api.core.server import STREAMED_PATHS  # long-lived streams: never queued behind others

log = logging.getLogger("vigil.api")

LARGE_BODY = 256 * 1024  # bytes; smaller bodies are not counted
# A compressed body (gzip, deflate, snappy; snappy protobuf may come without a header) may
# inflate up to 16 times (the receivers' limit), so it counts as large from 1/16 of the size.
INFLATE = 16
LARGE_AT_ONCE = 2


def _malloc_trim() -> Callable[[], None]:
    """glibc's malloc_trim(0), or a no-op where there is none."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is None:
        return lambda: None

    def release() -> None:
        trim(0)

    return release


class LargeBodies:
    def __init__(self, app: ASGIApp, at_once: int = LARGE_AT_ONCE) -> None:
        self.app = app
        self.slots = asyncio.Semaphore(at_once)
        self.in_flight = 0
        self.most_in_flight = 0  # for tests and the benchmark
        self.trim = _malloc_trim()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not self._large(scope):
            await self.app(scope, receive, send)
            return
        async with self.slots:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await self.app(scope, receive, send)
            finally:
                self.in_flight -= 1
                if self.in_flight == 0:
                    self.trim()

    @staticmethod
    def _large(scope: Scope) -> bool:
        if scope.get("method") not in ("POST", "PUT") or scope["path"].endswith(STREAMED_PATHS):
            return False
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None:
            return b"transfer-encoding" in headers  # chunked: size unknown until read
        compressed = headers.get(b"content-encoding", b"identity") != b"identity" or (
            b"protobuf" in headers.get(b"content-type", b"")
        )
        try:
            return int(length) > (LARGE_BODY // INFLATE if compressed else LARGE_BODY)
        except ValueError:
            return False
