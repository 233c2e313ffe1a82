"""The SSRF policy of the clients the prober really uses: a whole `Prober.run` round
(`make_clients`, nothing injected) against local targets, and the guard's pieces on their
own. The `network` fixture (conftest.py) refuses and records every socket connect that is
not to loopback, so a default client that allowed internal addresses, or followed a
redirect without choosing its policy again, fails here without sending anything out."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpcore
import httpx
import pytest

import prober.service
from prober.guard import METADATA, NEVER_HINT, GuardedBackend, Refused, metadata, refusal
from prober.service import OFF_HOST_HINT, Clients, Due, Prober, make_clients, same_host
from tests.conftest import make_settings
from tests.prober.conftest import Network
from tests.support.targets import Target
from tests.support.uptime import Conn, add, last_check

LOOPBACK = "refused: 127.0.0.1 is a loopback address (allow with --allow-internal)"
META = f"refused: 169.254.169.254 is the cloud metadata service ({NEVER_HINT})"
OTHER_LOOPBACK = f"refused: 127.0.0.2 is a loopback address ({OFF_HOST_HINT})"
PRIVATE = f"refused: 10.0.0.1 is a private address ({OFF_HOST_HINT})"


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run in a thread of its own: Playwright's sync API (other tests) may own this
    thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def run_prober(dsn: str, services: int, monkeypatch: pytest.MonkeyPatch) -> list[Clients]:
    """One round of a real `Prober.run` (stopped once `services` checks were claimed; it
    finishes them before returning); returns the clients it built with `make_clients`."""
    built: list[Clients] = []

    def spy(concurrency: int) -> Clients:
        built.append(make_clients(concurrency))
        return built[-1]

    monkeypatch.setattr(prober.service, "make_clients", spy)
    settings = make_settings(dsn, VIGIL_PROBER_TICK_SECONDS="0.05")

    async def go() -> None:
        claimed = 0

        async def on_tick(count: int) -> None:
            nonlocal claimed
            claimed += count
            if claimed >= services:
                runner.stop()

        runner = Prober(settings, on_tick)
        await asyncio.wait_for(runner.run(), 60)

    run(go())
    return built


@pytest.fixture
def targets() -> Iterator[dict[str, Target]]:
    """a and b: 127.0.0.1 (two ports, so the same host); c: 127.0.0.2 (another host)."""
    with Target() as a, Target() as b, Target("127.0.0.2") as c:
        yield {"a": a, "b": b, "c": c}


@pytest.mark.parametrize(
    ("allow_internal", "url", "error", "connects"),
    [
        # allow_internal: the own host, any port, also after a redirect
        (True, "{a}/redirect?to={b}/ok", None, 2),
        # no allow_internal: loopback is refused before connecting
        (False, "{a}/ok", LOOPBACK, 0),
        (False, "http://169.254.169.254/latest/meta-data/", META, 0),
        # allow_internal never covers metadata, neither configured nor redirected to
        (True, "http://169.254.169.254/latest/meta-data/", META, 0),
        (True, "{a}/redirect?to=http://169.254.169.254/latest/meta-data/", META, 1),
        # nor another host a redirect leads to: another loopback address, a private one
        (True, "{a}/redirect?to={c}/ok", OTHER_LOOPBACK, 1),
        (True, "{a}/redirect?to=http://10.0.0.1/", PRIVATE, 1),
    ],
)
def test_prober_run_ssrf_policy(
    dsn: str,
    conn: Conn,
    targets: dict[str, Target],
    network: Network,
    monkeypatch: pytest.MonkeyPatch,
    allow_internal: bool,
    url: str,
    error: str | None,
    connects: int,
) -> None:
    bases = {name: target.base for name, target in targets.items()}
    add(conn, "svc", url.format(**bases), allow_internal=allow_internal)
    built = run_prober(dsn, 1, monkeypatch)
    assert len(built) == 1  # Prober.run builds its clients with make_clients
    ok, status, _, recorded = last_check(conn, "svc")
    assert recorded == error
    assert (ok, status) == ((True, 200) if error is None else (False, None))
    assert network.attempts == ["127.0.0.1"] * connects  # nothing else was even tried
    assert targets["c"].connections == 0


def test_make_clients_policies() -> None:
    clients = make_clients(100)
    public, internal = clients.public_transport.backend, clients.internal_transport.backend
    assert (public.allow_internal, public.policy) == (False, refusal)
    assert internal.allow_internal is True
    assert not clients.public.follow_redirects and not clients.internal.follow_redirects
    due = Due(1, "http://127.0.0.1:8080/x", 2.0, True, None, "svc")
    assert clients.for_hop(due, httpx.URL("http://127.0.0.1:9090/y")) is clients.internal
    assert clients.for_hop(due, httpx.URL("http://127.0.0.2:8080/x")) is clients.public
    assert clients.for_hop(due, httpx.URL("http://localhost:8080/x")) is clients.public
    public_due = Due(2, "http://127.0.0.1:8080/x", 2.0, False, None, "svc")
    assert clients.for_hop(public_due, httpx.URL("http://127.0.0.1:8080/x")) is clients.public
    run(clients.aclose())


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("http://Intranet.example:80/a", "https://intranet.example:8443/b", True),
        ("http://[::1]:1/", "http://[0:0::1]:2/", True),
        ("http://127.0.0.1/", "http://127.0.0.2/", False),
        ("http://127.0.0.1/", "http://localhost/", False),
        ("http://127.0.0.1/", "http://[::ffff:127.0.0.1]/", False),
        ("http://intranet.example/", "http://intranet.example./", False),
        ("http://intranet.example/", "http://intranet.example@169.254.169.254/", False),
    ],
)
def test_same_host(a: str, b: str, same: bool) -> None:
    assert same_host(httpx.URL(a), httpx.URL(b)) is same


class Recording(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.attempts: list[str] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.attempts.append(host)
        raise httpcore.ConnectError("test: no connections here")


@pytest.mark.parametrize(
    "host",
    [
        *(str(ip) for ip in METADATA),
        "::ffff:169.254.169.254",  # mapped
        "64:ff9b::a9fe:a9fe",  # NAT64
        "2002:a9fe:a9fe::1",  # 6to4
        "::169.254.169.254",  # IPv4-compatible
    ],
)
@pytest.mark.parametrize("allow_internal", [True, False])
def test_metadata_never_connected(host: str, allow_internal: bool) -> None:
    assert metadata(ipaddress.ip_address(host)) is not None
    inner = Recording()
    backend = GuardedBackend(allow_internal, inner, policy=lambda ip: None)
    with pytest.raises(Refused) as refused:
        run(backend.connect_tcp(host, 80))
    assert str(refused.value).endswith(f"({NEVER_HINT})") and not refused.value.internal
    assert inner.attempts == [] and backend.refused == 1


def test_allow_internal_backend_connects_to_internal_addresses() -> None:
    inner = Recording()
    with pytest.raises(httpcore.ConnectError):
        run(GuardedBackend(True, inner).connect_tcp("10.0.0.1", 80))
    assert inner.attempts == ["10.0.0.1"]  # the recording backend, not a socket


def test_safety_net_refuses_non_loopback(network: Network) -> None:
    # The net these tests rely on: refused before any packet is sent (192.0.2.1 is
    # TEST-NET-1, and the connect is never really made), no DNS for other names.
    async def connect() -> None:
        await asyncio.open_connection("192.0.2.1", 9)

    with pytest.raises(OSError, match="test safety net"):
        run(connect())
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("metadata.google.internal", 80)
    assert network.refused() == ["192.0.2.1"]
