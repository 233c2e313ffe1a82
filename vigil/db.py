"""Database helpers shared by the CLI, the API and the notifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from psycopg.abc import Params
from psycopg.rows import Row

from vigil import QUERIES, SQL_DIR

Conn = psycopg.Connection[tuple[Any, ...]]
"""The connection type used throughout (default tuple rows)."""


def sql_files(directory: Path = SQL_DIR) -> list[Path]:
    """The schema files in load order."""
    return sorted(directory.glob("*.sql"))


def load_sql(conn: Conn, directory: Path = SQL_DIR) -> None:
    """Loads every file of `directory` in order (what migrations must be equal to)."""
    for path in sql_files(directory):
        conn.execute(path.read_text().encode())


def one_row(conn: psycopg.Connection[Row], query: str, params: Params | None = None) -> Row:
    """The row of a statement that always returns one (an aggregate, a function call)."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, f"no row from {query!r}"
    return row


def fetch_bool(conn: psycopg.Connection[Any], query: str, params: Params | None = None) -> bool:
    """Whether a statement found or changed what it names: its first column is true (a true
    boolean, a returned name or id); no row is false."""
    row = conn.execute(query, params).fetchone()
    return bool(row and row[0])


def mode(conn: Conn) -> tuple[str, str]:
    """The active database mode (portable | timescaledb) and why."""
    row = one_row(conn, QUERIES["mode"])
    return str(row[0]), str(row[1])
