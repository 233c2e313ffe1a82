"""Fixtures of the TimescaleDB lane: one PGlite + TimescaleDB server per session
(tools/pglite/server.mjs; a fresh one every RESTART_EVERY tests), reset before each test and
brought to the newest revision.

The server has one database (every connection lands in ``template1``) and takes one
connection at a time: a test of this lane holds at most one connection, and code under
test must close its own before the test opens another. See tools/pglite/README.md.

Also ``db``: one autocommit connection to a migrated database in either mode, for the
SQL test cases shared by both lanes (parametrised ``portable`` / ``timescale``).

Registered for the whole suite by tests/conftest.py (``pytest_plugins``): the tests of this
lane live next to the feature they exercise (tests/<feature>/test_*_timescale.py, marked
``timescale``), and every test taking ``db`` runs in both lanes.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command

from tools.pglite import harness
from vigil.db import load_sql
from vigil.migrate import alembic_config

Conn = psycopg.Connection[tuple[object, ...]]

RESET_SQL = """
do $$
begin
  -- Jobs whose procedure lives in schema vigil, and policies on its hypertables.
  perform delete_job(job_id) from timescaledb_information.jobs
   where job_id >= 1000 and (proc_schema = 'vigil' or hypertable_schema = 'vigil');
end $$;
drop schema if exists vigil cascade;
drop table if exists public.alembic_version;
"""


RESTART_EVERY = 15
"""A fresh server instead of a reset every this many tests. One server slows down with every
test it serves (the setup of a test, reset and sql/ loaded, went from 1.3 s to 11 s over 90
tests; a fresh server starts in about 3 s)."""


@dataclass
class PGlite:
    """The running server: libpq conninfo and the DATABASE_URL spelling."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    resets: int = 0

    @property
    def dsn(self) -> str:
        return harness.dsn(self.port)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"

    def reset(self) -> None:
        """Back to an empty database (the timescaledb extension stays installed): every
        RESTART_EVERY resets a fresh server on the same port, else the schema dropped."""
        self.resets += 1
        if self.proc is not None and self.resets % RESTART_EVERY == 0:
            from tests.conftest import free_port

            self.stop()
            self.port = free_port()  # not the old one: another process may have taken it
            self.proc = harness.start_pglite(self.port, self.workdir)
            return
        with psycopg.connect(self.dsn, autocommit=True) as c:
            c.execute(RESET_SQL.encode())
            left = c.execute(
                "select count(*) from timescaledb_information.jobs where job_id >= 1000"
            ).fetchone()
            assert left == (0,), "TimescaleDB jobs survived the reset"

    def stop(self) -> None:
        if self.proc is None:
            return
        code = harness.stop(self.proc)
        self.proc = None
        err = (self.workdir / "pglite.err").read_text(errors="replace")
        assert code == 0, f"PGlite server ended with exit code {code}:\n{err[-4000:]}"


@pytest.fixture(scope="session")
def pglite() -> Iterator[PGlite]:
    """The PGlite + TimescaleDB server (npm ci on first use; ~3 s to start)."""
    from tests.conftest import free_port

    workdir = Path(tempfile.mkdtemp(prefix="vigil-test-pglite-"))
    port = free_port()
    server = PGlite(port, workdir, harness.start_pglite(port, workdir))
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def ts_empty(pglite: PGlite) -> PGlite:
    """The server with schema vigil, alembic_version and Vigil's jobs removed."""
    pglite.reset()
    return pglite


@pytest.fixture
def ts_dsn(ts_empty: PGlite) -> str:
    """The server's database at the newest revision (no connection left open): sql/ loaded
    and stamped at head with Alembic. That is the schema migrating from zero gives
    (tests/migration/test_migrations_timescale.py asserts it, and runs `vigil migrate` on an
    empty database) at about half the server's CPU time: every revision's SQL run in the
    WebAssembly server before each test of this lane was a large share of the suite's time."""
    with psycopg.connect(ts_empty.dsn) as c:
        load_sql(c)
    command.stamp(alembic_config(ts_empty.url), "head")
    return ts_empty.dsn


@pytest.fixture
def ts_conn(ts_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(ts_dsn, autocommit=True) as c:
        yield c


def is_hypertable(conn: Conn, table: str) -> bool:
    """Whether vigil.<table> is a hypertable."""
    row = conn.execute(
        "select count(*) from timescaledb_information.hypertables"
        " where hypertable_schema = 'vigil' and hypertable_name = %s",
        (table,),
    ).fetchone()
    return row == (1,)


def policy(conn: Conn, proc: str, table: str) -> tuple[int, dict[str, Any]]:
    """The id and config of the policy job `proc` (policy_retention, policy_compression, ...)
    on vigil.<table>; run it with `call run_job(id)` (the test server has no scheduler)."""
    row = conn.execute(
        "select job_id, config from timescaledb_information.jobs"
        " where proc_name = %s and hypertable_schema = 'vigil' and hypertable_name = %s",
        (proc, table),
    ).fetchone()
    assert row is not None, f"no {proc} on vigil.{table}"
    job, config = row
    assert isinstance(config, dict)
    return int(str(job)), config


BOTH_MODES = [
    pytest.param("portable", id="portable"),
    pytest.param("timescale", id="timescale", marks=pytest.mark.timescale),
]


@pytest.fixture(params=BOTH_MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """The database mode of a test shared by both lanes."""
    return str(request.param)


@pytest.fixture
def db(mode: str, request: pytest.FixtureRequest) -> Conn:
    """One autocommit connection to a freshly migrated database of ``mode``."""
    conn: Conn = request.getfixturevalue("conn" if mode == "portable" else "ts_conn")
    return conn
