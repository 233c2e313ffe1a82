"""Initial schema: metrics, detection, outbox, jobs, tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from vigil.migrate import apply_frozen_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_frozen_sql(revision)


def downgrade() -> None:
    raise NotImplementedError("Vigil migrations are forward-only; restore a backup instead")
