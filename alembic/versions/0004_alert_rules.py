"""alert rules: re-applies sql/10_outbox.sql sql/15_alerts.sql sql/20_jobs.sql
sql/30_heartbeats.sql sql/70_uptime.sql sql/80_rules.sql (the alert-rule engine; the old
table vigil.rules becomes a view of the built-in heartbeat rules, its values kept).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from vigil.migrate import apply_frozen_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_frozen_sql(revision)


def downgrade() -> None:
    raise NotImplementedError("Vigil migrations are forward-only; restore a backup instead")
