"""`vigil alerts [--json] [--all]`, `vigil alerts observe`, `vigil alerts history` and
`vigil alerts get|meta NAME`: the alert instances (the view vigil.alerts), their history
(vigil.alert_history), one rule's instances and its definition."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg

from vigil.cli.alerting import QUERIES
from vigil.cli.alerting.common import (
    NO_RULE,
    CliError,
    Conn,
    Handler,
    OneLineParser,
    Row,
    ago,
    fetch,
    jsonable,
    matchers_text,
    number,
    print_json,
    reader_gone,
    require,
    run_with_connection,
    table,
    utc,
)
from vigil.cluster import database_url
from vigil.durations import positive_seconds
from vigil.settings import Settings

CLEAR_SCREEN = "\x1b[H\x1b[2J"


def alert_json(row: Row) -> dict[str, Any]:
    """An instance for scripts: `vigil alerts --json`, `vigil rules show --json` (the columns
    of alert_list)."""
    return jsonable(row)


def marks(row: Row) -> str:
    """silenced (a silence or a maintenance window) / suppressed (a firing parent)."""
    return ",".join(m for m in ("silenced", "suppressed") if row[m]) or "-"


def alert_table(rows: Iterable[Row], with_rule: bool = True) -> str:
    now = datetime.now(UTC)
    headers = (
        "state",
        *(("rule",) if with_rule else ()),
        "instance",
        "value",
        "since",
        "for",
        "severity",
        "marks",
        "reason",
    )
    return table(
        headers,
        (
            (
                r["state"],
                *((r["rule"],) if with_rule else ()),
                r["instance_text"],
                number(r["value"], r["value_text"]),
                utc(r["since"]),
                ago(r["since"], now),
                r["severity"],
                marks(r),
                r["reason"] or "-",
            )
            for r in rows
        ),
    )


def _list(conn: Conn, args: argparse.Namespace) -> int:
    rows = fetch(conn, QUERIES["alert_list"], {"rule": None, "all": args.all, "recent": True})
    if args.json:
        print_json([alert_json(r) for r in rows])
    elif rows:
        print(alert_table(rows))
    else:
        print("no alert instances" if args.all else "nothing is firing or pending")
    return 0


def _history(conn: Conn, args: argparse.Namespace) -> int:
    if args.rule is not None:
        require(conn, QUERIES["rule_exists"], (args.rule,), NO_RULE.format(name=args.rule))
    rows = fetch(conn, QUERIES["alert_history"], {"rule": args.rule, "limit": args.limit})
    if args.json:
        print_json([jsonable(r) for r in rows])  # the query's columns are the JSON fields
        return 0
    if not rows:
        print("no alert history yet")
        return 0
    print(
        table(
            ("at", "rule", "instance", "change", "value", "message", "reason"),
            (
                (
                    utc(r["at"]),
                    r["rule"],
                    r["instance_text"],
                    "reminder"
                    if r["kind"] == "reminder"
                    else f"{r['from_state']} -> {r['to_state']}",
                    number(r["value"], r["value_text"]),
                    r["message_status"] or (f"withheld: {r['withheld']}" if r["withheld"] else "-"),
                    r["reason"] or "-",
                )
                for r in rows
            ),
        )
    )
    return 0


def _get(conn: Conn, args: argparse.Namespace) -> int:
    """`vigil alerts get NAME`: the rule's instances (every one, firing first) with state,
    value and since; `--json`: the objects of `vigil alerts --json`."""
    require(conn, QUERIES["rule_exists"], (args.name,), NO_RULE.format(name=args.name))
    rows = fetch(conn, QUERIES["alert_list"], {"rule": args.name, "all": True, "recent": True})
    if args.json:
        print_json([alert_json(r) for r in rows])
    elif rows:
        print(alert_table(rows, with_rule=False))
    else:
        print(f"rule {args.name!r} has no instances yet (see `vigil alerts meta {args.name}`)")
    return 0


def _meta(conn: Conn, args: argparse.Namespace) -> int:
    """`vigil alerts meta NAME`: the rule's definition, as `vigil rules show` prints it
    without the instances; `--json`: the object of `vigil rules show --json` without them."""
    from vigil.cli.alerting.rules import rule_json

    rows = fetch(conn, QUERIES["rule_list"], {"name": args.name})
    if not rows:
        raise CliError(NO_RULE.format(name=args.name))
    shown = rule_json(rows[0])
    if args.json:
        print_json(shown)
        return 0
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        if isinstance(value, dict):
            value = matchers_text(value)
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value) or "-"
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, float):
            value = number(value)
        print(f"{key:<{width}}  {'-' if value is None else value}")
    return 0


def _frame(conn: Conn) -> str:
    rows = fetch(conn, QUERIES["alert_list"], {"rule": None, "all": False, "recent": False})
    if not rows:
        return "nothing is firing or pending"
    firing = sum(1 for r in rows if r["state"] == "firing")
    summary = f"{firing} firing, {len(rows) - firing} pending"
    return summary + "\n\n" + alert_table(rows)


def observe(url: str, interval: float, count: int | None) -> int:
    """Redraws the firing and pending instances every `interval` seconds, as `watch` does,
    until Ctrl-C (or `count` frames). A lost database is shown and retried, not fatal."""
    conn: Conn | None = None
    frames = 0
    clear = sys.stdout.isatty()
    # Ctrl-C (SIGINT) ends the loop between frames: never in the middle of a query, where
    # an interrupt would leave the connection to be cancelled and closed under a load.
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        while not stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
                body = _frame(conn)
            except psycopg.OperationalError as exc:
                first = (str(exc).strip().splitlines() or ["connection failed"])[0]
                body = f"database unavailable ({first}); trying again every {interval:g}s"
                if conn is not None:
                    conn.close()
                    conn = None
            header = (
                f"vigil alerts observe: every {interval:g}s, {utc(datetime.now(UTC))} UTC "
                "(Ctrl-C stops)"
            )
            sys.stdout.write((CLEAR_SCREEN if clear else "") + header + "\n\n" + body + "\n")
            if not clear:
                sys.stdout.write("\n")
            sys.stdout.flush()
            frames += 1
            if count is not None and frames >= count:
                return 0
            stop.wait(interval)
        return 0
    except BrokenPipeError:
        return reader_gone()
    finally:
        if conn is not None:
            conn.close()


def _interval(text: str) -> float:
    try:
        return positive_seconds(text, maximum=3600)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def cmd_alerts(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "observe":
        with database_url(settings) as url:
            return observe(url, args.interval, args.count)
    action = {"history": _history, "get": _get, "meta": _meta}.get(args.action, _list)
    return run_with_connection(settings, args, lambda conn: action(conn, args))


def register(subparsers: Any) -> dict[str, Handler]:
    alerts = subparsers.add_parser(
        "alerts",
        help="alert instances: firing and pending first (observe: live; history; get|meta NAME)",
        description="The alert instances: firing, then pending, then those that changed in "
        "the last day (--all: every instance).",
    )
    alerts.add_argument("--json", action="store_true", help="a JSON list of instance objects")
    alerts.add_argument("--all", action="store_true", help="every instance, also long normal")
    actions = alerts.add_subparsers(dest="action", parser_class=OneLineParser)
    watch = actions.add_parser(
        "observe", help="live view of firing and pending instances, redrawn until Ctrl-C"
    )
    watch.add_argument(
        "--interval",
        type=_interval,
        default=2.0,
        metavar="SECONDS",
        help="seconds between redraws (default 2)",
    )
    watch.add_argument(
        "--count",
        type=_positive,
        default=None,
        metavar="N",
        help="stop after N redraws (default: at Ctrl-C)",
    )
    history = actions.add_parser("history", help="changes of state and reminders, newest first")
    history.add_argument("--rule", metavar="NAME", help="only this rule's")
    history.add_argument(
        "--limit", type=_positive, default=50, metavar="N", help="at most N (default 50)"
    )
    history.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    get = actions.add_parser("get", help="one rule's instances: state, value, since")
    get.add_argument("name", metavar="NAME")
    get.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    meta = actions.add_parser("meta", help="one rule's definition (as `vigil rules show`)")
    meta.add_argument("name", metavar="NAME")
    meta.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    return {"alerts": cmd_alerts}
