"""second wave: re-applies every file of sql/ (frozen in alembic/versions/0005/), with the
hand-written conversions that run between them:

- 49_journal_v1_aside.sql (before 50_journal.sql): the old journal table is set aside;
- 51_journal_v1_convert.sql (after it): its lines move into the compact layout
  (vigil.journal_sets + vigil.journal_lines, read back through the view vigil.journal);
- 65_series_pack.sql (after 60_series.sql): portable mode packs the old raw points of closed
  days into vigil.points_packed (one row per series and day).

New in this revision: series packing (portable) and compression policies (TimescaleDB), the
series-id cache's forget sequence, push checks (Healthchecks-style pings, Uptime Kuma push),
web access logs (sql/55_requests.sql), `vigil jobs run`'s maintenance registry.

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
