"""The SSRF guard: internal addresses are refused before any connection is made, also
after a redirect, unless the service has allow_internal — which covers only the service's
own host, never a host a redirect leads to — and metadata addresses are refused always.

`run_checks(dsn)` checks with the prober's production clients (`make_clients`, what
`Prober.run` uses); some tests inject a public backend whose policy takes a loopback
address for a public one. No traffic leaves loopback: the `network` fixture
(tests/prober/conftest.py) records every socket connect and refuses all but loopback, and
LoopbackOnly does the same one level higher."""

from __future__ import annotations

import ipaddress
import typing
from collections.abc import Iterator
from typing import Any

import httpcore
import pytest

from prober.guard import NEVER_HINT, GuardedBackend, IPAddress, refusal
from prober.service import OFF_HOST_HINT
from tests.prober.conftest import Network
from tests.support.targets import Target
from tests.support.uptime import Conn, add, last_check, run_checks


class LoopbackOnly(httpcore.AnyIOBackend):
    """Records every connection attempt; never connects outside loopback (test safety net)."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    async def connect_tcp(
        self, host: str, port: int, *args: Any, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        self.attempts.append(host)
        if not ipaddress.ip_address(host).is_loopback:
            raise httpcore.ConnectError(f"test safety net: no traffic to {host}")
        return await super().connect_tcp(host, port, *args, **kwargs)


@pytest.fixture
def target() -> Iterator[Target]:
    with Target() as t:
        yield t


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("127.0.0.1", "refused: 127.0.0.1 is a loopback address"),
        ("[::ffff:127.0.0.1]", "refused: ::ffff:127.0.0.1 is a loopback address (127.0.0.1 inside"),
        ("localhost", "refused: localhost resolves to "),
        ("[::1]", "refused: ::1 is a loopback address"),
        ("0.0.0.0", "refused: 0.0.0.0 is an unspecified address"),  # noqa: S104
    ],
)
def test_loopback_refused_without_connection(
    dsn: str, conn: Conn, target: Target, network: Network, host: str, why: str
) -> None:
    port = target.server_address[1]
    add(conn, "internal", f"http://{host}:{port}/ok", allow_internal=False)
    run_checks(dsn)  # the production clients
    ok, status, _, error = last_check(conn, "internal")
    assert (ok, status) == (False, None)
    assert str(error).startswith(why) and str(error).endswith("(allow with --allow-internal)")
    assert network.attempts == []
    assert target.connections == 0
    assert conn.execute("select state from vigil.services").fetchone() == ("down",)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "the cloud metadata service"),
        ("http://[fd00:ec2::254]/", "the cloud metadata service"),
        ("http://100.100.100.200/", "the cloud metadata service"),
        ("http://10.1.2.3/", "a private address"),
        ("https://192.168.1.1/", "a private address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://[fd12::1]/", "a unique-local address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://[64:ff9b::7f00:1]/", "a loopback address"),
    ],
)
def test_internal_addresses_refused(
    dsn: str, conn: Conn, network: Network, url: str, why: str
) -> None:
    add(conn, "internal", url, allow_internal=False)
    run_checks(dsn)  # the production clients
    assert why in str(last_check(conn, "internal")[3])
    assert network.attempts == []


def test_allow_internal_connects(dsn: str, conn: Conn, target: Target) -> None:
    add(conn, "internal", target.base + "/ok", allow_internal=True)
    run_checks(dsn)
    assert last_check(conn, "internal")[0] is True
    assert target.connections == 1


def _only_first_target_is_public(port: int) -> typing.Callable[[IPAddress], str | None]:
    # Stand-in for a public address: 127.0.0.1 passes the policy, everything else is judged
    # by the real policy (so 127.0.0.2 is loopback, 10.0.0.1 private).
    def policy(ip: IPAddress) -> str | None:
        return None if str(ip) == "127.0.0.1" else refusal(ip)

    return policy


@pytest.mark.parametrize("inward", ["http://127.0.0.2:{port2}/ok", "http://10.0.0.1/"])
def test_redirect_to_internal_is_refused(dsn: str, conn: Conn, target: Target, inward: str) -> None:
    with Target("127.0.0.2") as second:
        to = inward.format(port2=second.server_address[1])
        add(conn, "hop", f"{target.base}/redirect?to={to}", allow_internal=False)
        inner = LoopbackOnly()
        backend = GuardedBackend(False, inner, policy=_only_first_target_is_public(0))
        run_checks(dsn, public_backend=backend)
        error = str(last_check(conn, "hop")[3])
        assert error.startswith("refused: ") and ("loopback" in error or "private" in error)
        assert target.requests == ["/redirect"]  # the allowed first hop was fetched
        assert inner.attempts == ["127.0.0.1"]  # and nothing else was connected
        assert second.connections == 0


# --allow-internal covers the configured URL's own host: the same host name (or the same
# IP literal), any port. Another name for the same address (localhost for 127.0.0.1) or
# another loopback address (127.0.0.2) is another host, judged as if the service had no
# allow_internal.


def test_allow_internal_redirect_to_own_host_other_port(
    dsn: str, conn: Conn, target: Target, network: Network
) -> None:
    with Target() as other:  # 127.0.0.1 too, another port
        add(conn, "hop", f"{target.base}/redirect?to={other.base}/ok", allow_internal=True)
        run_checks(dsn)
        assert last_check(conn, "hop")[:2] == (True, 200)
        assert (target.requests, other.requests) == (["/redirect"], ["/ok"])
    assert network.attempts == ["127.0.0.1", "127.0.0.1"]


@pytest.mark.parametrize(
    ("to", "why"),
    [
        ("http://127.0.0.2:{port2}/ok", "127.0.0.2 is a loopback address"),
        ("http://localhost:{port1}/ok", "localhost resolves to "),
        ("http://[::ffff:127.0.0.1]:{port1}/ok", "::ffff:127.0.0.1 is a loopback address"),
        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
        ("http://192.168.1.1/", "192.168.1.1 is a private address"),
    ],
)
def test_allow_internal_redirect_to_another_host_refused(
    dsn: str, conn: Conn, target: Target, network: Network, to: str, why: str
) -> None:
    with Target("127.0.0.2") as second:
        port1, port2 = target.server_address[1], second.server_address[1]
        to = to.format(port1=port1, port2=port2)
        add(conn, "hop", f"{target.base}/redirect?to={to}", allow_internal=True)
        run_checks(dsn)
        error = str(last_check(conn, "hop")[3])
        assert error.startswith(f"refused: {why}") and error.endswith(f"({OFF_HOST_HINT})")
        assert target.requests == ["/redirect"]  # the own host was fetched
        assert network.attempts == ["127.0.0.1"]  # and nothing else was connected
        assert second.connections == 0


@pytest.mark.parametrize(
    ("to", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is the cloud metadata"),
        ("http://[fd00:ec2::254]/", "fd00:ec2::254 is the cloud metadata service"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254 is the cloud metadata"),
        ("http://100.100.100.200/", "100.100.100.200 is the cloud metadata service"),
        ("http://169.254.170.2/v2/credentials", "169.254.170.2 is the container credentials"),
    ],
)
def test_allow_internal_redirect_to_metadata_refused(
    dsn: str, conn: Conn, target: Target, network: Network, to: str, why: str
) -> None:
    add(conn, "hop", f"{target.base}/redirect?to={to}", allow_internal=True)
    run_checks(dsn)
    error = str(last_check(conn, "hop")[3])
    assert error.startswith(f"refused: {why}") and error.endswith(f"({NEVER_HINT})")
    assert target.requests == ["/redirect"]
    assert network.attempts == ["127.0.0.1"]  # never a connection attempt to the metadata


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/"]
)
def test_allow_internal_never_covers_metadata(
    dsn: str, conn: Conn, network: Network, url: str
) -> None:
    add(conn, "meta", url, allow_internal=True)
    run_checks(dsn)
    error = str(last_check(conn, "meta")[3])
    assert "is the cloud metadata service" in error and error.endswith(f"({NEVER_HINT})")
    assert network.attempts == []


def test_public_service_redirect_to_loopback_refused(
    dsn: str, conn: Conn, target: Target, network: Network
) -> None:
    # 127.0.0.2 stands in for a public address (the policy lets it pass); the service
    # has no allow_internal and redirects to 127.0.0.1.
    def policy(ip: IPAddress) -> str | None:
        return None if str(ip) == "127.0.0.2" else refusal(ip)

    with Target("127.0.0.2") as public:
        add(conn, "hop", f"{public.base}/redirect?to={target.base}/ok", allow_internal=False)
        inner = LoopbackOnly()
        run_checks(dsn, public_backend=GuardedBackend(False, inner, policy=policy))
        error = str(last_check(conn, "hop")[3])
        assert error == "refused: 127.0.0.1 is a loopback address (allow with --allow-internal)"
        assert public.requests == ["/redirect"]
        assert inner.attempts == network.attempts == ["127.0.0.2"]
        assert target.connections == 0


def test_non_http_redirect_refused(dsn: str, conn: Conn, target: Target) -> None:
    add(conn, "hop", f"{target.base}/redirect?to=file:///etc/passwd", allow_internal=True)
    run_checks(dsn)
    assert last_check(conn, "hop")[3] == "refused: redirect to a file URL"


def test_public_address_passes_policy() -> None:
    assert refusal(ipaddress.ip_address("93.184.216.34")) is None
    assert refusal(ipaddress.ip_address("2606:2800:220:1::1")) is None
    assert refusal(ipaddress.ip_address("::ffff:93.184.216.34")) is None
    assert refusal(ipaddress.ip_address("100.64.0.1")) == "a non-global address"
