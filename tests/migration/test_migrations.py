"""Migrating an empty database with Alembic gives exactly what loading sql/ gives
(portable mode; the TimescaleDB lane has the same test in test_migrations_timescale.py)."""

from __future__ import annotations

import psycopg

from tests.conftest import new_database
from tests.support.revisions import head_revision
from tests.support.schema_fingerprint import diff, fingerprint
from tests.support.sql import Conn
from vigil.cluster import Cluster
from vigil.db import load_sql
from vigil.migrate import upgrade


def test_migrate_from_zero_equals_loading_sql(pg_cluster: Cluster) -> None:
    with new_database(pg_cluster) as migrated, new_database(pg_cluster) as loaded:
        upgrade(migrated)
        with psycopg.connect(loaded) as c:
            load_sql(c)
        with psycopg.connect(migrated) as a, psycopg.connect(loaded) as b:
            fa, fb = fingerprint(a), fingerprint(b)
            assert a.execute("select version_num from alembic_version").fetchall() == [
                (head_revision(),)
            ]
            assert a.execute("select mode from vigil.mode").fetchone() == ("portable",)
    assert diff(fa, fb) == []
    assert fa == fb
    # The fingerprint is not vacuous: it sees the objects a DBA relies on.
    assert ("metrics", "state") in {(r[0], r[1]) for r in fa["columns"]}
    assert any("metrics_open_deadline_idx" in str(r[1]) for r in fa["indexes"])
    assert any(r[0] == "detect(p_now timestamp with time zone)" for r in fa["functions"])
    assert {"disk", "ping"} <= {r[0]["type"] for r in fa["seed:rules"]}


def test_fingerprint_sees_a_changed_comment_default_and_function(conn: Conn) -> None:
    before = fingerprint(conn)
    conn.execute("comment on table vigil.alert_rules is 'changed'")
    conn.execute("alter table vigil.outbox alter column attempts set default 1")
    conn.execute(
        "create or replace function vigil._parse_int(p_text text) returns integer "
        "language sql immutable as $$ select 1 $$"
    )
    changed = diff(before, fingerprint(conn))
    assert any(line.startswith("relations:") and "changed" in line for line in changed)
    assert any(line.startswith("columns:") and "attempts" in line for line in changed)
    assert any(line.startswith("functions:") and "_parse_int" in line for line in changed)
