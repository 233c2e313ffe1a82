"""Migrating an empty database in TimescaleDB mode (PGlite + TimescaleDB): `vigil migrate`
detects the extension, and migrate-from-zero equals loading sql/ (the portable lane has the
same test in test_migrations.py)."""

from __future__ import annotations

import os
import subprocess

import psycopg
import pytest

from tests.conftest import venv_bin
from tests.support.revisions import head_revision
from tests.support.schema_fingerprint import diff, fingerprint
from tests.support.timescale import PGlite
from vigil.db import load_sql, mode
from vigil.migrate import upgrade

pytestmark = pytest.mark.timescale


def test_vigil_migrate_from_empty_detects_timescaledb(ts_empty: PGlite) -> None:
    with psycopg.connect(ts_empty.dsn) as c:
        assert c.execute("select to_regnamespace('vigil')").fetchone() == (None,)
    env = {**os.environ, "DATABASE_URL": ts_empty.url}
    env.pop("TIMESCALE_DATABASE_URL", None)
    res = subprocess.run(
        [venv_bin("vigil"), "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("migrated; timescaledb mode: timescaledb 2.")
    with psycopg.connect(ts_empty.dsn) as c:
        assert c.execute("select version_num from alembic_version").fetchall() == [
            (head_revision(),)
        ]
        got_mode, reason = mode(c)
        assert got_mode == "timescaledb"
        assert "is installed: hypertables, policies and add_job scheduling are used" in reason
        assert c.execute("select server_version from vigil.mode").fetchone() == ("17.5",)


def test_migrate_from_zero_equals_loading_sql(ts_empty: PGlite) -> None:
    upgrade(ts_empty.url)
    with psycopg.connect(ts_empty.dsn) as c:
        migrated = fingerprint(c)
    ts_empty.reset()
    with psycopg.connect(ts_empty.dsn) as c:
        load_sql(c)
        c.commit()
        loaded = fingerprint(c)
        # Every file is idempotent: loading sql/ again changes nothing, adds no second job.
        load_sql(c)
        c.commit()
        again = fingerprint(c)
    assert diff(migrated, loaded) == []
    assert migrated == loaded
    assert diff(loaded, again) == []
    assert "metric_history" in [r[0] for r in migrated["timescaledb:hypertables"]]
    jobs = [(r[0], r[1], r[2], r[9]) for r in migrated["timescaledb:jobs"]]
    assert ("vigil", "detect_job", "00:00:05", None) in jobs
    assert ("_timescaledb_functions", "policy_retention", "1 day", "metric_history") in jobs
    assert [j for j in jobs if j[1] == "detect_job"] == [("vigil", "detect_job", "00:00:05", None)]
