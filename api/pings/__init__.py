"""Push checks: Healthchecks-compatible pings (/ping/...) and Uptime Kuma pushes
(/api/push/...), stored as ping metrics (sql/30_heartbeats.sql)."""

from pathlib import Path

from vigil.queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
"""The named queries of this package (queries.sql next to this file)."""
