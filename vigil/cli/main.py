"""The `vigil` command: run, api, notifier, migrate, token create|list|revoke|rotate."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, ModuleType

import psycopg

from vigil import QUERIES, tokens
from vigil.cli import block as block_cli
from vigil.cli import checks, jobs, operators, psql, services, simulate
from vigil.cli import metrics as metrics_cli
from vigil.cli import public as public_cli
from vigil.cli import stat as stat_cli
from vigil.cli import trace as trace_cli
from vigil.cli.alerting import alerts, rules, silences
from vigil.cli.operators import print_first_login_link
from vigil.cluster import ClusterError, database_url, embedded_cluster
from vigil.db import Conn, mode
from vigil.logs import configure_logging
from vigil.send import cli as send
from vigil.settings import Settings, SettingsError
from vigil.supervisor import Supervisor, Watched

Command = Callable[[Settings, argparse.Namespace], int]

QUICKSTART_TOKEN = "quickstart"  # noqa: S105 (a token name, not a secret)
QUICKSTART_FILE = "quickstart-token"
"""Under VIGIL_DATA_DIR, mode 0600: the quickstart token, reused by every `vigil run` while it
is active (the database keeps only its SHA-256), so a line copied from the first banner keeps
working; `vigil token rotate quickstart` (or revoke) replaces it."""


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    from vigil.migrate import upgrade

    with database_url(settings) as url:
        upgrade(url)
        with psycopg.connect(url) as conn:
            active_mode, reason = mode(conn)
    print(f"migrated; {active_mode} mode: {reason}")
    return 0


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url, psycopg.connect(url, autocommit=True) as conn:
        if args.action == "create":
            token = tokens.create(conn, args.name)
            print(f"token {args.name!r} created; it is shown only this once:", file=sys.stderr)
            print(token)
        elif args.action == "rotate":
            tokens.revoke(conn, args.name)
            token = tokens.create(conn, args.name)
            if args.name == QUICKSTART_TOKEN:
                _keep_quickstart(settings.data_dir / QUICKSTART_FILE, token)
            print(f"token {args.name!r} replaced; the old one no longer works:", file=sys.stderr)
            print(token)
        elif args.action == "revoke":
            if not tokens.revoke(conn, args.name):
                print(f"no active token named {args.name!r}", file=sys.stderr)
                return 1
            print(f"token {args.name!r} revoked")
        else:
            print(f"{'id':>4}  {'name':<24} {'created':<20} {'last used':<20} revoked")
            for t in tokens.list_tokens(conn):
                print(
                    f"{t.id:>4}  {t.name:<24} {t.created_at:%Y-%m-%d %H:%M:%S}  "
                    f"{t.last_used_at or '-'!s:<20} {t.revoked_at or ''}"
                )
    return 0


def exec_role(role: str) -> Command:
    """A subcommand that becomes the process `python -m ROLE` (api, notifier, prober)."""

    def run(settings: Settings, _: argparse.Namespace) -> int:
        settings.require_database_url()  # the clear message before anything starts
        os.execv(sys.executable, [sys.executable, "-m", role])  # noqa: S606 (no shell)

    return run


def _keep_quickstart(path: Path, token: str) -> bool:
    """Writes the quickstart token to `path` (0600 from the start, replaced atomically);
    False, with a warning, where it cannot be kept (a read-only data directory)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(token + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        print(f"vigil: cannot keep the quickstart token in {path}: {exc}", file=sys.stderr)
        return False
    return True


def quickstart_token(conn: Conn, path: Path) -> str:
    """The token kept in `path` while it is the active quickstart token; else a new one
    (the old one revoked), kept there for the next start."""
    try:
        kept = path.read_text().strip()
    except OSError:
        kept = ""
    if kept:
        row = conn.execute(
            QUERIES["token_active"], (QUICKSTART_TOKEN, tokens.secret_hash(kept))
        ).fetchone()
        if row and row[0]:
            return kept
    tokens.revoke(conn, QUICKSTART_TOKEN)
    token = tokens.create(conn, QUICKSTART_TOKEN)
    _keep_quickstart(path, token)
    return token


def _quickstart(url: str, settings: Settings) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        token = quickstart_token(conn, settings.data_dir / QUICKSTART_FILE)
    base = f"http://{settings.host}:{settings.port}"
    print(
        f"""
Vigil serves on {base}   (health: {base}/health)
Send a first heartbeat (the '{QUICKSTART_TOKEN}' token stays the same across restarts;
`.venv/bin/vigil token rotate {QUICKSTART_TOKEN}` replaces it, `token create NAME` makes more):

  curl -sS -H 'Authorization: Bearer {token}' \\
       -d '{{"host":"web-1","name":"backup","type":"ping","value":"5"}}' {base}/metric

metrics-sender and other URL-only senders can use {base}/t/{token}
""",
        flush=True,
    )


def cmd_run(settings: Settings, _: argparse.Namespace) -> int:
    """Embedded default: private PostgreSQL (unless DATABASE_URL), migrate, then api,
    notifier and prober under the supervisor (a role that dies is restarted)."""
    from vigil.migrate import upgrade

    configure_logging()
    cluster = None if settings.database_url else embedded_cluster(settings)
    if cluster is not None:
        print(
            f"starting the embedded PostgreSQL in {cluster.root} (port {cluster.port})", flush=True
        )
        cluster.start()
    url = settings.database_url or (cluster.dsn() if cluster else "")
    try:
        upgrade(url)
        _quickstart(url, settings)
        print_first_login_link(url, settings)
        watched = [Watched("database", cluster.running, cluster.start)] if cluster else []
        supervisor = Supervisor(
            RUN_ROLES,
            {**os.environ, "DATABASE_URL": url},
            settings.data_dir / "run-status.json",
            watched,
        )

        def stop(signum: int, _: FrameType | None) -> None:
            if signum == signal.SIGINT and not supervisor.stop_event.is_set():
                print("\nvigil: stopping", file=sys.stderr, flush=True)  # after the ^C
            supervisor.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        return supervisor.run()
    finally:
        if cluster is not None:
            cluster.stop()


# Other modules add subcommands: each exposes register(subparsers) -> dict[name, handler],
# where a handler is (settings, args) -> exit code.
COMMAND_MODULES: tuple[ModuleType, ...] = (
    operators,
    services,
    simulate,
    checks,
    jobs,
    rules,
    alerts,
    silences,
    send,
    psql,
    public_cli,
    trace_cli,
    stat_cli,
    metrics_cli,
    block_cli,
)

# The processes `vigil run` starts and supervises: `python -m ROLE`, also `vigil ROLE`.
RUN_ROLES: tuple[str, ...] = ("api", "notifier", "prober")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Command]]:
    """The parser of every subcommand, and the handler of each."""
    parser = argparse.ArgumentParser(prog="vigil", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="embedded database (unless DATABASE_URL), migrate, api + notifier")
    sub.add_parser("api", help="serve the HTTP API (VIGIL_HOST:VIGIL_PORT)")
    sub.add_parser("notifier", help="relay the outbox to Telegram; drive jobs in portable mode")
    sub.add_parser("prober", help="check the services' URLs on schedule (uptime)")
    sub.add_parser("migrate", help="migrate DATABASE_URL (or the embedded database) to head")
    token = sub.add_parser("token", help="sender API tokens")
    token_sub = token.add_subparsers(dest="action", required=True)
    token_sub.add_parser("create", help="create a token; prints it as the last line").add_argument(
        "name"
    )
    token_sub.add_parser("list", help="list tokens (never their values)")
    revoke = token_sub.add_parser("revoke", help="revoke the active token of that name")
    revoke.add_argument("name")
    rotate = token_sub.add_parser(
        "rotate", help="revoke and create again; prints the new token as the last line"
    )
    rotate.add_argument("name")
    commands = dict(COMMANDS)
    for module in COMMAND_MODULES:
        commands.update(module.register(sub))
    return parser, commands


COMMANDS: dict[str, Command] = {
    "run": cmd_run,
    "api": exec_role("api"),
    "notifier": exec_role("notifier"),
    "prober": exec_role("prober"),
    "migrate": cmd_migrate,
    "token": cmd_token,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        return commands[args.command](settings, args)
    except (SettingsError, ClusterError) as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 2
    except psycopg.Error as exc:
        print(f"vigil: database error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl+C before `vigil run` serves, or in another command
        print("\nvigil: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
