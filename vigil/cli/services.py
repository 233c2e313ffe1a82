"""`vigil service add|edit|pause|resume|list|remove`: the services the prober checks
(uptime)."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any

import psycopg

from api.uptime import QUERIES as UPTIME_QUERIES
from api.uptime.internal import InternalURL, check_url
from vigil import QUERIES
from vigil.cli.common import DB_ERRORS, db_error, found_or_missing
from vigil.cluster import database_url
from vigil.db import fetch_bool
from vigil.durations import positive_seconds
from vigil.settings import Settings


def _seconds(text: str) -> float:
    try:
        return positive_seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _status(text: str) -> int | None:
    """--expect-status: an HTTP status, or `any` (any status below 400)."""
    if text.strip().lower() == "any":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("give an HTTP status such as 200, or any") from None


def _refused(url: str, allow_internal: bool) -> bool:
    """Prints why the URL may not be probed with these settings; True when refused."""
    try:
        check_url(url, allow_internal)
    except InternalURL as exc:
        fix = "" if exc.never else "; add --allow-internal if this service is internal"
        print(f"vigil: {exc}{fix}", file=sys.stderr)
        return True
    return False


def _add(conn: psycopg.Connection[Any], args: argparse.Namespace) -> int:
    if _refused(args.url, args.allow_internal):
        return 1
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
    except DB_ERRORS as exc:
        return db_error(exc)
    assert row is not None
    internal = " (internal addresses allowed)" if args.allow_internal else ""
    print(
        f"service {args.name!r} added with id {row[0]}{internal}; checked every "
        f"{args.interval:g}s by `vigil prober`"
    )
    return 0


def _edit(conn: psycopg.Connection[Any], args: argparse.Namespace) -> int:
    row = conn.execute(UPTIME_QUERIES["service_get"], {"id": None, "name": args.name}).fetchone()
    if row is None:
        print(f"vigil: no service named {args.name!r}", file=sys.stderr)
        return 1
    sid, name, url, interval, timeout, internal, status, body, retries = row[:9]
    new = {
        "name": args.rename if args.rename is not None else name,
        "url": args.url if args.url is not None else url,
        "interval": args.interval if args.interval is not None else interval,
        "timeout": args.timeout if args.timeout is not None else timeout,
        "internal": args.allow_internal if args.allow_internal is not None else internal,
        "status": args.expect_status if args.expect_status is not _KEEP else status,
        "body": args.body_contains if args.body_contains is not None else body,
        "retries": args.retries if args.retries is not None else retries,
    }
    if _refused(new["url"], new["internal"]):
        return 1
    try:
        conn.execute(
            UPTIME_QUERIES["service_edit"],
            (
                sid,
                new["name"],
                new["url"],
                timedelta(seconds=new["interval"]),
                timedelta(seconds=new["timeout"]),
                new["internal"],
                new["status"],
                new["body"],
                new["retries"],
            ),
        )
    except DB_ERRORS as exc:
        return db_error(exc)
    print(f"service {new['name']!r} updated; checked again within seconds")
    return 0


def _pause(conn: psycopg.Connection[Any], name: str, paused: bool) -> int:
    if not fetch_bool(conn, UPTIME_QUERIES["service_pause"], (name, paused)):
        print(f"vigil: no service named {name!r}", file=sys.stderr)
        return 1
    print(
        f"service {name!r} paused: not checked, not alerted until `vigil service resume`"
        if paused
        else f"service {name!r} resumed; checked again within seconds"
    )
    return 0


_KEEP = object()  # --expect-status not given to `edit`


def _list(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(QUERIES["service_list"]).fetchall()
    print(f"{'id':>4}  {'name':<20} {'state':<8} {'uptime':>8} {'avg ms':>8} {'every':>6}  url")
    for sid, name, state, uptime, avg, every, enabled, url, internal, error in rows:
        flags = ("" if enabled else " [paused]") + (" [internal ok]" if internal else "")
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
        if args.action == "edit":
            return _edit(conn, args)
        if args.action in ("pause", "resume"):
            return _pause(conn, args.name, args.action == "pause")
        if args.action == "remove":
            return found_or_missing(
                conn,
                QUERIES["service_remove"],
                (args.name,),
                f"no service named {args.name!r}",
                f"service {args.name!r} removed with its checks and events",
            )
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
        type=_status,
        default=None,
        help="required final status (default: any, i.e. any below 400)",
    )
    add.add_argument("--body-contains", default=None, help="required substring of the body")
    add.add_argument(
        "--retries",
        type=int,
        default=2,
        help="failed checks retried before down (default 2: down after 3)",
    )
    edit = actions.add_parser("edit", help="change a service's settings (others are kept)")
    edit.add_argument("name")
    edit.add_argument("--name", dest="rename", metavar="NEW_NAME", default=None, help="a new name")
    edit.add_argument("--url", default=None, help="a new http:// or https:// URL")
    edit.add_argument("--interval", type=_seconds, default=None, help="seconds")
    edit.add_argument("--timeout", type=_seconds, default=None, help="seconds")
    edit.add_argument(
        "--allow-internal",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="allow (or, with --no-allow-internal, refuse) internal addresses for its host",
    )
    edit.add_argument(
        "--expect-status", type=_status, default=_KEEP, help="required final status, or any"
    )
    edit.add_argument(
        "--body-contains", default=None, help='required substring of the body ("": none)'
    )
    edit.add_argument("--retries", type=int, default=None, help="failed checks retried")
    for verb, text in (
        ("pause", "stop checking and alerting a service"),
        ("resume", "check a paused service again"),
    ):
        actions.add_parser(verb, help=text).add_argument("name")
    actions.add_parser("list", help="list services with state and uptime")
    remove = actions.add_parser("remove", help="remove a service with its history")
    remove.add_argument("name")
    return {"service": cmd_service}
