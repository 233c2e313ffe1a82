"""Where to send and with which token, and one POST with a verdict.

Configuration, the first found wins for each setting: the flags `--url` / `--token`, the
environment (`VIGIL_URL`, `VIGIL_TOKEN`, or `VIGIL_TOKEN_FILE`: a file holding the token),
then one small TOML file: `--config FILE`, else `$VIGIL_SEND_CONFIG`, else
`~/.config/vigil/send.toml` (`$XDG_CONFIG_HOME`), else `/etc/vigil/send.toml`:

    url = "https://vigil.example.com"
    token = "vgl_..."          # or: token_file = "/etc/vigil/token"
"""

from __future__ import annotations

import os
import random
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

USER_AGENT = "vigil-send/1"


class ConfigError(ValueError):
    """A setting is missing or unreadable; the message says which and where."""


class Refused(RuntimeError):
    """The server will not take this request as it is (4xx other than 408/429)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text.strip()[:300]}")
        self.status = status


class Unreachable(RuntimeError):
    """No answer, or one that says to retry (5xx, 408, 429): retry later."""


SECRET_IN_URL = re.compile(r"(/t|/ping|/api/push)/[^/]+")


@dataclass(frozen=True)
class Target:
    url: str  # base URL without a trailing slash
    token: str | None

    @property
    def shown(self) -> str:
        """The URL for messages and logs: a /t/TOKEN/ or ping secret segment hidden."""
        return SECRET_IN_URL.sub(r"\1/…", self.url)

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers


def config_paths(explicit: str | None, env: dict[str, str]) -> list[Path]:
    if explicit:
        return [Path(explicit)]
    if env.get("VIGIL_SEND_CONFIG"):
        return [Path(env["VIGIL_SEND_CONFIG"])]
    home = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return [Path(home) / "vigil" / "send.toml", Path("/etc/vigil/send.toml")]


def _read_token_file(path: str, where: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path} ({where}): {exc}") from None


def resolve(
    url: str | None,
    token: str | None,
    config: str | None = None,
    env: dict[str, str] | None = None,
) -> Target:
    """The target from flags, environment and config file (in that order)."""
    env = dict(os.environ) if env is None else env
    file: dict[str, Any] = {}
    where = ""
    for path in config_paths(config, env):
        try:
            file = tomllib.loads(path.read_text())
        except FileNotFoundError:
            if config or env.get("VIGIL_SEND_CONFIG"):
                raise ConfigError(f"config file {path} not found") from None
            continue
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the config file {path}: {exc}") from None
        where = str(path)
        break
    url = url or env.get("VIGIL_URL") or file.get("url")
    if token is None:
        token = env.get("VIGIL_TOKEN") or None
    if token is None and env.get("VIGIL_TOKEN_FILE"):
        token = _read_token_file(env["VIGIL_TOKEN_FILE"], "VIGIL_TOKEN_FILE")
    if token is None and file.get("token"):
        token = str(file["token"])
    if token is None and file.get("token_file"):
        token = _read_token_file(str(file["token_file"]), where)
    if not url or not isinstance(url, str):
        raise ConfigError(
            'no Vigil URL: give --url, set VIGIL_URL, or put url = "..." in '
            + " or ".join(str(p) for p in config_paths(config, env))
        )
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"the Vigil URL must start with http:// or https://, not {url!r}")
    return Target(url.rstrip("/"), token)


class Client:
    """POSTs to Vigil; raises Unreachable (retry) or Refused (do not)."""

    def __init__(self, target: Target, timeout: float = 15.0) -> None:
        self.target = target
        self.http = httpx.Client(
            base_url=target.url, headers=target.headers(), timeout=timeout, follow_redirects=False
        )

    def close(self) -> None:
        self.http.close()

    def post(
        self,
        route: str,
        content: bytes,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            reply = self.http.post(
                route, content=content, headers={"Content-Type": content_type}, params=params
            )
        except httpx.TransportError as exc:
            raise Unreachable(f"{self.target.shown}: {exc or type(exc).__name__}") from None
        if reply.status_code >= 500 or reply.status_code in (408, 429):
            raise Unreachable(f"{self.target.shown}{route}: HTTP {reply.status_code}")
        if reply.status_code >= 400:
            raise Refused(reply.status_code, reply.text)
        return reply


class Backoff:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... up to `cap` seconds."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first, self.cap = first, cap
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        delay: float = min(self.cap, self.first * 2 ** (self.failures - 1))
        return delay * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self.failures = 0
