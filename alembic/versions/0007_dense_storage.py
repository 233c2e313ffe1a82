"""dense storage: re-applies sql/50_journal.sql sql/60_series.sql

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from vigil.migrate import apply_frozen_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_frozen_sql(revision)


def downgrade() -> None:
    raise NotImplementedError("Vigil migrations are forward-only; restore a backup instead")
