"""The TimescaleDB lane: every test here runs against PGlite + TimescaleDB (marker
``timescale``, not skipped: `make test` runs it). Its fixtures live in
tests/timescale/fixtures.py, registered for the whole suite by tests/conftest.py
(``pytest_plugins``) because tests/sql shares them (the ``db`` fixture)."""
