"""Find by request or trace id: GET /v1/trace/{id} (scripts) and the Trace page."""

from pathlib import Path

from vigil.queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("queries.sql"))
"""The named queries of this package (queries.sql next to this file)."""
