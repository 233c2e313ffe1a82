"""Shared by the deny list tests: the database with sql/77_blocklist.sql loaded.

A database migrated by a revision older than the blocklist (sql/ moves ahead of alembic/
between releases) gets the live files it needs loaded on top - they are idempotent, as
every file of sql/ is; once a revision carries them this does nothing."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from vigil import SQL_DIR

Conn = psycopg.Connection[tuple[object, ...]]

BLOCK_FILES = ("77_blocklist.sql", "80_rules.sql")
"""The blocklist and the rule evaluation that calls its rule action."""


def has(conn: Conn, probe: str) -> bool:
    row = conn.execute(probe).fetchone()
    return bool(row and row[0])


def load(conn: Conn, files: Iterable[str]) -> None:
    for name in files:
        conn.execute((SQL_DIR / name).read_text().encode())


def ensure_blocklist(conn: Conn) -> None:
    """sql/77_blocklist.sql (and the rule hook in 80_rules.sql), unless already migrated."""
    if not has(conn, "select to_regclass('vigil.blocked_networks') is not null"):
        load(conn, BLOCK_FILES)


def ensure_all(conn: Conn) -> None:
    """Every file of sql/ when the log metrics or the blocklist are missing (the scenario
    needs H1's log metrics too)."""
    if not has(
        conn,
        "select to_regclass('vigil.blocked_networks') is not null"
        " and to_regclass('vigil.log_metrics') is not null",
    ):
        load(conn, sorted(p.name for p in SQL_DIR.glob("*.sql")))
