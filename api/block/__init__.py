"""Bad actors: the deny list (sql/77_blocklist.sql) enforced at ingest (guard.py), exported
for the front proxy (routes.py: GET /v1/block/export) and kept by operators (pages.py:
/blocks)."""

from pathlib import Path

from vigil.queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
"""The named queries of this package (queries.sql next to this file)."""
