"""cheaper ingest, one point per series and time: re-applies sql/60_series.sql and
sql/62_log_metrics.sql (frozen in alembic/versions/0008/), after the hand-written
59_points_one_per_time.sql, which makes points stored twice one row so that 60_series.sql can
give the raw points (vigil.points in portable mode, vigil.points_data in TimescaleDB mode) a
unique (series_id, at) index; vigil.put_points replaces a point sent again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from vigil.migrate import apply_frozen_sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_frozen_sql(revision)


def downgrade() -> None:
    raise NotImplementedError("Vigil migrations are forward-only; restore a backup instead")
