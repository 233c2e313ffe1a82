"""Sender API tokens: random, shown once, stored as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from vigil import QUERIES
from vigil.db import Conn

PREFIX = "vgl_"


def new_token() -> str:
    # 256 bits of randomness; URL-safe so it can travel as a path prefix (/t/TOKEN/...).
    return PREFIX + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> bytes:
    """The stored form of a high-entropy random secret (sender tokens, login links,
    sign-in flows): a plain SHA-256 is enough at rest for 256 random bits."""
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def create(conn: Conn, name: str) -> str:
    token = new_token()
    conn.execute(QUERIES["token_create"], (name, secret_hash(token)))
    return token


def revoke(conn: Conn, name: str) -> bool:
    row = conn.execute(QUERIES["token_revoke"], (name,)).fetchone()
    return bool(row and row[0])


def list_tokens(conn: Conn, limit: int | None = None) -> list[TokenInfo]:
    """Every token (or the first `limit`): active first, by name, newest first."""
    rows = conn.execute(QUERIES["token_list"], (limit,)).fetchall()
    return [TokenInfo(*row) for row in rows]
