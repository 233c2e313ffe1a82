"""Public status pages and badges: read-only, no login (sql/75_public.sql)."""

from pathlib import Path

from vigil.queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
"""The named queries of this package (queries.sql next to this file)."""
