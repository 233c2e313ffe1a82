"""`vigil rules`, `vigil alerts`, `vigil silence` and `vigil maintenance`: the alert engine
(sql/15_alerts.sql, sql/80_rules.sql) from the command line. Its SQL is in queries.sql."""

from pathlib import Path

from vigil.queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
"""The named queries of the alerting commands (vigil/cli/alerting/queries.sql)."""
