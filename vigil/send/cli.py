"""`vigil send file|journal|ping|disk|docker|run`: the command line of the sender."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shlex
import socket
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from vigil.send.beats import (
    DockerError,
    HealthchecksPinger,
    RunResult,
    Sender,
    disk_percent,
    docker_containers,
    report,
    run_command,
)
from vigil.send.client import Client, ConfigError, Refused, Target, resolve
from vigil.send.files import Fatal, FileSender, Options
from vigil.send.journal import JournalOptions, JournalSender
from vigil.send.lines import FORMATS
from vigil.send.spool import StateLocked, Store

log = logging.getLogger("vigil.send")


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    return parse


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    factor = units.get(t[-1:], 1)
    try:
        value = int(float(t[:-1] if t[-1:] in units else t) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 100M)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def state_home() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "vigil"


def default_state_file(kind: str, keys: list[str]) -> Path:
    digest = hashlib.sha256("\0".join(keys).encode()).hexdigest()[:12]
    return state_home() / f"send-{kind}-{digest}.json"


def _target(args: argparse.Namespace) -> Target:
    return resolve(args.url, args.token, args.config)


def _client(args: argparse.Namespace) -> Client | None:
    """The client, or None for --dry-run (which still needs no URL)."""
    if args.dry_run:
        return None
    return Client(_target(args))


def cmd_file(args: argparse.Namespace) -> int:
    paths = [Path(os.path.abspath(p)) for p in args.paths]
    state_file = Path(args.state_file) if args.state_file else None
    if state_file is None:
        state_file = default_state_file("file", sorted(map(str, paths)))
    options = Options(
        paths=paths,
        format=args.format,
        follow=args.follow,
        now=args.now,
        group=args.group,
        host=args.host,
        batch_lines=args.batch_lines,
        batch_bytes=args.batch_bytes,
        batch_wait=args.batch_wait,
        poll=args.poll,
        settle=args.partial_timeout,
        retry_for=args.retry_for,
        spool_max_bytes=args.spool_max,
    )
    client = _client(args)
    store = None
    try:
        store = None if args.dry_run else Store(state_file, options.spool_max_bytes)
        resume = None
        if store is None and state_file.exists():  # a dry run starts where a run would
            resume = json.loads(state_file.read_bytes())
        sender = FileSender(options, store, client, resume=resume)
        return sender.run()
    finally:
        if store is not None:
            store.close()
        if client is not None:
            client.close()


def cmd_journal(args: argparse.Namespace) -> int:
    keys = [args.directory or "", *args.file]
    state_file = Path(args.state_file) if args.state_file else default_state_file("journal", keys)
    options = JournalOptions(
        state_file=state_file,
        follow=args.follow,
        since=None if args.since == "all" else args.since,
        directory=args.directory,
        files=tuple(args.file),
        batch_lines=args.batch_lines,
        batch_bytes=args.batch_bytes,
        batch_wait=args.batch_wait,
        retry_for=args.retry_for,
    )
    client = _client(args)
    try:
        return JournalSender(options, client).run()
    finally:
        if client is not None:
            client.close()


def cmd_ping(args: argparse.Namespace) -> int:
    value = str(args.minutes) if args.minutes is not None else None
    with closing(Sender(_client(args), retry_for=args.retry_for)) as sender:
        ok = sender.metric(report(args.host, args.name, "ping", value))
    return 0 if ok else 1


def cmd_disk(args: argparse.Namespace) -> int:
    mounts = [m for part in args.mounts for m in part.split(",") if m] or ["/"]
    with closing(Sender(_client(args), retry_for=args.retry_for)) as sender:
        ok = all([sender.metric(report(args.host, m, "disk", disk_percent(m))) for m in mounts])
    return 0 if ok else 1


def cmd_docker(args: argparse.Namespace) -> int:
    try:
        names = docker_containers(args.docker)
    except (DockerError, OSError) as exc:
        print(f"vigil send docker: {exc}", file=sys.stderr)
        return 1
    value = str(args.minutes) if args.minutes is not None else None
    with closing(Sender(_client(args), retry_for=args.retry_for)) as sender:
        ok = all([sender.metric(report(args.host, f"container {n}", "ping", value)) for n in names])
    return 0 if ok else 1


def cmd_run(args: argparse.Namespace) -> int:
    command = list(args.job)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("vigil send run: give the command after --", file=sys.stderr)
        return 2
    name = args.name or Path(command[0]).name
    pinger: HealthchecksPinger | None = None
    if args.check or args.ping_url:
        if args.ping_url:
            url, shown = args.ping_url, args.ping_url.rsplit("/", 1)[0] + "/<secret>"
        else:
            base = _target(args).url
            url, shown = f"{base}/ping/{args.check}", f"{base}/ping/<secret>"
        pinger = HealthchecksPinger(url, shown, args.dry_run)
    heartbeat = pinger is None or args.name is not None
    sender = Sender(_client(args), retry_for=args.retry_for) if heartbeat else None
    try:
        if pinger is not None:
            pinger.ping("start", retry_for=min(args.retry_for, 10.0))
        result = run_command(command)
        if pinger is not None:
            pinger.ping(str(result.status), result.tail, retry_for=args.retry_for)
        if sender is not None:
            if result.status == 0:
                value = str(args.minutes) if args.minutes is not None else None
                sender.metric(report(args.host, name, "ping", value))
            sender.journal(job_record(args.host, name, command, result))
    finally:
        if pinger is not None:
            pinger.close()
        if sender is not None:
            sender.close()
    return result.status


def job_record(host: str, name: str, command: list[str], result: RunResult) -> dict[str, str]:
    """The journal line of one run of a job."""
    outcome = "succeeded" if result.status == 0 else "failed"
    return {
        "__REALTIME_TIMESTAMP": str(time.time_ns() // 1000),
        "_HOSTNAME": host,
        "SYSLOG_IDENTIFIER": name,
        "PRIORITY": "6" if result.status == 0 else "3",
        "MESSAGE": f"job {name} {outcome}: exit status {result.status} after "
        f"{result.seconds:.1f} s",
        "VIGIL_JOB": name,
        "VIGIL_COMMAND": shlex.join(command),
        "EXIT_STATUS": str(result.status),
        "DURATION_SECONDS": f"{result.seconds:.3f}",
        "OUTPUT_TAIL": result.tail.decode("utf-8", "backslashreplace"),
    }


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="Vigil's base URL (default: $VIGIL_URL, the config file)")
    common.add_argument(
        "--token", help="sender token (default: $VIGIL_TOKEN, $VIGIL_TOKEN_FILE, the config file)"
    )
    common.add_argument(
        "--config",
        help="TOML file with url and token (default: ~/.config/vigil/send.toml, "
        "then /etc/vigil/send.toml)",
    )
    common.add_argument("--dry-run", action="store_true", help="print what would be sent")
    common.add_argument(
        "--host", default=socket.gethostname(), help="host name sent (default: this machine's)"
    )
    common.add_argument(
        "--retry-for",
        type=_positive(float),
        default=60.0,
        help="seconds to keep retrying while Vigil is unreachable, without --follow (default 60)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="say more on stderr")
    return common


def _batching(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-lines", type=_positive(int), default=1000, help="default 1000")
    parser.add_argument("--batch-bytes", type=_size, default=1 << 20, help="default 1M")
    parser.add_argument(
        "--batch-wait", type=_positive(float), default=1.0, help="seconds (default 1)"
    )
    parser.add_argument("--state-file", help="where the position is kept")


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "file": cmd_file,
    "journal": cmd_journal,
    "ping": cmd_ping,
    "disk": cmd_disk,
    "docker": cmd_docker,
    "run": cmd_run,
}


def register(subparsers: Any) -> dict[str, Any]:
    send = subparsers.add_parser(
        "send", help="send files, the journal, pings and disk usage to Vigil over HTTP"
    )
    kinds = send.add_subparsers(dest="send_kind", required=True)
    common = _common()

    f = kinds.add_parser("file", parents=[common], help="tail files into the journal")
    f.add_argument("paths", nargs="+", metavar="PATH")
    f.add_argument("--format", choices=sorted(FORMATS), default="auto")
    f.add_argument("--follow", "-F", action="store_true", help="keep following (like tail -F)")
    f.add_argument("--now", action="store_true", help="stamp every line with the time it is read")
    f.add_argument("--group", help="name of the application these files belong to (the unit)")
    f.add_argument("--poll", type=_positive(float), default=0.2, help="seconds (default 0.2)")
    f.add_argument(
        "--partial-timeout",
        type=_positive(float),
        default=5.0,
        help="seconds a last line without newline waits before it is sent at exit or "
        "rotation (default 5)",
    )
    f.add_argument(
        "--spool-max", type=_size, default=100 << 20, help="spool size cap (default 100M)"
    )
    _batching(f)

    j = kinds.add_parser("journal", parents=[common], help="journald via journalctl -o json")
    j.add_argument("--follow", "-f", action="store_true", help="keep following")
    j.add_argument(
        "--since",
        default="-1h",
        help="first run only (no cursor yet): journalctl --since (default -1h; 'all': "
        "the whole journal)",
    )
    j.add_argument("--directory", "-D", help="journal directory (journalctl -D)")
    j.add_argument("--file", action="append", default=[], help="journal file (journalctl --file)")
    _batching(j)

    p = kinds.add_parser("ping", parents=[common], help="a heartbeat ping")
    p.add_argument("name")
    p.add_argument("--minutes", type=_positive(int), help="alert when no ping for N minutes")

    d = kinds.add_parser("disk", parents=[common], help="disk usage of mount points")
    d.add_argument("--mounts", nargs="*", default=[], help="mount points (default /)")

    k = kinds.add_parser("docker", parents=[common], help="a ping per running container")
    k.add_argument("--minutes", type=_positive(int), help="alert when no ping for N minutes")
    k.add_argument("--docker", default="docker", help="the docker CLI (default: docker on PATH)")

    r = kinds.add_parser(
        "run",
        parents=[common],
        help="run a cron job and report start, success or failure",
        description="Runs CMD, passes its output through, and exits with its status. With "
        "--check (a push check's secret in Vigil) or --ping-url (any Healthchecks-compatible "
        "URL): pings /start, then /<exit status> with the output tail. Otherwise, or with "
        "--name as well: a heartbeat ping NAME on success and a journal line either way.",
    )
    r.add_argument("--name", help="heartbeat name (default: the command's name)")
    r.add_argument("--minutes", type=_positive(int), help="heartbeat deadline in minutes")
    r.add_argument("--check", help="the push check's secret: pings VIGIL_URL/ping/SECRET")
    r.add_argument("--ping-url", help="a Healthchecks-style ping URL")
    r.add_argument("job", nargs=argparse.REMAINDER, metavar="-- CMD")

    return {"send": run}


def run(_settings: object, args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="vigil send: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "httpcore"):  # their request lines carry URLs (ping secrets)
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return HANDLERS[args.send_kind](args)
    except (ConfigError, Fatal, StateLocked, ValueError) as exc:
        print(f"vigil send: {exc}", file=sys.stderr)
        return 2
    except Refused as exc:
        print(f"vigil send: Vigil refused the request: {exc}", file=sys.stderr)
        return 2
