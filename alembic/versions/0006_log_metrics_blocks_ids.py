"""log metrics, deny list, journal ids: re-applies the files of sql/ that changed, frozen in
alembic/versions/0006/:

- 40_auth.sql: vigil.users.time_zone and vigil.user_set_time_zone() (per-operator time zone);
- 50_journal.sql, 55_requests.sql: the staged ingest functions mark what changed for log
  metrics; journal lines get the ids column (trace and request ids found at ingest);
- 56_routes.sql (new): route normalisation, vigil.route_rules and vigil.request_route();
- 57_trace.sql: the journal id index on the ids column, on by default; backfill function;
- 60_series.sql: TimescaleDB: the minute rollup in 1-day chunks (compressed a day after, not
  up to 11 days after);
- 62_log_metrics.sql (new): log-derived metrics and their refresh job;
- 77_blocklist.sql (new): the deny and allow lists, exports, the prune job;
- 80_rules.sql: a firing rule with block_for blocks the instance's address.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from vigil.migrate import apply_frozen_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    apply_frozen_sql(revision)


def downgrade() -> None:
    raise NotImplementedError("Vigil migrations are forward-only; restore a backup instead")
