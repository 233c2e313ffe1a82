"""Fixtures of the failover tests: a primary and a hot standby in synchronous streaming
replication, built per test with vigil.cluster (docs/failover.md).

- `pair`: the two servers, the standby already streaming as the synchronous standby;
- `dsn` (overrides the suite's): the `vigil` database of the pair migrated through a
  multi-host URL, returned as the URL the Vigil processes get (primary first, then the
  standby, target_session_attrs=read-write). The suite's `conn` and `token` use it as is.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ARTIFACTS, free_port
from tests.support.processes import wait_until
from vigil.cluster import Cluster, multi_host_dsn, replication_conf
from vigil.migrate import upgrade

STANDBY_NAME = "vigil_standby"
DBNAME = "vigil"
SERVER_CONF = {"fsync": "off", "full_page_writes": "off", "max_connections": "200"}
"""Crash safety of one machine is not what these tests measure: the primary's postmaster
is killed, never the machine, so the standby's WAL survives in the page cache."""


def one(dsn: str, query: str, *params: object) -> object:
    """The first column of the first row of `query` on a fresh connection."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


@dataclass
class Pair:
    """A primary streaming synchronously to a hot standby; the standby can be promoted."""

    root: Path
    primary: Cluster
    standby: Cluster
    killed: list[str] = field(default_factory=list)
    """System V shared memory keys of crashed postmasters, removed at teardown."""

    @property
    def url(self) -> str:
        """What Vigil's processes get: both members, the writable one is used."""
        return multi_host_dsn([self.primary, self.standby], DBNAME)

    @property
    def query_url(self) -> str:
        """The same members spelled as query parameters (accepted by Alembic too)."""
        return multi_host_dsn([self.primary, self.standby], DBNAME, in_query=True)

    def sync_state(self) -> object:
        return one(
            self.primary.dsn("postgres"),
            "select sync_state from pg_stat_replication where application_name = %s",
            STANDBY_NAME,
        )

    def wait_replayed(self, timeout: float = 10) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        target = one(self.primary.dsn("postgres"), "select pg_current_wal_lsn()::text")
        wait_until(
            lambda: one(
                self.standby.dsn("postgres"),
                "select pg_last_wal_replay_lsn() >= %s::pg_lsn",
                target,
            ),
            timeout,
            "the standby to replay the primary's WAL",
        )

    def kill_primary(self) -> None:
        """SIGKILL to the primary's postmaster: no shutdown, no checkpoint, no goodbye to
        the standby. Its backends notice the death of their postmaster and exit."""
        pid = self.primary.postmaster_pid()
        assert pid is not None, "the primary is not running"
        lines = (self.primary.data / "postmaster.pid").read_text().splitlines()
        if len(lines) >= 7 and lines[6].split():
            self.killed.append(lines[6].split()[0])
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), 10, "the primary's postmaster to die")

    def promote(self) -> None:
        self.standby.promote()

    def close(self) -> None:
        for cluster in (self.standby, self.primary):
            try:
                cluster.stop("immediate")  # both are deleted right after
            except Exception as exc:  # teardown goes on: the other server, the files
                print(f"stopping {cluster.root.name}: {exc}")
        for key in self.killed:
            # A crashed postmaster leaves its small System V segment behind; it goes away
            # once the last of its orphaned backends has exited.
            subprocess.run(["ipcrm", "-M", key], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie until its parent (init, after pg_ctl's daemonising) reaps it.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def start_pair(initialized: Path | None = None) -> Pair:
    """A new pair; the primary's data directory is a copy of `initialized` (a fresh initdb,
    which takes longer than a copy) when given."""
    root = Path(tempfile.mkdtemp(prefix="vigil-failover-"))
    root.chmod(0o755)  # the servers run as the unprivileged postgres user when we are root
    primary = Cluster(
        root / "primary",
        free_port(),
        conf={**SERVER_CONF, **replication_conf(STANDBY_NAME)},
        dbname=DBNAME,
    )
    pair = Pair(root, primary, primary)  # the standby is the primary until it exists
    try:
        if initialized is not None:
            primary.root.mkdir()
            # -a keeps the owner (the postgres user when we are root) and the 0700 mode.
            subprocess.run(["cp", "-a", str(initialized), str(primary.data)], check=True)
        primary.start()
        pair.standby = primary.base_backup(root / "standby", free_port(), STANDBY_NAME)
        pair.standby.start()
        wait_until(lambda: pair.sync_state() == "sync", 15, "the standby to be synchronous")
    except BaseException:
        pair.close()
        raise
    return pair


@pytest.fixture(scope="session")
def initialized_data() -> Iterator[Path]:
    """One initdb for the session; each pair's primary starts from a copy."""
    root = Path(tempfile.mkdtemp(prefix="vigil-failover-initdb-"))
    root.chmod(0o755)
    cluster = Cluster(root / "initdb", free_port())
    try:
        cluster.init()
        yield cluster.data
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pair(initialized_data: Path) -> Iterator[Pair]:
    pair = start_pair(initialized_data)
    try:
        yield pair
    finally:
        pair.close()


@pytest.fixture
def dsn(pair: Pair) -> str:
    """The pair's database, migrated; the multi-host URL of the Vigil processes."""
    upgrade(pair.query_url)
    return pair.url


def record_figures(name: str, figures: dict[str, object]) -> None:
    """Prints measured figures and keeps them in test-artifacts/failover.json."""
    print(f"\n{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "failover.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    known[name] = figures
    path.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")
