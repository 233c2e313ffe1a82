"""alert rules, journal counts, series read-your-writes: after the hand-written
0004/00_journal_counts.sql (drops vigil.journal_ingest and journal_ingest_staged, whose return
type became vigil.journal_counts), re-applies sql/00_schema.sql sql/10_outbox.sql
sql/15_alerts.sql sql/20_jobs.sql sql/30_heartbeats.sql sql/40_auth.sql sql/50_journal.sql
sql/60_series.sql sql/70_uptime.sql sql/80_rules.sql sql/85_alerts_backfill.sql.

The alert-rule engine (the old table vigil.rules becomes a view of the built-in heartbeat
rules, its values kept; alerts open before the upgrade become firing instances, so their
recovery is announced), TimescaleDB read-your-writes for backfilled series, the journal ingest
counts as one type, and SQL helpers the files share instead of repeating code
(vigil._comment_columns, _register_job, _outbox_heads, _forget_alerts_on_delete, ...).

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
