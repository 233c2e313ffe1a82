"""`vigil badge add|url|list|delete` and `vigil status-page add|list|delete`: the public,
read-only views of services and heartbeats (sql/75_public.sql, api/public/)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from vigil.cli.common import DB_ERRORS, db_error, found_or_missing
from vigil.cluster import database_url
from vigil.queries import load_queries
from vigil.settings import Settings

QUERIES = load_queries(Path(__file__).with_name("public.sql"))
Handler = Callable[[Settings, argparse.Namespace], int]
KINDS = ("state", "uptime")
WINDOWS = ("24h", "7d", "30d")


def badge_path(key: str, kind: str = "state", fmt: str = "svg", window: str = "24h") -> str:
    """The path of a badge: /badge/KEY/state.svg, /badge/KEY/uptime-7d.json, ..."""
    name = "state" if kind == "state" else f"uptime-{window}"
    return f"/badge/{key}/{name}.{'json' if fmt == 'shields' else 'svg'}"


def _key(conn: psycopg.Connection[Any], service: str | None, heartbeat: str | None) -> str:
    row = conn.execute(QUERIES["badge_key"], (service, heartbeat)).fetchone()
    assert row is not None
    return str(row[0])


def cmd_badge(settings: Settings, args: argparse.Namespace) -> int:
    base = settings.base_url
    with database_url(settings) as url, psycopg.connect(url, autocommit=True) as conn:
        try:
            if args.action == "add":
                heartbeat = (
                    f"{args.target[0]}/{args.target[1]}" if args.kind == "heartbeat" else None
                )
                if args.kind == "service" and len(args.target) != 1:
                    print("vigil: give: badge add service NAME", file=sys.stderr)
                    return 2
                if args.kind == "heartbeat" and len(args.target) != 2:
                    print("vigil: give: badge add heartbeat HOST NAME", file=sys.stderr)
                    return 2
                key = _key(conn, args.target[0] if args.kind == "service" else None, heartbeat)
                print(
                    "badge URLs (public, no login; Shields.io: https://img.shields.io/endpoint?url=...):"
                )
                for kind in KINDS:
                    for window in WINDOWS if kind == "uptime" else ("24h",):
                        for fmt in ("svg", "shields"):
                            print(base + badge_path(key, kind, fmt, window))
                return 0
            if args.action == "url":
                key = _key(conn, args.service, args.heartbeat)
                print(base + badge_path(key, args.kind, args.format, args.window))
                return 0
            if args.action == "delete":
                return found_or_missing(
                    conn,
                    QUERIES["badge_delete"],
                    (args.key,),
                    f"vigil: no badge with key {args.key!r}",
                    f"badge {args.key} deleted; its URLs now answer 404",
                )
        except DB_ERRORS as exc:
            return db_error(exc)
        print(f"{'kind':<10} {'target':<32} {'created':<17} url")
        for key, kind, target, created in conn.execute(QUERIES["badge_list"]).fetchall():
            print(f"{kind:<10} {target:<32} {created:%Y-%m-%d %H:%M} {base}/badge/{key}/state.svg")
    return 0


def cmd_status_page(settings: Settings, args: argparse.Namespace) -> int:
    base = settings.base_url
    with database_url(settings) as url, psycopg.connect(url, autocommit=True) as conn:
        if args.action == "add":
            try:
                conn.execute(
                    QUERIES["status_page_add"],
                    (args.slug, args.title, args.service, args.heartbeat, args.show_details),
                )
            except DB_ERRORS as exc:
                return db_error(exc)
            print(f"status page {args.slug!r} added (public, no login):")
            print(f"{base}/status/{args.slug}")
            return 0
        if args.action == "delete":
            return found_or_missing(
                conn,
                QUERIES["status_page_delete"],
                (args.slug,),
                f"vigil: no status page {args.slug!r}",
                f"status page {args.slug!r} deleted",
            )
        for slug, title, labels, _created in conn.execute(QUERIES["status_page_list"]).fetchall():
            print(f"{base}/status/{slug}  {title}: {', '.join(labels)}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Handler]:
    badge = sub.add_parser("badge", help="public badges (state, uptime) of services, heartbeats")
    badge_sub = badge.add_subparsers(dest="action", required=True)
    add = badge_sub.add_parser("add", help="create a badge; prints its URLs")
    add.add_argument("kind", choices=("service", "heartbeat"))
    add.add_argument("target", nargs="+", metavar="NAME | HOST NAME")
    url = badge_sub.add_parser("url", help="a badge's URL (created on first use), as the last line")
    which = url.add_mutually_exclusive_group(required=True)
    which.add_argument("--service", metavar="NAME")
    which.add_argument("--heartbeat", metavar="HOST/NAME")
    url.add_argument("--kind", choices=KINDS, default="state")
    url.add_argument("--format", choices=("svg", "shields"), default="svg")
    url.add_argument("--window", choices=WINDOWS, default="24h", help="for --kind uptime")
    badge_sub.add_parser("list", help="list badges with their state URL")
    delete = badge_sub.add_parser("delete", help="delete a badge (its URLs answer 404)")
    delete.add_argument("key")

    page = sub.add_parser("status-page", help="public status pages (/status/SLUG)")
    page_sub = page.add_subparsers(dest="action", required=True)
    padd = page_sub.add_parser("add", help="create a status page; prints its URL as the last line")
    padd.add_argument("slug")
    padd.add_argument("--title", required=True)
    padd.add_argument("--service", action="append", default=[], metavar="NAME")
    padd.add_argument("--heartbeat", action="append", default=[], metavar="HOST/NAME")
    padd.add_argument(
        "--show-details", action="store_true", help="show service URLs and heartbeat hosts"
    )
    page_sub.add_parser("list", help="list status pages")
    pdel = page_sub.add_parser("delete", help="delete a status page")
    pdel.add_argument("slug")
    return {"badge": cmd_badge, "status-page": cmd_status_page}
