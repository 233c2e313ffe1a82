"""Vigil: self-hosted metrics, journal logs and alerts in PostgreSQL/TimescaleDB."""

from pathlib import Path

from vigil.queries import load_queries

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
"""The named queries of the library and the `vigil` command (vigil/queries.sql)."""
