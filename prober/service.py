"""The prober (`python -m prober`): GET every due service, record the outcome in SQL.

- claims due services with vigil.claim_checks() (FOR UPDATE SKIP LOCKED, leased until
  the check's timeout has passed), so several probers never check the same service;
- runs the checks concurrently (at most VIGIL_PROBER_CONCURRENCY at once) with httpx,
  through the SSRF guard (prober/guard.py), following redirects itself and choosing the
  guard's policy again at every hop: --allow-internal covers only the service's own host;
- hands each outcome to vigil.record_check(), which decides ok/down/up, opens and closes
  events and writes the outbox message the notifier delivers.
URLs are never logged (they may carry credentials); services are named by their name.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from prober import QUERIES
from prober.guard import GuardedBackend, GuardedTransport, Refused
from vigil.pool import Pool
from vigil.reconnect import run_async
from vigil.settings import Settings

log = logging.getLogger("prober.service")

MAX_REDIRECTS = 10
MAX_BODY = 1024 * 1024
MAX_ERROR = 300
USER_AGENT = "vigil-prober/0.1"
REDIRECTS = (301, 302, 303, 307, 308)
OFF_HOST_HINT = "redirected to another host: --allow-internal covers only the service's own host"


@dataclass(frozen=True)
class Due:
    id: int
    url: str
    timeout: float
    allow_internal: bool
    body_contains: str | None
    name: str


@dataclass(frozen=True)
class Outcome:
    at: datetime
    status_code: int | None
    response_ms: float | None
    error: str | None
    body_matched: bool | None


def host_key(url: httpx.URL) -> str:
    """The host of `url` as compared for "the same host": the name as httpx normalized it
    (lower case, IDNA), an IP literal as its canonical address ([0:0::1] is ::1)."""
    host = url.raw_host.decode("ascii").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def same_host(a: httpx.URL, b: httpx.URL) -> bool:
    """True when `a` and `b` name the same host (any scheme or port). A different name for
    the same address (localhost vs 127.0.0.1) or another loopback address (127.0.0.2) is
    another host."""
    return host_key(a) == host_key(b)


class Clients:
    """One httpx client per SSRF policy; connections are never shared between them.

    - `public`: every address a connection goes to must pass guard.refusal();
    - `internal`: any address but the metadata ones. Only for a service with
      allow_internal, and only for requests to the host of its configured URL: a
      redirect to any other host goes through `public` (see `for_hop`).
    A pooled connection is reused only by requests to the same origin through the same
    client, so it was opened under the policy that applies to the request reusing it.
    """

    def __init__(
        self,
        max_connections: int = 200,
        public_backend: GuardedBackend | None = None,
        internal_backend: GuardedBackend | None = None,
    ) -> None:
        common: dict[str, Any] = {
            "follow_redirects": False,
            "trust_env": False,
            "headers": {"User-Agent": USER_AGENT},
        }
        self.public_transport = GuardedTransport(False, max_connections, public_backend)
        self.internal_transport = GuardedTransport(True, max_connections, internal_backend)
        self.public = httpx.AsyncClient(transport=self.public_transport, **common)
        self.internal = httpx.AsyncClient(transport=self.internal_transport, **common)

    def for_hop(self, due: Due, url: httpx.URL) -> httpx.AsyncClient:
        """The client for one request of `due`'s check: `internal` only when the service
        has allow_internal and `url` is on its configured host."""
        if due.allow_internal and same_host(url, httpx.URL(due.url)):
            return self.internal
        return self.public

    async def aclose(self) -> None:
        await self.public.aclose()
        await self.internal.aclose()


def make_clients(concurrency: int) -> Clients:
    """The prober's clients as `Prober.run` builds them (the production SSRF policies; the
    tests call this very function)."""
    return Clients(max_connections=max(concurrency, 10))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def _transport_error(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return _short(f"connection failed: {detail}")
    return _short(f"{type(exc).__name__}: {detail}")


async def _body_contains(response: httpx.Response, needle: str) -> bool:
    wanted = needle.encode()
    tail = b""  # the end of what came before, so a match across two chunks is found
    read = 0
    async for chunk in response.aiter_bytes():
        if wanted in tail + chunk:
            return True
        read += len(chunk)
        if read > MAX_BODY:
            return False
        tail = (tail + chunk)[-(len(wanted) - 1) :] if len(wanted) > 1 else b""
    return False


async def probe(clients: Clients, due: Due) -> Outcome:
    """One check: GET, following up to MAX_REDIRECTS redirects, within the service's
    timeout as a whole. Every hop picks its client (SSRF policy) anew, and the guard checks
    every connection it opens: allow_internal applies only to the configured host."""
    at = datetime.now(UTC)
    start = time.perf_counter()

    def failed(error: str) -> Outcome:
        return Outcome(at, None, None, error, None)

    try:
        url = httpx.URL(due.url)
        async with asyncio.timeout(due.timeout):
            for _hop in range(MAX_REDIRECTS + 1):
                if url.scheme not in ("http", "https"):
                    return failed(f"refused: redirect to a {url.scheme or 'relative'} URL")
                client = clients.for_hop(due, url)
                async with client.stream("GET", url, timeout=due.timeout) as response:
                    location = response.headers.get("location")
                    if response.status_code in REDIRECTS and location:
                        url = response.url.join(location)
                        continue
                    elapsed = (time.perf_counter() - start) * 1000
                    matched = None
                    if due.body_contains is not None:
                        matched = await _body_contains(response, due.body_contains)
                    return Outcome(at, response.status_code, elapsed, None, matched)
            return failed(f"more than {MAX_REDIRECTS} redirects")
    except TimeoutError:
        return failed(f"timeout after {due.timeout:g}s")
    except Refused as exc:
        if exc.internal and due.allow_internal:
            # Refused although the service has allow_internal: a hop to another host.
            return failed(f"refused: {exc.what} ({OFF_HOST_HINT})")
        return failed(str(exc))
    except httpx.InvalidURL as exc:
        return failed(_short(f"invalid URL: {exc}"))
    except httpx.HTTPError as exc:
        return failed(_transport_error(exc))
    except (OSError, UnicodeError, ValueError) as exc:
        return failed(_short(f"{type(exc).__name__}: {exc}"))
    except Exception as exc:  # a check must always be recorded, never left leased
        log.error("service %r: unexpected %s while checking", due.name, type(exc).__name__)
        return failed(_short(f"internal error: {type(exc).__name__}"))


async def record(pool: AsyncConnectionPool, due: Due, outcome: Outcome) -> str | None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            QUERIES["record_check"],
            (
                due.id,
                outcome.at,
                outcome.status_code,
                outcome.response_ms,
                outcome.error,
                outcome.body_matched,
            ),
        )
        row = await cur.fetchone()
    return None if row is None or row[0] is None else str(row[0])


async def claim(pool: AsyncConnectionPool, limit: int, now: datetime | None = None) -> list[Due]:
    async with pool.connection() as conn:
        cur = await conn.execute(QUERIES["claim_checks"], (limit, now))
        rows = await cur.fetchall()
    return [Due(int(r[0]), str(r[1]), float(r[2]), bool(r[3]), r[4], str(r[5])) for r in rows]


_last_states: dict[int, str] = {}
"""The state of each service after this process's previous check of it: a change, and a
service first seen not up, are logged at INFO; a check that changes nothing at DEBUG."""


async def check(pool: AsyncConnectionPool, clients: Clients, due: Due) -> str | None:
    outcome = await probe(clients, due)
    state = await record(pool, due, outcome)
    problem = outcome.error or (
        f"HTTP {outcome.status_code}" if (outcome.status_code or 0) >= 400 else None
    )
    if state is None:  # removed while it was being checked
        _last_states.pop(due.id, None)
        return state
    previous = _last_states.get(due.id)
    _last_states[due.id] = state
    shown = problem or f"HTTP {outcome.status_code}"
    if previous is None and state != "up":
        log.info("service %r: %s (%s)", due.name, state, shown)
    elif previous is not None and state != previous:
        log.info("service %r: %s -> %s (%s)", due.name, previous, state, shown)
    elif problem or state != "up":
        log.debug("service %r: %s (state %s)", due.name, shown, state)
    return state


async def check_due(
    pool: AsyncConnectionPool, clients: Clients, limit: int = 1000, now: datetime | None = None
) -> int:
    """Claims the due services (as of `now`, default the database's now()) and checks them
    all concurrently; returns how many were checked. Used by tests and the benchmark."""
    batch = await claim(pool, limit, now)
    await asyncio.gather(*(check(pool, clients, due) for due in batch))
    return len(batch)


class Prober:
    def __init__(self, settings: Settings, on_tick: Callable[[int], Awaitable[None]] | None = None):
        self.settings = settings
        self.stop_event = asyncio.Event()
        self.on_tick = on_tick
        self.tasks: set[asyncio.Task[str | None]] = set()

    async def run(self) -> None:
        clients = make_clients(self.settings.prober_concurrency)
        try:
            await run_async(
                "prober", log, self.stop_event, lambda connected: self._serve(clients, connected)
            )
        finally:
            await clients.aclose()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_event.wait(), timeout=seconds)

    async def _serve(self, clients: Clients, connected: Callable[[], None]) -> None:
        url = self.settings.require_database_url()
        size = min(max(4, self.settings.prober_concurrency // 10), 20)
        async with Pool(url, min_size=1, max_size=size) as pool:
            await pool.wait()
            connected()
            log.info("prober connected; up to %d checks at once", self.settings.prober_concurrency)
            try:
                while not self.stop_event.is_set():
                    free = self.settings.prober_concurrency - len(self.tasks)
                    claimed = await claim(pool, free) if free > 0 else []
                    for due in claimed:
                        task = asyncio.create_task(check(pool, clients, due))
                        self.tasks.add(task)
                        task.add_done_callback(self._done)
                    if self.on_tick is not None:
                        await self.on_tick(len(claimed))
                    if free > 0 and len(claimed) == free:
                        await asyncio.sleep(0)  # more may be due: claim again at once
                    else:
                        await self._sleep(self.settings.prober_tick_seconds)
            finally:
                # In-flight checks finish (bounded by their timeouts); unclaimed work stays
                # due for the next prober.
                if self.tasks:
                    await asyncio.wait(set(self.tasks), timeout=20)

    def _done(self, task: asyncio.Task[str | None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("a check could not be recorded (due again after its lease): %s", exc)

    def stop(self) -> None:
        self.stop_event.set()


def main(settings: Settings) -> None:
    prober = Prober(settings)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, prober.stop)
        await prober.run()

    asyncio.run(serve())
