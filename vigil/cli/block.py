"""`vigil block add|list|remove|export` and `vigil block allow add|list|remove`: the deny list
that Vigil's ingest enforces (403) and the front proxy reloads, and the allow list of
networks never blocked (sql/77_blocklist.sql). Also the rule action of `vigil rules
add|edit --block-for`."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from vigil.cli.alerting.common import (
    CliError,
    Conn,
    Handler,
    OneLineParser,
    Row,
    add_command,
    duration_option,
    fetch,
    jsonable,
    os_user,
    print_json,
    run_with_connection,
    table,
    utc,
)
from vigil.db import fetch_bool
from vigil.durations import format_duration
from vigil.queries import load_queries
from vigil.settings import Settings

QUERIES = load_queries(Path(__file__).with_name("block.sql"))
FORMATS = ("nginx", "ipset", "cidr")


def _until(row: Row) -> str:
    return f"until {utc(row['expires_at'])} UTC" if row["expires_at"] else "until removed"


def _add(conn: Conn, args: argparse.Namespace) -> int:
    if args.for_duration is not None and args.for_duration <= timedelta(0):
        raise CliError("--for must be more than 0 (leave it out: until removed)", 2)
    row = fetch(
        conn,
        QUERIES["block_add"],
        {
            "network": args.network,
            "for": args.for_duration,
            "reason": args.reason,
            "by": args.by or os_user(),
        },
    )[0]
    span = f" for {format_duration(args.for_duration)}" if args.for_duration else ""
    print(f"blocked {row['network']}{span} ({_until(row)})")
    return 0


def _list(conn: Conn, args: argparse.Namespace) -> int:
    rows = fetch(conn, QUERIES["block_list"], {"all": args.all})
    if args.json:
        print_json([jsonable(r) for r in rows])
    elif not rows:
        print("nothing is blocked")
    else:
        print(
            table(
                ("network", "expires", "reason", "added by", "added"),
                (
                    (
                        r["network"],
                        (utc(r["expires_at"]) if r["expires_at"] else "never")
                        + ("" if r["active"] else " (expired)"),
                        r["reason"] or "-",
                        r["added_by"],
                        utc(r["added_at"]),
                    )
                    for r in rows
                ),
            )
        )
    return 0


def _remove(conn: Conn, args: argparse.Namespace) -> int:
    row = conn.execute(QUERIES["block_remove"], (args.network,)).fetchone()
    if not row or not row[0]:
        raise CliError(f"{args.network} is not blocked (see `vigil block list`)")
    print(f"unblocked {args.network}")
    return 0


def _export(conn: Conn, args: argparse.Namespace) -> int:
    row = conn.execute(QUERIES["block_export"], (args.format,)).fetchone()
    sys.stdout.write(str(row[0]) if row and row[0] is not None else "")
    return 0


def _allow_add(conn: Conn, args: argparse.Namespace) -> int:
    row = conn.execute(
        QUERIES["allow_add"],
        {"network": args.network, "reason": args.reason, "by": args.by or os_user()},
    ).fetchone()
    lifted = int(row[0]) if row else 0
    extra = f"; {lifted} block{'s' if lifted != 1 else ''} inside it lifted" if lifted else ""
    print(f"allowed {args.network}: never blocked{extra}")
    return 0


def _allow_list(conn: Conn, args: argparse.Namespace) -> int:
    rows = fetch(conn, QUERIES["allow_list"])
    if args.json:
        print_json([jsonable(r) for r in rows])
    elif not rows:
        print("the allow list is empty")
    else:
        print(
            table(
                ("network", "reason", "added by", "added"),
                (
                    (r["network"], r["reason"] or "-", r["added_by"], utc(r["added_at"]))
                    for r in rows
                ),
            )
        )
    return 0


def _allow_remove(conn: Conn, args: argparse.Namespace) -> int:
    row = conn.execute(QUERIES["allow_remove"], (args.network,)).fetchone()
    if not row or not row[0]:
        raise CliError(f"{args.network} is not on the allow list (see `vigil block allow list`)")
    print(f"{args.network} removed from the allow list")
    return 0


ACTIONS = {"add": _add, "list": _list, "remove": _remove, "export": _export}
ALLOW_ACTIONS = {"add": _allow_add, "list": _allow_list, "remove": _allow_remove}


def cmd_block(settings: Settings, args: argparse.Namespace) -> int:
    action = ALLOW_ACTIONS[args.allow_action] if args.action == "allow" else ACTIONS[args.action]
    return run_with_connection(settings, args, lambda conn: action(conn, args))


# The rule action (`vigil rules add|edit`) -----------------------------------------------


def add_rule_block_options(parser: argparse.ArgumentParser, edit: bool) -> None:
    """--block-for DURATION and --block-label LABEL (and, for edit, --no-block)."""
    group = parser.add_argument_group("action: block the address (fail2ban-like)")
    duration_option(
        group,
        "--block-for",
        "when an instance starts firing, block the address in its --block-label for this long "
        "(unless allow-listed); the firing message says so",
    )
    group.add_argument(
        "--block-label", metavar="LABEL", help="the instance label holding the address (default ip)"
    )
    if edit:
        group.add_argument("--no-block", action="store_true", help="remove the block action")


def block_given(args: argparse.Namespace) -> bool:
    """Whether `rules add|edit` was given a block option."""
    return any(
        getattr(args, name, None) not in (None, False)
        for name in ("block_for", "block_label", "no_block")
    )


def set_rule_block(conn: Conn, name: str, args: argparse.Namespace) -> str | None:
    """Writes the block options given (in the caller's transaction); a phrase for the
    command's output when the rule has the action, else None."""
    block_for = getattr(args, "block_for", None)
    label = getattr(args, "block_label", None)
    clear = bool(getattr(args, "no_block", False))
    if block_for is not None and block_for <= timedelta(0):
        raise CliError("--block-for must be more than 0 (`rules edit --no-block` removes it)", 2)
    if clear and block_for is not None:
        raise CliError("--no-block goes without --block-for", 2)
    if block_for is None and label is None and not clear:
        current = rule_blocks(conn).get(name)
        return block_text(current) if current else None
    rows = fetch(
        conn,
        QUERIES["rule_block_set"],
        {"name": name, "for": block_for, "label": label, "clear": clear},
    )
    if not rows or rows[0]["block_for"] is None:
        return None
    return block_text(rows[0])


def block_text(row: Row) -> str:
    return (
        f"blocks the address in label {row['block_label']} for {format_duration(row['block_for'])}"
    )


def rule_blocks(conn: Conn) -> dict[str, Row]:
    """The rule action of every rule that has one, by rule name (none on a database not yet
    migrated to sql/77_blocklist.sql)."""
    if not fetch_bool(conn, QUERIES["rule_block_columns"]):
        return {}
    return {r["name"]: r for r in fetch(conn, QUERIES["rule_blocks"])}


# Parser ---------------------------------------------------------------------------------


def register(subparsers: Any) -> dict[str, Handler]:
    actions = add_command(
        subparsers,
        "block",
        "bad actors: the deny list (403 at ingest, exports for nginx/ipset) and the allow list",
    )
    add = actions.add_parser(
        "add",
        help="block an address or network",
        description="Block an address or network: Vigil's sender routes answer 403 to it and "
        "`vigil block export` lists it. Adding it again replaces its reason and expiry.",
    )
    add.add_argument("network", metavar="IP_OR_CIDR")
    duration_option(
        add, "--for", "how long (30m, 1h, 7d; default: until removed)", dest="for_duration"
    )
    add.add_argument("--reason", metavar="TEXT", help="why (at most 500 characters)")
    add.add_argument("--by", metavar="WHO", help="who blocks it (default: your user name)")
    listing = actions.add_parser("list", help="the blocks in force")
    listing.add_argument("--json", action="store_true", help="a JSON list of objects")
    listing.add_argument("--all", action="store_true", help="also expired ones not yet pruned")
    remove = actions.add_parser("remove", help="unblock an address or network (exactly as added)")
    remove.add_argument("network", metavar="IP_OR_CIDR")
    export = actions.add_parser(
        "export", help="the blocks in force for the front proxy: nginx, ipset or cidr"
    )
    export.add_argument("--format", choices=FORMATS, default="nginx")
    allow = actions.add_parser("allow", help="the allow list: networks never blocked")
    allow_actions = allow.add_subparsers(
        dest="allow_action", required=True, parser_class=OneLineParser
    )
    allow_add = allow_actions.add_parser("add", help="never block an address or network")
    allow_add.add_argument("network", metavar="IP_OR_CIDR")
    allow_add.add_argument("--reason", metavar="TEXT")
    allow_add.add_argument("--by", metavar="WHO", help="who allows it (default: your user name)")
    allow_list = allow_actions.add_parser("list", help="the allow list")
    allow_list.add_argument("--json", action="store_true")
    allow_remove = allow_actions.add_parser("remove", help="remove from the allow list")
    allow_remove.add_argument("network", metavar="IP_OR_CIDR")
    return {"block": cmd_block}
