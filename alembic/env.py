"""Alembic environment: migrations run raw SQL through the psycopg driver."""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool

from vigil.migrate import libpq_url
from vigil.settings import Settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings.from_env().require_database_url()
# psycopg connects with the URL as given (libpq parses it: several hosts, target_session_attrs
# and every other libpq parameter work); SQLAlchemy's URL parser would refuse "h1:p1,h2:p2".
engine = create_engine(
    "postgresql+psycopg://",
    creator=lambda: psycopg.connect(libpq_url(url)),
    poolclass=pool.NullPool,
)

with engine.connect() as connection:
    context.configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()
