"""`vigil silence add|list|expire` and `vigil maintenance add|list|delete`: what withholds
notifications (never evaluation or history) - one-off silences and recurring windows."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import time
from typing import Any

from psycopg.types.json import Jsonb

from vigil.cli.alerting import QUERIES
from vigil.cli.alerting.common import (
    CliError,
    Conn,
    Handler,
    Row,
    add_command,
    duration_option,
    fetch,
    jsonable,
    label_option,
    labels,
    matchers_text,
    os_user,
    parse_time,
    print_json,
    statement_action,
    subcommands,
    table,
    utc,
)
from vigil.durations import format_duration

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAYS = tuple(name[:3] for name in DAY_NAMES)  # ISO weekdays 1..7
CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def parse_days(text: str) -> list[int]:
    """mon,tue,... or ranges such as mon-fri (also full names: monday) -> ISO weekdays 1..7."""

    def day(word: str) -> int:
        key = word.strip().lower()
        for number, name in enumerate(DAY_NAMES, start=1):
            if key in (name, name[:3]):
                return number
        raise CliError(f"--days: {word.strip()!r} is not a day ({', '.join(DAYS)})")

    days: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.partition("-")
        start = day(first)
        end = day(last) if dash else start
        span = (end - start) % 7
        days.update((start - 1 + i) % 7 + 1 for i in range(span + 1))
    return sorted(days)


def days_text(days: list[int] | None) -> str:
    if not days or len(days) == len(DAYS):
        return "every day"
    return ",".join(DAYS[d - 1] for d in days)


def parse_clock(text: str, option: str) -> time:
    """HH:MM or HH:MM:SS, 00:00 to 23:59:59."""
    match = CLOCK.fullmatch(text.strip())
    if match:
        hour, minute, second = (int(g) if g else 0 for g in match.groups())
        if hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
    raise CliError(f"{option}: {text!r} is not a time of day HH:MM (00:00 to 23:59)")


def clock_text(value: time) -> str:
    return f"{value:%H:%M}" if value.second == 0 else f"{value:%H:%M:%S}"


# Silences -------------------------------------------------------------------------------


def _silence_add(conn: Conn, args: argparse.Namespace) -> int:
    starts = parse_time(args.start) if args.start else None
    matchers = labels(args.label)
    row = conn.execute(
        QUERIES["silence_add"],
        (args.rule, Jsonb(matchers), args.duration, args.comment, args.author or os_user(), starts),
    ).fetchone()
    assert row is not None
    what = f"rules {args.rule!r}" if args.rule else "every rule"
    if matchers:
        what += f" with {matchers_text(matchers)}"
    if not args.rule and not matchers:
        print("vigil: this silence withholds every notification", file=sys.stderr)
    when = f"from {utc(starts)} UTC " if starts else ""
    print(
        f"silence {row[0]}: {what}, {when}for {format_duration(args.duration)}",
        file=sys.stderr,
    )
    print(row[0])
    return 0


def _silence_list(conn: Conn, args: argparse.Namespace) -> int:
    rows = fetch(conn, QUERIES["silence_list"], {"all": args.all})
    if args.json:
        print_json([jsonable(r) for r in rows])  # the query's columns are the JSON fields
    elif not rows:
        print("no silences" if args.all else "no active or upcoming silences")
    else:
        print(
            table(
                ("id", "state", "rule", "labels", "starts", "ends", "author", "comment"),
                (
                    (
                        r["id"],
                        r["state"],
                        r["rule"] or "*",
                        matchers_text(r["labels"]),
                        utc(r["starts_at"]),
                        utc(r["ends_at"]),
                        r["author"],
                        r["comment"],
                    )
                    for r in rows
                ),
            )
        )
    return 0


cmd_silence = subcommands(
    {
        "add": _silence_add,
        "list": _silence_list,
        "expire": statement_action(
            QUERIES["silence_expire"],
            "no active or upcoming silence {id} (see `vigil silence list`)",
            "silence {id} expired",
        ),
    }
)


# Maintenance windows ----------------------------------------------------------------------


def _maintenance_add(conn: Conn, args: argparse.Namespace) -> int:
    starts = parse_clock(args.start, "--from")
    ends = parse_clock(args.end, "--to")
    days = parse_days(args.days) if args.days else None
    matchers = labels(args.label)
    conn.execute(
        QUERIES["maintenance_add"],
        (
            args.name,
            args.rule,
            Jsonb(matchers),
            days,
            starts,
            ends,
            args.tz,
            args.comment,
            args.author or os_user(),
        ),
    )
    nextday = " (next day)" if ends <= starts else ""
    what = f"rules {args.rule!r}" if args.rule else "every rule"
    if matchers:
        what += f" with {matchers_text(matchers)}"
    print(
        f"maintenance window {args.name!r}: {days_text(days)} {clock_text(starts)}-"
        f"{clock_text(ends)}{nextday} {args.tz}, {what}"
    )
    return 0


def maintenance_json(row: Row) -> dict[str, Any]:
    return jsonable(
        {
            "id": row["id"],
            "name": row["name"],
            "days": [DAYS[d - 1] for d in row["days"]] if row["days"] else None,
            "from": clock_text(row["starts"]),
            "to": clock_text(row["ends"]),
            "time_zone": row["time_zone"],
            "rule": row["rule_pattern"],
            "labels": row["matchers"],
            "open_now": row["open_now"],
            "valid_from": row["valid_from"],
            "valid_until": row["valid_until"],
            "comment": row["comment"],
            "author": row["author"],
            "created_at": row["created_at"],
        }
    )


def _maintenance_list(conn: Conn, args: argparse.Namespace) -> int:
    rows = fetch(conn, QUERIES["maintenance_list"])
    if args.json:
        print_json([maintenance_json(r) for r in rows])
    elif not rows:
        print("no maintenance windows")
    else:
        print(
            table(
                (
                    "name",
                    "days",
                    "from",
                    "to",
                    "time zone",
                    "rule",
                    "labels",
                    "open now",
                    "comment",
                ),
                (
                    (
                        r["name"],
                        days_text(r["days"]),
                        clock_text(r["starts"]),
                        clock_text(r["ends"]),
                        r["time_zone"],
                        r["rule_pattern"] or "*",
                        matchers_text(r["matchers"]),
                        "yes" if r["open_now"] else "no",
                        r["comment"] or "-",
                    )
                    for r in rows
                ),
            )
        )
    return 0


cmd_maintenance = subcommands(
    {
        "add": _maintenance_add,
        "list": _maintenance_list,
        "delete": statement_action(
            QUERIES["maintenance_delete"],
            'no maintenance window named "{name}"',
            "maintenance window {name!r} deleted",
        ),
    }
)


def register(subparsers: Any) -> dict[str, Handler]:
    actions = add_command(
        subparsers, "silence", "withhold notifications for a while: add, list, expire"
    )
    add = actions.add_parser(
        "add",
        help="add a silence; prints its id as the last line",
        description="Withhold the notifications of matching alert instances for a while "
        "(evaluation and history go on; a recovery after the silence ends is sent).",
    )
    add.add_argument(
        "--rule", metavar="NAME_OR_PATTERN", help="rules by name, * matches anything (default all)"
    )
    label_option(add, "instances with this label, e.g. host=web-1 (repeat for more)")
    duration_option(add, "--for", dest="duration", required=True)
    add.add_argument("--comment", required=True, metavar="TEXT", help="why (1-500 characters)")
    add.add_argument("--author", metavar="NAME", help="who (default: your login name)")
    add.add_argument("--start", metavar="ISO", help="when it starts, ISO 8601 (default now)")
    listing = actions.add_parser("list", help="active and upcoming silences")
    listing.add_argument("--all", action="store_true", help="also expired ones")
    listing.add_argument("--json", action="store_true")
    expire = actions.add_parser("expire", help="end a silence now (kept as history)")
    expire.add_argument("id", type=int)

    wactions = add_command(
        subparsers, "maintenance", "recurring maintenance windows: add, list, delete"
    )
    wadd = wactions.add_parser(
        "add",
        help="add a recurring window",
        description="A recurring window (wall-clock time in --tz, DST-correct) during which "
        "the notifications of matching alert instances are withheld. Example: vigil "
        "maintenance add backups --days sun --from 02:00 --to 04:00 --tz Europe/Berlin",
    )
    wadd.add_argument("name")
    wadd.add_argument("--from", dest="start", required=True, metavar="HH:MM")
    wadd.add_argument(
        "--to", dest="end", required=True, metavar="HH:MM", help="at or before --from: next day"
    )
    wadd.add_argument(
        "--days", metavar="DAYS", help="days it starts on: mon,tue,... or mon-fri (default every)"
    )
    wadd.add_argument("--tz", default="UTC", metavar="ZONE", help="IANA time zone (default UTC)")
    wadd.add_argument("--rule", metavar="PATTERN", help="rules by name, * matches anything")
    label_option(wadd)
    wadd.add_argument("--comment", metavar="TEXT")
    wadd.add_argument("--author", metavar="NAME", help="who (default: your login name)")
    wlist = wactions.add_parser("list", help="every window, and whether it is open now")
    wlist.add_argument("--json", action="store_true")
    wactions.add_parser("delete", help="delete a window").add_argument("name")
    return {"silence": cmd_silence, "maintenance": cmd_maintenance}
