"""Alembic environment: migrations run raw SQL through the psycopg driver."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from vigil.migrate import sqlalchemy_url
from vigil.settings import Settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings.from_env().require_database_url()
engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)

with engine.connect() as connection:
    context.configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
