"""The Alembic revision a migrated database must be at."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from vigil.migrate import alembic_config


def head_revision() -> str:
    """The newest revision under alembic/versions (what `vigil migrate` brings a database to)."""
    head = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
    assert head is not None, "alembic/versions has no head revision"
    return head
