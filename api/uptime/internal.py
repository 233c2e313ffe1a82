"""Whether a service URL points at an internal address, decided when the service is added
or edited (the prober's SSRF guard, prober/guard.py, decides again at every connection).

A URL whose host is, or resolves to, a loopback, private, link-local or other non-global
address needs "internal" allowed; a cloud metadata address is never allowed. A name that
does not resolve (yet) is accepted: the prober reports it on its checks.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from prober.guard import IPAddress, metadata, refusal


class InternalURL(ValueError):
    """The URL's host is internal (`never` False: allowing internal addresses would help)
    or a metadata address (`never` True)."""

    def __init__(self, what: str, *, never: bool) -> None:
        self.never = never
        super().__init__(what)


def _addresses(host: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    found: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    return found


def check_url(url: str, allow_internal: bool) -> None:
    """Raises InternalURL when the URL's host may not be probed with these settings
    ("db.lan resolves to 10.0.0.5, which is a private address"). Blocking (DNS)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return  # not a URL: the database refuses it with its own reason
    if not host:
        return
    for ip in _addresses(host):
        what = str(ip) if host == str(ip) else f"{host} resolves to {ip}, which"
        if why := metadata(ip):
            raise InternalURL(f"{what} is {why}, which is never probed", never=True)
        if not allow_internal and (why := refusal(ip)):
            raise InternalURL(f"{what} is {why}", never=False)
