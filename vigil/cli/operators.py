"""`vigil user add|list|remove EMAIL` and `vigil login-link EMAIL`: the operator allow-list.

A login link is `BASE/login/link/TOKEN`: one use, valid VIGIL_LOGIN_LINK_MINUTES (15), only
for an allow-listed email; only the SHA-256 of TOKEN is stored (vigil.login_links).
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg

from vigil import QUERIES
from vigil.cluster import database_url
from vigil.db import Conn, fetch_bool
from vigil.settings import Settings
from vigil.tokens import secret_hash

DEFAULT_ADMIN = "admin@localhost"

Handler = Callable[[Settings, argparse.Namespace], int]


def create_login_link(conn: Conn, email: str, minutes: int, base_url: str) -> str:
    """A one-time login URL for an allowed email (raises psycopg 42501 if not allowed)."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        QUERIES["login_link_create"],
        (email, secret_hash(token), timedelta(minutes=minutes)),
    )
    return f"{base_url.rstrip('/')}/login/link/{token}"


def add_user(conn: Conn, email: str) -> bool:
    return fetch_bool(conn, QUERIES["user_add"], (email,))


def first_user(conn: Conn, settings: Settings) -> str:
    """Who `vigil run` prints a login link for: VIGIL_ADMIN_EMAIL (added to the allow-list if
    missing), else the oldest user, else admin@localhost (added)."""
    if settings.admin_email:
        add_user(conn, settings.admin_email)
        return settings.admin_email.strip().lower()
    row = conn.execute(QUERIES["user_first"]).fetchone()
    if row:
        return str(row[0])
    add_user(conn, DEFAULT_ADMIN)
    return DEFAULT_ADMIN


def print_first_login_link(url: str, settings: Settings) -> None:
    """For `vigil run`: a login link for the first user, as the last line printed."""
    with psycopg.connect(url, autocommit=True) as conn:
        email = first_user(conn, settings)
        link = create_login_link(conn, email, settings.login_link_minutes, settings.base_url)
    print(
        f"Operator pages: sign in as {email} within {settings.login_link_minutes} minutes "
        f"(one use; make more with `.venv/bin/vigil login-link EMAIL`):\n{link}",
        flush=True,
    )


def cmd_user(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url, psycopg.connect(url, autocommit=True) as conn:
        if args.action == "add":
            try:
                added = add_user(conn, args.email)
            except psycopg.errors.InvalidParameterValue as exc:
                print(f"vigil: {exc.diag.message_primary}", file=sys.stderr)
                return 2
            print(f"{args.email.strip().lower()} {'added' if added else 'was allowed already'}")
        elif args.action == "remove":
            if not fetch_bool(conn, QUERIES["user_remove"], (args.email,)):
                print(f"no user {args.email!r}", file=sys.stderr)
                return 1
            print(f"{args.email.strip().lower()} removed; their sessions are ended")
        else:
            rows: list[Any] = conn.execute(QUERIES["user_list"]).fetchall()
            print(f"{'email':<40} {'added':<20} {'last login':<20} sessions")
            for email, created, last_login, sessions in rows:
                last = f"{last_login:%Y-%m-%d %H:%M:%S}" if last_login else "-"
                print(f"{email:<40} {created:%Y-%m-%d %H:%M:%S}  {last:<20} {sessions}")
    return 0


def cmd_login_link(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url, psycopg.connect(url, autocommit=True) as conn:
        try:
            link = create_login_link(
                conn, args.email, settings.login_link_minutes, settings.base_url
            )
        except psycopg.errors.InsufficientPrivilege as exc:
            hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
            print(f"vigil: {exc.diag.message_primary}{hint}", file=sys.stderr)
            return 1
    print(
        f"one-time login link for {args.email.strip().lower()}, valid "
        f"{settings.login_link_minutes} minutes:",
        file=sys.stderr,
    )
    print(link)
    return 0


def register(subparsers: Any) -> dict[str, Handler]:
    user = subparsers.add_parser("user", help="operators allowed to sign in (by email)")
    user_sub = user.add_subparsers(dest="action", required=True)
    user_sub.add_parser("add", help="allow an email to sign in").add_argument("email")
    user_sub.add_parser("list", help="list allowed emails")
    user_sub.add_parser("remove", help="remove an email; ends its sessions").add_argument("email")
    link = subparsers.add_parser(
        "login-link", help="print a one-time, short-lived login URL (last line) for a user"
    )
    link.add_argument("email")
    return {"user": cmd_user, "login-link": cmd_login_link}
