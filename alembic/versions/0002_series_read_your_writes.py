"""series read your writes: re-applies sql/60_series.sql

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from vigil.migrate import apply_frozen_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_frozen_sql(revision)


def downgrade() -> None:
    raise NotImplementedError("Vigil migrations are forward-only; restore a backup instead")
