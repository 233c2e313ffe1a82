"""Alembic migrations. Each revision applies SQL frozen for it under
alembic/versions/<revision>/, never the live sql/ directory (see docs/dba.md)."""

from __future__ import annotations

from alembic import command, op
from alembic.config import Config

from vigil import PROJECT_ROOT
from vigil.db import sql_files

ALEMBIC_DIR = PROJECT_ROOT / "alembic"


def libpq_url(url: str) -> str:
    """DATABASE_URL in any accepted spelling -> the URL libpq (psycopg) connects with."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must start with postgresql:// or postgres://")


def apply_frozen_sql(revision: str) -> None:
    """Runs the revision's frozen SQL files, in order, in the migration's transaction."""
    dbapi = op.get_bind().connection.dbapi_connection
    assert dbapi is not None
    for path in sql_files(ALEMBIC_DIR / "versions" / revision):
        # No parameters: psycopg sends the file as is, '%' included.
        dbapi.cursor().execute(path.read_text().encode())


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str) -> None:
    """Brings the database to the newest revision."""
    command.upgrade(alembic_config(database_url), "head")
