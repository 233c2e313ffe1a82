"""`vigil trace ID`: every request record and journal line carrying a request or trace id,
oldest first, grouped by host and service (sql/57_trace.sql). An unknown id prints
"no logs for this id" and exits 0: the lookup worked, there is nothing to show."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import psycopg

from api.trace import QUERIES
from api.trace.routes import MAX_ITEMS, check_id, groups_of, item_of
from vigil.cli.common import DB_ERRORS, db_error
from vigil.cluster import database_url
from vigil.settings import Settings


def _line(item: dict[str, Any]) -> str:
    at = item["time"].replace("T", " ")[:23]
    if item["kind"] == "request":
        extra = f"  {item['ip']}" + (
            f" {item['request_time']:.3f}s" if item.get("request_time") is not None else ""
        )
        return f"  {at}  request  {item['message']}{extra}"
    return f"  {at}  journal  {item['message']}"


def render(trace_id: str, items: list[dict[str, Any]]) -> str:
    """The text `vigil trace` prints: a header per host and service, its items oldest first."""
    if not items:
        return f"no logs for this id: {trace_id}\n"
    out = []
    for group in groups_of(items):
        title = group["host"] or "(no host)"
        if group["service"]:
            title += f" / {group['service']}"
        out.append(f"{title}  ({len(group['items'])})")
        out.extend(_line(i) for i in group["items"])
    if len(items) >= MAX_ITEMS:
        out.append(f"(the first {MAX_ITEMS} items only)")
    return "\n".join(out) + "\n"


def cmd_trace(settings: Settings, args: argparse.Namespace) -> int:
    try:
        trace_id = check_id(args.id)
    except ValueError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return 2
    with database_url(settings) as url, psycopg.connect(url, autocommit=True) as conn:
        try:
            rows = conn.execute(QUERIES["trace"], {"id": trace_id, "limit": MAX_ITEMS}).fetchall()
        except DB_ERRORS as exc:
            return db_error(exc)
    items = [item_of(tuple(r)) for r in rows]
    if args.json:
        print(json.dumps({"id": trace_id, "items": items}))
    else:
        sys.stdout.write(render(trace_id, items))
    return 0


def register(subparsers: Any) -> dict[str, Any]:
    trace = subparsers.add_parser(
        "trace", help="request records and journal lines carrying a request or trace id"
    )
    trace.add_argument("id", help="a request id or a (32-hex) trace id")
    trace.add_argument("--json", action="store_true", help="the GET /v1/trace/{id} JSON")
    return {"trace": cmd_trace}
