"""outbox order: re-applies sql/10_outbox.sql sql/30_heartbeats.sql sql/70_uptime.sql
sql/90_status.sql, after 0003/00_outbox_order.sql (outbox.instance_key for existing rows,
the status superseded, outbox_claim's new signature).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from vigil.migrate import apply_frozen_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_frozen_sql(revision)


def downgrade() -> None:
    raise NotImplementedError("Vigil migrations are forward-only; restore a backup instead")
