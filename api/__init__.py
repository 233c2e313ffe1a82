"""Vigil's HTTP API: ingestion endpoints and server-rendered pages (Litestar)."""
