"""The embedded PostgreSQL cluster: a private server from the machine's own binaries.

It lives under a project-local directory, listens on 127.0.0.1 only, trusts local
connections (nobody else can reach it) and needs no root and no system service.
PostgreSQL refuses to run as root, so as root the server commands run as the
unprivileged `postgres` user (runuser), which then owns the data directory.
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
        """Initialise if needed, start unless running, and create the database."""
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
        self.create_database(self.dbname)

    def create_database(self, dbname: str) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute(QUERIES["database_exists"], (dbname,)).fetchone()
            if not exists:
                # Stays here: a database name is an identifier, which no parameter can carry.
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))

    def stop(self) -> None:
        if self.running():
            self._run(
                [str(find_bindir() / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data)]
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
