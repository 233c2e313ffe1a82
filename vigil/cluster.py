"""The embedded PostgreSQL cluster: a private server from the machine's own binaries.

It lives under a project-local directory, listens on 127.0.0.1 only, trusts local
connections (nobody else can reach it) and needs no root and no system service.
PostgreSQL refuses to run as root, so as root the server commands run as the
unprivileged `postgres` user (runuser), which then owns the data directory.

Streaming replication (docs/failover.md) uses the same class: a primary started with
`replication_conf(...)`, a hot standby made by `base_backup` (pg_basebackup -R) and
started on its own port, `promote` to make it the primary. initdb's pg_hba.conf already
trusts replication connections from 127.0.0.1.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from vigil import QUERIES
from vigil.settings import Settings

SERVER_USER = "postgres"
SUPERUSER = "vigil"
SYNC_SETTINGS = ("synchronous_standby_names", "synchronous_commit")
"""Settings of a primary that wait for its standby: never copied to the standby, which,
once promoted, has no standby of its own to wait for (every commit would hang)."""


class ClusterError(RuntimeError):
    """The embedded server could not be set up or started; the message says why."""


def find_bindir() -> Path:
    """Directory of the newest installed PostgreSQL server binaries."""
    candidates = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise ClusterError(
        "no PostgreSQL server binaries found (initdb); install them with "
        "`apt-get install postgresql` or set DATABASE_URL to an existing database"
    )


def replication_conf(synchronous_standby: str | None = None) -> dict[str, str]:
    """Server settings of a primary that streams its WAL to standbys (and of a standby,
    which needs the same wal_level and at least the same max_wal_senders).

    With `synchronous_standby` (a standby's application_name, a plain word), a commit
    returns only once that standby has flushed its WAL: an acknowledged write survives the
    loss of the primary, and writes wait while the standby is down.
    """
    conf = {"wal_level": "replica", "max_wal_senders": "10", "hot_standby": "on"}
    if synchronous_standby:
        conf["synchronous_standby_names"] = synchronous_standby
        conf["synchronous_commit"] = "on"
    return conf


def multi_host_dsn(
    clusters: Sequence[Cluster],
    dbname: str,
    target_session_attrs: str = "read-write",
    *,
    in_query: bool = False,
) -> str:
    """One libpq URL listing every member: a connection goes to the first that is up and
    matches `target_session_attrs` (read-write: the primary, whichever member it is).

    `postgresql://u@h1:p1,h2:p2/db?...` by default; with `in_query`, the same list as
    `postgresql://u@/db?host=h1,h2&port=p1,p2&...`, the spelling SQLAlchemy (Alembic, so
    `vigil migrate`) accepts as well.
    """
    attrs = f"target_session_attrs={target_session_attrs}"
    if in_query:
        hosts = ",".join("127.0.0.1" for _ in clusters)
        ports = ",".join(str(c.port) for c in clusters)
        return f"postgresql://{SUPERUSER}@/{dbname}?host={hosts}&port={ports}&{attrs}"
    members = ",".join(f"127.0.0.1:{c.port}" for c in clusters)
    return f"postgresql://{SUPERUSER}@{members}/{dbname}?{attrs}"


@dataclass
class Cluster:
    """A PostgreSQL cluster under `root` (data/, run/ for the socket, server.log)."""

    root: Path
    port: int
    conf: Mapping[str, str] = field(default_factory=dict)
    dbname: str = "vigil"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sockets(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def dsn(self, dbname: str | None = None) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname or self.dbname}"

    def _as_server_user(self, argv: Sequence[str]) -> list[str]:
        if os.geteuid() != 0:
            return list(argv)
        return ["runuser", "-u", SERVER_USER, "--", *argv]

    def _run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self._as_server_user(argv), capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise ClusterError(f"{Path(argv[0]).name} failed: {proc.stderr.strip()}")
        return proc

    def _prepare_dirs(self) -> None:
        self.sockets.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVER_USER)
            for path in (self.root, self.sockets, *(self.root.glob("data"))):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            # The server user must be able to reach the directory through its parents.
            for parent in self.root.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    raise ClusterError(
                        f"{parent} is not searchable by the {SERVER_USER} user; "
                        f"choose VIGIL_DATA_DIR elsewhere or `chmod o+x {parent}`"
                    )

    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    @property
    def standby(self) -> bool:
        """Whether the data directory starts as a standby (standby.signal, until promoted)."""
        return (self.data / "standby.signal").exists()

    def postmaster_pid(self) -> int | None:
        """The PID in postmaster.pid (the server's, or a crashed server's), if any."""
        try:
            first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return None
        return int(first) if first.strip().isdigit() else None

    def running(self) -> bool:
        if not self.initialized():
            return False
        bindir = find_bindir()
        proc = subprocess.run(
            self._as_server_user([str(bindir / "pg_ctl"), "status", "-D", str(self.data)]),
            capture_output=True,
            check=False,
        )
        return proc.returncode == 0

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._prepare_dirs()
        if self.initialized():
            return
        bindir = find_bindir()
        self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )

    def start(self) -> None:
        """Initialise if needed, start unless running, and create the database (a standby
        is read-only: its databases come from the primary)."""
        self.init()
        if not self.running():
            bindir = find_bindir()
            options = [
                f"-p {self.port}",
                f"-k {self.sockets}",
                "-c listen_addresses=127.0.0.1",
                *(f"-c {key}={value}" for key, value in self.conf.items()),
            ]
            self._run(
                [
                    str(bindir / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    " ".join(options),
                ]
            )
        if not self.standby:
            self.create_database(self.dbname)

    def create_database(self, dbname: str) -> None:
        # A local commit: a primary whose synchronous standby does not exist yet (it is
        # made from this very cluster) would otherwise wait for it forever.
        with psycopg.connect(
            self.dsn("postgres"), autocommit=True, options="-c synchronous_commit=local"
        ) as conn:
            exists = conn.execute(QUERIES["database_exists"], (dbname,)).fetchone()
            if not exists:
                # Stays here: a database name is an identifier, which no parameter can carry.
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))

    def stop(self, mode: str = "fast") -> None:
        """Stops the server if it runs: `fast` (a clean shutdown), or `immediate` (no
        shutdown checkpoint: crash recovery at the next start; for data thrown away)."""
        if self.running():
            self._run(
                [str(find_bindir() / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data)]
            )

    def base_backup(
        self,
        root: Path,
        port: int,
        application_name: str,
        conf: Mapping[str, str] | None = None,
    ) -> Cluster:
        """A hot standby of this (running) cluster under `root`, not yet started.

        pg_basebackup copies the data directory over a replication connection and, with
        -R, writes standby.signal and primary_conninfo (with `application_name`, the name
        synchronous_standby_names refers to). The standby's settings are `conf`, by default
        this cluster's without SYNC_SETTINGS.
        """
        standby_conf = (
            dict(conf)
            if conf is not None
            else {k: v for k, v in self.conf.items() if k not in SYNC_SETTINGS}
        )
        standby = Cluster(root, port, conf=standby_conf, dbname=self.dbname)
        if standby.data.exists():
            raise ClusterError(f"{standby.data} exists; a base backup needs an empty place")
        root.mkdir(parents=True, exist_ok=True)
        standby._prepare_dirs()
        source = (
            f"host=127.0.0.1 port={self.port} user={SUPERUSER} application_name={application_name}"
        )
        self._run(
            [
                str(find_bindir() / "pg_basebackup"),
                "-D",
                str(standby.data),
                "-d",
                source,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                # A cluster run without fsync does not need its copy flushed to disk either.
                *(["--no-sync"] if self.conf.get("fsync") == "off" else []),
            ]
        )
        return standby

    def promote(self, timeout: int = 60) -> None:
        """Ends recovery of a standby: it becomes a primary (pg_ctl promote, waits)."""
        self._run(
            [
                str(find_bindir() / "pg_ctl"),
                "promote",
                "-w",
                "-t",
                str(timeout),
                "-D",
                str(self.data),
            ]
        )


def embedded_cluster(settings: Settings) -> Cluster:
    """The embedded cluster of these settings (VIGIL_DATA_DIR/pg, VIGIL_EMBEDDED_PG_PORT)."""
    return Cluster(settings.data_dir / "pg", settings.embedded_pg_port)


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """DATABASE_URL, or the embedded cluster's (started for the command if it is down)."""
    if settings.database_url:
        yield settings.database_url
        return
    cluster = embedded_cluster(settings)
    was_running = cluster.running()
    cluster.start()
    try:
        yield cluster.dsn()
    finally:
        if not was_running:
            cluster.stop()
