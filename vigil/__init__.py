"""Vigil: self-hosted metrics, journal logs and alerts in PostgreSQL/TimescaleDB."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
