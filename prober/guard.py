"""SSRF guard for the prober: which addresses a check may connect to, enforced at connect time.

The guard sits in httpcore's network backend, so it sees every TCP connection httpx
opens — the first request and every redirect hop (the prober follows redirects itself,
and each hop to a new origin opens a new connection through here). The host name is
resolved here, every resolved address is checked, and the connection goes to a checked
address: a DNS answer cannot change between check and connect. TLS SNI and the Host
header still carry the original name (httpcore takes them from the URL, not from here).
A refused address raises `Refused` before any socket is opened.

Two policies, one per backend (the prober keeps one connection pool per policy):
- public (`allow_internal=False`): every resolved address must pass `refusal()` — no
  loopback, private, link-local, metadata or other non-global address;
- internal (`allow_internal=True`, used by the prober only for a service with
  --allow-internal and only for its own configured host, see prober/service.py): any
  address except the cloud metadata addresses (`METADATA`), which are never probed.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from collections.abc import Callable

import anyio
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata / credential endpoints: refused always, even with allow_internal (also when
# an IPv6 address carries them, see `metadata()`).
METADATA = {
    ipaddress.ip_address(ip): what
    for ip, what in (
        ("169.254.169.254", "the cloud metadata service"),  # AWS, GCP, Azure, OpenStack, ...
        ("fd00:ec2::254", "the cloud metadata service"),  # AWS (IPv6)
        ("fd20:ce::254", "the cloud metadata service"),  # GCP (IPv6)
        ("100.100.100.200", "the cloud metadata service"),  # Alibaba Cloud
        ("169.254.0.23", "the cloud metadata service"),  # Tencent Cloud
        ("192.0.0.192", "the cloud metadata service"),  # Oracle Cloud (legacy)
        ("169.254.170.2", "the container credentials service"),  # AWS ECS
        ("169.254.170.23", "the container credentials service"),  # AWS EKS Pod Identity
        ("fd00:ec2::23", "the container credentials service"),  # AWS EKS Pod Identity (IPv6)
        ("168.63.129.16", "the Azure host service (WireServer)"),
    )
}
ALLOW_HINT = "allow with --allow-internal"
NEVER_HINT = "never probed, not even with --allow-internal"
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class Refused(Exception):
    """A connection the SSRF policy does not allow; no socket was opened.

    `what` says what was refused ("127.0.0.1 is a loopback address"); `internal` is True
    when the address is internal (allow_internal would allow it on the service's own
    host), False when it is never probed (metadata) or the refusal is not about an
    address."""

    def __init__(self, what: str, hint: str | None = None, *, internal: bool = False) -> None:
        self.what = what
        self.internal = internal
        super().__init__(f"refused: {what}" + (f" ({hint})" if hint else ""))


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def metadata(ip: IPAddress) -> str | None:
    """What `ip` is when it is a cloud metadata address, itself or carried inside an IPv6
    address (mapped, 6to4, NAT64, IPv4-compatible); None otherwise."""
    inner = embedded_ipv4(ip)
    if inner is None and ip.version == 6 and ip in IPV4_COMPATIBLE:
        inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if inner is not None and inner in METADATA:
        return f"{METADATA[inner]} ({inner} inside {ip})"
    return METADATA.get(ip)


def refusal(ip: IPAddress) -> str | None:
    """What `ip` is when it may not be probed without allow_internal (e.g. "a loopback
    address"), or None when it may."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        why = refusal(inner)
        return f"{why} ({inner} inside {ip})" if why else None
    if ip in METADATA:
        return METADATA[ip]
    for test, kind in (
        (ip.is_unspecified, "an unspecified"),
        (ip.is_loopback, "a loopback"),
        (ip.is_link_local, "a link-local"),
        (ip.is_multicast, "a multicast"),
        (ip.version == 6 and ip in UNIQUE_LOCAL, "a unique-local"),
        (ip.is_private, "a private"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "a site-local"),
        (ip.is_reserved, "a reserved"),
        (not ip.is_global, "a non-global"),
    ):
        if test:
            return f"{kind} address"
    return None


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    seen: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in seen:
            seen.append(ip)
    return seen


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that resolves, checks and connects to checked addresses."""

    def __init__(
        self,
        allow_internal: bool,
        inner: httpcore.AsyncNetworkBackend | None = None,
        policy: Callable[[IPAddress], str | None] = refusal,
    ) -> None:
        self.allow_internal = allow_internal
        self.inner = inner or httpcore.AnyIOBackend()
        self.policy = policy
        self.refused = 0  # for tests and the benchmark

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if not 0 < port < 65536:
            raise httpcore.ConnectError(f"invalid port {port}")
        addresses = await resolve(host, port)
        # Every answer must pass: a name with one allowed and one refused address is
        # refused, so a rebinding DNS server gains nothing. Metadata first, whatever the
        # policy: those are never probed.
        for ip in addresses:
            if why := metadata(ip):
                raise self._refuse(host, ip, why, NEVER_HINT, internal=False)
        for ip in addresses if not self.allow_internal else ():
            if why := self.policy(ip):
                raise self._refuse(host, ip, why, ALLOW_HINT, internal=True)
        last: Exception | None = None
        for ip in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def _refuse(self, host: str, ip: IPAddress, why: str, hint: str, *, internal: bool) -> Refused:
        self.refused += 1
        what = host if _is_literal(host) else f"{host} resolves to {ip}, which"
        return Refused(f"{what} is {why}", hint, internal=internal)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("unix sockets are never probed")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx transport whose connections all go through a GuardedBackend (no proxies)."""

    def __init__(
        self,
        allow_internal: bool,
        max_connections: int = 200,
        backend: GuardedBackend | None = None,
    ) -> None:
        super().__init__(trust_env=False)
        self.backend = backend or GuardedBackend(allow_internal)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=self.backend,
        )
