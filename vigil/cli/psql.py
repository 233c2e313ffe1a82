"""`vigil psql [-- PSQL_ARGS...]`: psql on Vigil's database.

The database is DATABASE_URL, or the embedded cluster (its superuser is `vigil`, on
127.0.0.1 at VIGIL_EMBEDDED_PG_PORT, database `vigil`; `-U postgres` is not a role there).
When the embedded cluster is not running, it is started for the session and stopped after
it. A password in DATABASE_URL reaches psql through PGPASSWORD, never its command line
(which `ps` shows to every user of the machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from vigil.cluster import ClusterError, embedded_cluster, find_bindir
from vigil.settings import Settings

Handler = Callable[[Settings, argparse.Namespace], int]


def find_psql() -> str:
    """psql on the PATH, else next to the server binaries."""
    found = shutil.which("psql")
    if found:
        return found
    candidate = find_bindir() / "psql"
    if candidate.exists():
        return str(candidate)
    raise ClusterError("psql is not installed (`apt-get install postgresql-client`)")


def psql_command(
    url: str, args: list[str], environ: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of psql on `url` with extra `args`; any password moves
    from the connection string to PGPASSWORD."""
    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    password = params.pop("password", None)
    env = dict(environ)
    if password is not None:
        env["PGPASSWORD"] = password
    return [find_psql(), "--dbname", make_conninfo(**params), *args], env


def _args(args: argparse.Namespace) -> list[str]:
    extra = list(args.psql_args)
    return extra[1:] if extra[:1] == ["--"] else extra


def cmd_psql(settings: Settings, args: argparse.Namespace) -> int:
    extra = _args(args)
    cluster = None if settings.database_url else embedded_cluster(settings)
    if cluster is None or cluster.running():
        url = settings.database_url or (cluster.dsn() if cluster else "")
        argv, env = psql_command(url, extra, os.environ)
        os.execve(argv[0], argv, env)  # noqa: S606 (no shell)
    assert cluster is not None
    cluster.start()
    try:
        argv, env = psql_command(cluster.dsn(), extra, os.environ)
        # psql handles Ctrl+C itself (it cancels the running query); this process waits.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return subprocess.run(argv, env=env, check=False).returncode
        finally:
            signal.signal(signal.SIGINT, previous)
    finally:
        cluster.stop()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Handler]:
    parser = sub.add_parser(
        "psql",
        help="psql on DATABASE_URL or the embedded database (vigil psql -- -c 'select 1')",
    )
    parser.add_argument("psql_args", nargs=argparse.REMAINDER, help="passed to psql, after `--`")
    return {"psql": cmd_psql}
