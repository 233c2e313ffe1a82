"""Ingest refuses denied sources: every sender route answers 403 to an address on the deny
list (sql/77_blocklist.sql), with the reason in the one line of its body.

Which routes: every route except the operator's own - pages behind the operator session,
the sign-in flow, static files and /health - so an operator whose address ends up on the
list can still sign in and remove it. That is every ingest format, the /v1 API (the export
included), pings and push URLs, and the public status pages and badges.

Which address: the connection's (ASGI `client`). uvicorn replaces it with the address in
X-Forwarded-For only when the connection comes from a trusted proxy (its
FORWARDED_ALLOW_IPS, default 127.0.0.1 and ::1), so a reverse proxy on the same machine
works and nobody else can choose the address checked.

Cost: the entries in force are cached in the process and read again every CACHE_SECONDS
(one query, in the background, started by the first request after that); a lookup is one
set probe per distinct prefix length on the list. A new block or a removal is enforced
within CACHE_SECONDS plus that query's time; an expiry is exact (each entry's expires_at is
checked on every lookup). If the database cannot be read within LOAD_TIMEOUT the last list
stays in force (none, right after a start while the database is down: ingest then fails on
its own with 503).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from litestar.enums import ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.types import ASGIApp, Receive, Scope, Send

from api.auth.sessions import operator_guard
from api.block import QUERIES

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0
"""How stale the in-process deny list may be (a new block applies within this)."""
LOAD_TIMEOUT = 1.0
"""Seconds a (re)load waits for a database connection before giving up until the next one."""
OPERATOR_PATHS = ("/login", "/logout", "/auth/", "/static/", "/health")
"""Paths of the operator's own way in, never refused (with the operator-session pages)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Block:
    """One entry in force: the network, why, and until when (None: until removed)."""

    network: IPNetwork
    reason: str | None
    expires_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now

    def message(self, address: str) -> str:
        until = (
            f"until {self.expires_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
            if self.expires_at
            else "until removed"
        )
        why = f": {self.reason}" if self.reason else ""
        return f"blocked: {address} is on this server's deny list ({self.network}{why}; {until})"


@dataclass
class DenyList:
    """The entries in force, indexed for lookups: per (IP version, prefix length), the set
    of network numbers (the address shifted right by its host bits)."""

    index: dict[tuple[int, int], dict[int, Block]] = field(default_factory=dict)

    @classmethod
    def of(cls, blocks: list[Block]) -> DenyList:
        deny = cls()
        for block in blocks:
            net = block.network
            key = (net.version, net.prefixlen)
            shifted = int(net.network_address) >> (net.max_prefixlen - net.prefixlen)
            deny.index.setdefault(key, {})[shifted] = block
        return deny

    def __len__(self) -> int:
        return sum(len(entries) for entries in self.index.values())

    def find(self, address: IPAddress, now: datetime) -> Block | None:
        """The entry in force that holds the address (the narrowest), or None."""
        number = int(address)
        found = None
        for (version, prefixlen), entries in self.index.items():
            if version != address.version:
                continue
            block = entries.get(number >> (address.max_prefixlen - prefixlen))
            if (
                block is not None
                and block.active(now)
                and (found is None or block.network.prefixlen > found.network.prefixlen)
            ):
                found = block
        return found


def client_address(host: str | None) -> IPAddress | None:
    """The address of an ASGI client host (IPv4-mapped IPv6 as IPv4); None when it is not
    an address (a Unix socket, a test client's name)."""
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ActiveBlocks:
    """The process's cached deny list. The first request loads it; after CACHE_SECONDS the
    next request starts a reload in the background and is answered from the list it has
    (no request waits for a reload)."""

    def __init__(self, cache_seconds: float = CACHE_SECONDS) -> None:
        self.cache_seconds = cache_seconds
        self.deny = DenyList()
        self.loaded_at: float | None = None
        self._lock = asyncio.Lock()
        self._reload: asyncio.Task[None] | None = None

    async def current(self, pool: Any) -> DenyList:
        if self.loaded_at is None:
            async with self._lock:
                if self.loaded_at is None:
                    await self._load(pool)
        elif time.monotonic() - self.loaded_at >= self.cache_seconds and self._reload is None:
            self._reload = asyncio.create_task(self._reload_in_background(pool))
        return self.deny

    async def _reload_in_background(self, pool: Any) -> None:
        try:
            await self._load(pool)
        except Exception:  # the pool closing at shutdown; the next request tries again
            log.debug("deny list reload abandoned", exc_info=True)
        finally:
            self._reload = None

    async def _load(self, pool: Any) -> None:
        try:
            # Bounded: while the database does not answer, requests go on (with the last list,
            # or none after a start) rather than wait for the pool's own timeout.
            async with pool.connection(timeout=LOAD_TIMEOUT) as conn:
                rows = await (await conn.execute(QUERIES["active_blocks"])).fetchall()
        except psycopg.Error as exc:
            # The last list stays in force; a request after CACHE_SECONDS tries again.
            log.warning("deny list not refreshed (%s): %s", exc.sqlstate, str(exc).strip()[:200])
        else:
            self.deny = DenyList.of(
                [Block(ipaddress.ip_network(str(r[0])), r[1], r[2]) for r in rows]
            )
        self.loaded_at = time.monotonic()


def is_sender_route(handler: Any, path: str) -> bool:
    """Whether the deny list applies to a route: not to operator pages (operator_guard) nor
    to the operator's way in (OPERATOR_PATHS)."""
    if operator_guard in (handler.guards or ()):
        return False
    return not path.startswith(OPERATOR_PATHS)


class BlockGuard:
    """Litestar middleware (it runs after routing, so it sees the route handler): 403 with
    the reason for a denied client on a sender route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._applies: dict[int, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and self._applies_to(scope):
            client = scope.get("client")
            address = client_address(client[0] if client else None)
            if address is not None:
                litestar_app = scope["litestar_app"]
                blocks = litestar_app.state.get("active_blocks")
                if blocks is None:
                    blocks = litestar_app.state["active_blocks"] = ActiveBlocks()
                deny = await blocks.current(litestar_app.state.pool)
                if len(deny):
                    block = deny.find(address, datetime.now(UTC))
                    if block is not None:
                        raise PermissionDeniedException(detail=block.message(str(address)))
        await self.app(scope, receive, send)

    def _applies_to(self, scope: Scope) -> bool:
        handler = scope.get("route_handler")
        if handler is None:
            return False
        key = id(handler)
        applies = self._applies.get(key)
        if applies is None:
            applies = self._applies[key] = is_sender_route(handler, scope["path"])
        return applies
