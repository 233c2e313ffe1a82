"""Healthchecks' ping URLs and Uptime Kuma's push query, parsed without I/O.

Healthchecks (https://healthchecks.io/docs/http_api/): `/ping/<uuid>[/start|/fail|/log|/<exit
status>]` and `/ping/<ping-key>/<slug>[/...]`, `?rid=<uuid>` (a run id), `?create=1` (slug URLs:
create the check when missing). Its answers are short texts: `OK`, `Created` (201),
`not found` (404), `invalid uuid format` and `invalid url format` (400).

Uptime Kuma (`/api/push/<token>?status=up|down&msg=&ping=`): any status but `up` is down, a
missing one is up, `msg` defaults to `OK`, `ping` is a response time in milliseconds (a
number, else none).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

ACTIONS = ("start", "fail", "log")
EXIT_STATUS = re.compile(r"[0-9]{1,9}")
UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


class PingError(ValueError):
    """A ping URL that cannot be served: `status` and Healthchecks' answer text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


NOT_FOUND = PingError(404, "not found")


@dataclass(frozen=True)
class Ping:
    """One ping: its check (a secret, or a ping key and slug) and what it says."""

    secret: str | None
    ping_key: str | None
    slug: str | None
    kind: str  # success, start, fail or log (exit_status decides when given)
    exit_status: int | None
    rid: UUID | None
    create: bool


def canonical_uuid(text: str) -> str | None:
    """A UUID as Healthchecks writes it (lowercase, hyphens), or None when `text` is none."""
    return str(UUID(text)) if UUID_TEXT.fullmatch(text) else None


def _action(text: str) -> tuple[str, int | None]:
    if text in ACTIONS:
        return text, None
    if EXIT_STATUS.fullmatch(text):
        status = int(text)
        if status > 255:
            raise PingError(400, "invalid url format")
        return ("success" if status == 0 else "fail"), status
    raise NOT_FOUND


def parse_ping(segments: Sequence[str], query: Mapping[str, str]) -> Ping:
    """The ping of the path segments after `/ping/` and the query; PingError otherwise."""
    rid_text = query.get("rid")
    rid = None
    if rid_text is not None:
        if not UUID_TEXT.fullmatch(rid_text):
            raise PingError(400, "invalid uuid format")
        rid = UUID(rid_text)
    if not 1 <= len(segments) <= 3 or not all(segments):
        raise NOT_FOUND
    secret = canonical_uuid(segments[0])
    kind, exit_status = "success", None
    if secret is not None:
        if len(segments) == 3:
            raise NOT_FOUND
        if len(segments) == 2:
            kind, exit_status = _action(segments[1])
        return Ping(secret, None, None, kind, exit_status, rid, create=False)
    if len(segments) == 1:
        raise NOT_FOUND
    if len(segments) == 3:
        kind, exit_status = _action(segments[2])
    return Ping(
        None, segments[0], segments[1], kind, exit_status, rid, create=query.get("create") == "1"
    )


@dataclass(frozen=True)
class Push:
    """An Uptime Kuma push: up or down, its message and response time."""

    up: bool
    msg: str
    ping_ms: float | None


def parse_push(query: Mapping[str, str]) -> Push:
    """Uptime Kuma's push query (never an error: what Kuma accepts, this accepts)."""
    ping_ms: float | None = None
    try:
        value = float(query.get("ping", ""))
        ping_ms = value if math.isfinite(value) and value else None
    except ValueError:
        pass
    return Push(up=query.get("status", "up") == "up", msg=query.get("msg") or "OK", ping_ms=ping_ms)


def body_text(body: bytes, limit: int) -> str | None:
    """The first `limit` bytes of a ping's body as text (invalid UTF-8 and NUL replaced), or
    None when there is none."""
    if not body:
        return None
    return body[:limit].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def secret_hash(secret: str) -> bytes:
    """How a check's secret (or the ping key) is stored: SHA-256 of its text."""
    return hashlib.sha256(secret.encode()).digest()
