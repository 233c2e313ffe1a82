"""dedupe and realtime: re-applies sql/40_auth.sql sql/50_journal.sql sql/60_series.sql,
after 0005/00_journal_counts.sql drops the two journal ingest functions whose return type
changed

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from vigil.migrate import apply_frozen_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_frozen_sql(revision)


def downgrade() -> None:
    raise NotImplementedError("Vigil migrations are forward-only; restore a backup instead")
