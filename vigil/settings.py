"""Process settings, read once from the environment and validated at start.

Every secret may also be given as NAME_FILE (a path whose content is the value), the
Docker-secrets convention.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from vigil import PROJECT_ROOT

TELEGRAM_API = "https://api.telegram.org"
N = TypeVar("N", int, float)

GOOGLE_DISCOVERY = "https://accounts.google.com/.well-known/openid-configuration"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


def _read(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    file_path = env.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise SettingsError(f"{name}_FILE={file_path!r} cannot be read: {exc}") from exc
    value = env.get(name)
    return value if value not in (None, "") else default


def _number(env: Mapping[str, str], name: str, default: N, minimum: N, kind: type[N]) -> N:
    raw = _read(env, name, str(default))
    try:
        value = kind(str(raw))
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise SettingsError(f"{name}={raw!r} is not {what}") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    return _number(env, name, default, minimum, int)


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    return _number(env, name, default, minimum, float)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (_read(env, name) or "").lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} must be true or false")


@dataclass(frozen=True)
class Settings:
    """Settings of every Vigil process (see the configuration table in README.md)."""

    database_url: str | None
    read_database_url: str | None
    host: str
    port: int
    data_dir: Path
    embedded_pg_port: int
    max_body_bytes: int
    allow_tokenless_loopback: bool
    telegram_token: str | None
    telegram_chat_id: str | None
    telegram_api_base: str
    telegram_timeout: float
    poll_seconds: float
    tick_seconds: float
    lease_seconds: int
    retry_base_seconds: float
    retry_max_seconds: float
    max_attempts: int
    # Operator pages: Google sign-in, sessions, login links.
    google_client_id: str | None
    google_client_secret: str | None
    google_callback_url: str | None
    google_discovery_url: str
    session_secret: str | None
    session_hours: int
    login_link_minutes: int
    public_url: str | None
    admin_email: str | None
    # Uptime prober.
    prober_concurrency: int
    prober_tick_seconds: float
    # Push checks: bytes of a ping's body that are kept (Ping-Body-Limit).
    ping_body_limit: int

    @property
    def telegram_configured(self) -> bool:
        return bool(self.telegram_token and self.telegram_chat_id)

    @property
    def google_configured(self) -> bool:
        return bool(self.google_client_id)

    @property
    def base_url(self) -> str:
        """Where operators reach Vigil: VIGIL_PUBLIC_URL, else the listen address."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return (self.public_url or f"http://{host}:{self.port}").rstrip("/")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(_read(env, "VIGIL_DATA_DIR") or PROJECT_ROOT / ".vigil")
        settings = cls(
            # TIMESCALE_DATABASE_URL is an older name of the same database.
            database_url=_read(env, "DATABASE_URL") or _read(env, "TIMESCALE_DATABASE_URL"),
            # Operator page reads (dashboard, journal, charts) may go to a hot standby.
            read_database_url=_read(env, "VIGIL_READ_DATABASE_URL"),
            host=_read(env, "VIGIL_HOST", "127.0.0.1") or "127.0.0.1",
            port=_int(env, "VIGIL_PORT", 8080, 1),
            data_dir=data_dir,
            embedded_pg_port=_int(env, "VIGIL_EMBEDDED_PG_PORT", 54320, 1),
            max_body_bytes=_int(env, "VIGIL_MAX_BODY_BYTES", 4 * 1024 * 1024, 1024),
            allow_tokenless_loopback=_bool(env, "VIGIL_ALLOW_TOKENLESS_LOOPBACK", False),
            telegram_token=_read(env, "TELEGRAM_TOKEN"),
            telegram_chat_id=_read(env, "TELEGRAM_CHAT_ID"),
            telegram_api_base=(_read(env, "TELEGRAM_API_BASE", TELEGRAM_API) or "").rstrip("/"),
            telegram_timeout=_float(env, "VIGIL_TELEGRAM_TIMEOUT", 10.0, 0.1),
            poll_seconds=_float(env, "VIGIL_POLL_SECONDS", 5.0, 0.05),
            tick_seconds=_float(env, "VIGIL_TICK_SECONDS", 0.5, 0.05),
            lease_seconds=_int(env, "VIGIL_LEASE_SECONDS", 60, 1),
            retry_base_seconds=_float(env, "VIGIL_RETRY_BASE_SECONDS", 2.0, 0.01),
            retry_max_seconds=_float(env, "VIGIL_RETRY_MAX_SECONDS", 600.0, 0.01),
            max_attempts=_int(env, "VIGIL_MAX_ATTEMPTS", 100, 1),
            google_client_id=_read(env, "GOOGLE_CLIENT_ID"),
            google_client_secret=_read(env, "GOOGLE_CLIENT_SECRET"),
            google_callback_url=_read(env, "GOOGLE_CALLBACK_URL"),
            google_discovery_url=_read(env, "GOOGLE_DISCOVERY_URL", GOOGLE_DISCOVERY)
            or GOOGLE_DISCOVERY,
            session_secret=_read(env, "SESSION_SECRET"),
            session_hours=_int(env, "VIGIL_SESSION_HOURS", 12, 1),
            login_link_minutes=_int(env, "VIGIL_LOGIN_LINK_MINUTES", 15, 1),
            public_url=_read(env, "VIGIL_PUBLIC_URL"),
            admin_email=_read(env, "VIGIL_ADMIN_EMAIL"),
            prober_concurrency=_int(env, "VIGIL_PROBER_CONCURRENCY", 100, 1),
            prober_tick_seconds=_float(env, "VIGIL_PROBER_TICK_SECONDS", 0.5, 0.05),
            ping_body_limit=_int(env, "VIGIL_PING_BODY_LIMIT", 10_000, 0),
        )
        _check_operator_settings(settings)
        if settings.poll_seconds > 5:
            raise SettingsError("VIGIL_POLL_SECONDS must be at most 5 (the poll backstop)")
        if bool(settings.telegram_token) != bool(settings.telegram_chat_id):
            raise SettingsError("set both TELEGRAM_TOKEN and TELEGRAM_CHAT_ID, or neither")
        if not settings.telegram_api_base.startswith(("http://", "https://")):
            raise SettingsError("TELEGRAM_API_BASE must be an http(s) URL")
        return settings

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SettingsError(
                "DATABASE_URL is not set (e.g. postgresql://user@host:5432/vigil); "
                "`vigil run` without it starts the embedded database"
            )
        return self.database_url


def _check_operator_settings(settings: Settings) -> None:
    google = (
        settings.google_client_id,
        settings.google_client_secret,
        settings.google_callback_url,
    )
    if any(google) and not all(google):
        raise SettingsError(
            "set GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET and GOOGLE_CALLBACK_URL together, or none"
        )
    if settings.google_configured and len(settings.session_secret or "") < 16:
        raise SettingsError(
            "SESSION_SECRET must be set (at least 16 characters, e.g. `openssl rand -hex 32`) "
            "when Google sign-in is configured"
        )
    for name, url in (
        ("GOOGLE_CALLBACK_URL", settings.google_callback_url),
        ("GOOGLE_DISCOVERY_URL", settings.google_discovery_url),
        ("VIGIL_PUBLIC_URL", settings.public_url),
    ):
        if url and not url.startswith(("http://", "https://")):
            raise SettingsError(f"{name} must be an http(s) URL")
    if settings.session_hours > 24 * 30:
        raise SettingsError("VIGIL_SESSION_HOURS must be at most 720 (30 days)")
    if settings.login_link_minutes > 24 * 60:
        raise SettingsError("VIGIL_LOGIN_LINK_MINUTES must be at most 1440 (one day)")
