"""Database helpers shared by the CLI, the API and the notifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

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


def mode(conn: Conn) -> tuple[str, str]:
    """The active database mode (portable | timescaledb) and why."""
    row = conn.execute(QUERIES["mode"]).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])
