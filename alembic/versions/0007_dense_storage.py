"""dense storage: re-applies the changed files of sql/ (frozen in alembic/versions/0007/), with
the hand-written conversions that run between them:

- 49_journal_v2_aside.sql (before 50_journal.sql): the journal lines table is set aside;
- 51_journal_v2_convert.sql (after it): its lines move into the typed layout (journald
  cursor parts and _PID as columns, dedupe key 0 where the cursor identifies a line);
- 59_series_decimal_aside.sql (before 60_series.sql): TimescaleDB mode sets the points
  hypertable and its continuous aggregates aside;
- 61_series_decimal_convert.sql (after it): TimescaleDB mode stores the points as decimals
  in vigil.points_data (vigil.points becomes a view); hour and day buckets older than the
  raw points move to archive tables; the minute tier becomes a view over the raw points.

Also re-applied: 55_requests and 56_routes (one search implementation), 57_trace (the
typed _PID), 62_log_metrics (grouping by _PID) and 80_rules (minutes through
vigil._series_minutes). Portable mode packs regular days with two gaps (rows packed before
stay readable) and starts vigil.series_forgotten at a random value per install.

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
