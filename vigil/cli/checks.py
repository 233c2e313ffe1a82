"""`vigil check add|list|delete|key`: push checks, pinged by jobs at their own URL
(Healthchecks-compatible `/ping/<secret>`, Uptime Kuma `/api/push/<secret>`)."""

from __future__ import annotations

import argparse
import secrets
import sys
import uuid
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.pings import QUERIES
from api.pings.formats.healthchecks import secret_hash
from api.pings.schedule import ScheduleError, check_cron, zone
from vigil.cli.alerting.common import jsonable, print_json
from vigil.cluster import database_url
from vigil.durations import format_duration, parse_duration
from vigil.settings import Settings

DEFAULT_PERIOD = timedelta(days=1)  # as Healthchecks: a new check expects a ping a day
DEFAULT_GRACE = timedelta(hours=1)


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _refused(exc: psycopg.Error) -> int:
    diag = exc.diag
    hint = f" ({diag.message_hint})" if diag.message_hint else ""
    print(f"vigil: {diag.message_primary or exc}{hint}", file=sys.stderr)
    return 1


def _add(conn: psycopg.Connection[Any], args: argparse.Namespace, base: str) -> int:
    if args.cron is None and args.tz is not None:
        print("vigil: --tz applies to --cron schedules only", file=sys.stderr)
        return 2
    if args.cron is not None and args.period is not None:
        print("vigil: give --period or --cron, not both", file=sys.stderr)
        return 2
    tz = args.tz or "UTC"
    period = args.period or DEFAULT_PERIOD
    grace = DEFAULT_GRACE if args.grace is None else args.grace
    if period <= timedelta(0):
        print("vigil: --period must be longer than 0", file=sys.stderr)
        return 2
    try:
        zone(tz)
        if args.cron is not None:
            check_cron(args.cron, tz)
    except ScheduleError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 2
    secret = str(uuid.uuid4())
    try:
        conn.execute(
            QUERIES["push_check_add"],
            (args.name, secret_hash(secret), period, grace, args.cron, tz),
        )
    except (
        psycopg.errors.UniqueViolation,
        psycopg.errors.InvalidParameterValue,
        psycopg.errors.CheckViolation,
    ) as exc:
        return _refused(exc)
    schedule = f"cron '{args.cron}' in {tz}" if args.cron else f"every {format_duration(period)}"
    print(f"check {args.name!r} added: a ping expected {schedule}, grace {format_duration(grace)}")
    print(f"Uptime Kuma push URL: {base}/api/push/{secret}?status=up&msg=OK&ping=")
    print("ping URL (shown only this once; the secret in it is the check's password):")
    print(f"{base}/ping/{secret}")
    return 0


def _list(conn: psycopg.Connection[Any], as_json: bool) -> int:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(QUERIES["push_check_list"]).fetchall()
    if as_json:
        print_json([jsonable(r) for r in rows])
        return 0
    print(f"{'name':<24} {'status':<8} {'schedule':<28} {'last ping':<20} {'duration':>9}")
    for r in rows:
        schedule = (
            f"{r['cron']} {r['tz']}" if r["cron"] else f"every {format_duration(r['period'])}"
        )
        schedule += f" +{format_duration(r['grace'])}"
        last = f"{r['last_ping_at']:%Y-%m-%d %H:%M:%S}" if r["last_ping_at"] else "-"
        duration = format_duration(r["last_duration"]) or "-"
        print(f"{r['name']:<24} {r['status']:<8} {schedule:<28} {last:<20} {duration:>9}")
    return 0


def _key(conn: psycopg.Connection[Any], base: str) -> int:
    key = secrets.token_urlsafe(16)  # 22 characters, never a UUID
    conn.execute(QUERIES["ping_key_set"], (secret_hash(key),))
    print("new ping key (shown only this once; the previous key no longer works)")
    print(f"slug URLs: {base}/ping/{key}/<check-name>   (?create=1 adds missing checks)")
    print(key)
    return 0


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url, psycopg.connect(url, autocommit=True) as conn:
        if args.action == "add":
            return _add(conn, args, settings.base_url)
        if args.action == "delete":
            row = conn.execute(QUERIES["push_check_delete"], (args.name,)).fetchone()
            if not (row and row[0]):
                print(f"vigil: no check named {args.name!r}", file=sys.stderr)
                return 1
            print(f"check {args.name!r} deleted with its pings and alert history")
            return 0
        if args.action == "key":
            return _key(conn, settings.base_url)
        return _list(conn, args.json)


def register(subparsers: Any) -> dict[str, Any]:
    check = subparsers.add_parser("check", help="push checks: jobs that ping their own URL")
    actions = check.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a push check; prints its ping URL as the last line")
    add.add_argument("name", help="a-z, 0-9, - and _ (also its slug in slug URLs)")
    add.add_argument(
        "--period", type=_duration, default=None, help="expected time between pings (default 1d)"
    )
    add.add_argument(
        "--grace", type=_duration, default=None, help="how late a ping may be (default 1h)"
    )
    add.add_argument("--cron", default=None, help="cron expression of the expected pings")
    add.add_argument("--tz", default=None, help="time zone of --cron (default UTC)")
    listing = actions.add_parser("list", help="list checks with status and last ping")
    listing.add_argument("--json", action="store_true", help="JSON for scripts")
    delete = actions.add_parser("delete", help="delete a check with its pings and history")
    delete.add_argument("name")
    actions.add_parser("key", help="make a new ping key for slug URLs (the old one stops working)")
    return {"check": cmd_check}
