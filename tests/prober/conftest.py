"""Network safety net for every prober test: no traffic leaves loopback.

The prober's production clients connect through the real socket layer, so a broken SSRF
guard would really connect to 169.254.169.254 or 10.0.0.1. Here every outgoing socket
connect is recorded and refused unless it goes to a loopback address, and host names
other than localhost are never resolved (no DNS traffic): tests observe the guard's
decision (a refusal, and no attempt recorded) without sending anything anywhere.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest


class Network:
    """What the test tried to reach below the prober's guard (socket level)."""

    def __init__(self) -> None:
        self.attempts: list[str] = []  # every socket connect's host, allowed or not
        self.lookups: list[str] = []  # every name resolution's host

    def refused(self) -> list[str]:
        return [host for host in self.attempts if not _loopback(host)]


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


@pytest.fixture(autouse=True)
def network(monkeypatch: pytest.MonkeyPatch) -> Iterator[Network]:
    net = Network()
    connect = socket.socket.connect
    connect_ex = socket.socket.connect_ex
    getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            net.attempts.append(host)
            if not _loopback(host):
                raise OSError(errno.ENETUNREACH, f"test safety net: no traffic to {host}")

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return connect_ex(sock, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None:
            net.lookups.append(str(name))
            if not (_literal(str(name)) or str(name).lower() == "localhost"):
                raise socket.gaierror(socket.EAI_NONAME, f"test safety net: no DNS for {name}")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    yield net
