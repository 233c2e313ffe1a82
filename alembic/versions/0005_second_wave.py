"""second wave: re-applies sql/00_schema.sql sql/10_outbox.sql sql/15_alerts.sql sql/20_jobs.sql sql/30_heartbeats.sql sql/40_auth.sql sql/50_journal.sql sql/60_series.sql sql/70_uptime.sql sql/80_rules.sql sql/85_alerts_backfill.sql sql/90_status.sql

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
