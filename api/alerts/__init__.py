"""Alerts, rules and silences: the operator pages of the alert-rule engine (sql/15_alerts.sql,
sql/80_rules.sql). Pages only; the engine itself is SQL."""

from pathlib import Path

from vigil.queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
"""The named queries of this package (queries.sql next to this file)."""
