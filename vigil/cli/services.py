"""`vigil service add|list|remove`: the services the prober checks (uptime)."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any

import psycopg

from vigil import QUERIES
from vigil.cluster import database_url
from vigil.db import fetch_bool
from vigil.durations import positive_seconds
from vigil.settings import Settings


def _seconds(text: str) -> float:
    try:
        return positive_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add(conn: psycopg.Connection[Any], args: argparse.Namespace) -> int:
    try:
        row = conn.execute(
            QUERIES["service_add"],
            (
                args.name,
                args.url,
                timedelta(seconds=args.interval),
                timedelta(seconds=args.timeout),
                args.allow_internal,
                args.expect_status,
                args.body_contains,
                args.retries,
            ),
        ).fetchone()
    except (
        psycopg.errors.UniqueViolation,
        psycopg.errors.InvalidParameterValue,
        psycopg.errors.CheckViolation,
    ) as exc:
        diag = exc.diag
        hint = f" ({diag.message_hint})" if diag.message_hint else ""
        print(f"vigil: {diag.message_primary}{hint}", file=sys.stderr)
        return 1
    assert row is not None
    internal = " (internal addresses allowed)" if args.allow_internal else ""
    print(
        f"service {args.name!r} added with id {row[0]}{internal}; checked every "
        f"{args.interval:g}s by `vigil prober`"
    )
    return 0


def _list(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(QUERIES["service_list"]).fetchall()
    print(f"{'id':>4}  {'name':<20} {'state':<8} {'uptime':>8} {'avg ms':>8} {'every':>6}  url")
    for sid, name, state, uptime, avg, every, enabled, url, internal, error in rows:
        flags = ("" if enabled else " [disabled]") + (" [internal ok]" if internal else "")
        print(
            f"{sid:>4}  {name:<20} {state:<8} {float(uptime):>7.2f}% {float(avg):>8.1f} "
            f"{float(every):>5g}s  {url}{flags}"
        )
        if error and state != "up":
            print(f"{'':>6}last error: {error}")


def cmd_service(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url, psycopg.connect(url, autocommit=True) as conn:
        if args.action == "add":
            return _add(conn, args)
        if args.action == "remove":
            if not fetch_bool(conn, QUERIES["service_remove"], (args.name,)):
                print(f"no service named {args.name!r}", file=sys.stderr)
                return 1
            print(f"service {args.name!r} removed with its checks and events")
            return 0
        _list(conn)
    return 0


def register(subparsers: Any) -> dict[str, Any]:
    service = subparsers.add_parser("service", help="services checked by the prober")
    actions = service.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a service to check")
    add.add_argument("name")
    add.add_argument("url", help="http:// or https:// URL, fetched with GET")
    add.add_argument("--interval", type=_seconds, default=15.0, help="seconds (default 15)")
    add.add_argument("--timeout", type=_seconds, default=15.0, help="seconds (default 15)")
    add.add_argument(
        "--allow-internal",
        action="store_true",
        help="allow a loopback/private/link-local address for this URL's own host "
        "(never for redirects to other hosts; metadata addresses never)",
    )
    add.add_argument(
        "--expect-status",
        type=int,
        default=None,
        help="required final status (default: any below 400)",
    )
    add.add_argument("--body-contains", default=None, help="required substring of the body")
    add.add_argument(
        "--retries",
        type=int,
        default=2,
        help="failed checks retried before down (default 2: down after 3)",
    )
    actions.add_parser("list", help="list services with state and uptime")
    remove = actions.add_parser("remove", help="remove a service with its history")
    remove.add_argument("name")
    return {"service": cmd_service}
