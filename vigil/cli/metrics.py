"""`vigil metrics create|list|get|meta|delete|refresh`: log metrics, the rows of
vigil.log_metrics (sql/62_log_metrics.sql). A log metric counts (or sums, averages...) journal
lines or request records per period, grouped by properties; its values are an ordinary
numeric series named by its id, so charts, `/v1/metrics` and `vigil rules add --series ID`
work on it. The verbs and flags are the log collector's (`-id`, `-s`, `--prop '*'`,
`--period 60`, `--refresh_rate 60`). The database checks every value; this module turns the
flags into the function's arguments. Its SQL is in metrics.sql."""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from vigil.cli.alerting.common import (
    CliError,
    Conn,
    Handler,
    Row,
    add_command,
    fetch,
    jsonable,
    label_arg,
    number,
    os_user,
    print_json,
    require,
    subcommands,
    table,
    utc,
)
from vigil.cli.alerting.rules import priority_arg
from vigil.durations import format_duration, parse_duration
from vigil.queries import load_queries

QUERIES = load_queries(Path(__file__).with_name("metrics.sql"))
"""The named queries of `vigil metrics` (vigil/cli/metrics.sql)."""

NO_METRIC = 'no log metric named "{id}" (see `vigil metrics list`)'
STAT_ALIASES = {
    "distinct": "count_distinct",
    "count-distinct": "count_distinct",
    "count distinct": "count_distinct",
    "countdistinct": "count_distinct",
    "mean": "avg",
    "median": "p50",
}
REQUEST_FIELDS = frozenset({"request_time", "upstream_time", "bytes", "status", "error"})
REQUEST_PROPS = frozenset(
    {"vhost", "ip", "method", "status", "status_class", "route", "path", "user_agent"}
)
FILTER_OPTIONS = (
    "host", "unit", "container", "identifier", "priority", "contains", "regex", "vhost",
    "method", "ip",
)  # fmt: skip
"""The filter options that are the filter of the same name as they are given."""
REQUEST_FILTERS = ("status", "method", "path_prefix", "ip", "vhost")
DEFAULT_PERIOD = timedelta(minutes=1)
SOURCE_TEXT = {"journal": "journal lines", "requests": "requests"}
STATUS_CLASS = re.compile(r"[1-5]xx")


# Parsing ------------------------------------------------------------------------------


def seconds_or_duration(text: str) -> timedelta:
    """argparse type: a bare number is seconds (`--period 60`, as the log collector takes
    it), else a duration (`1m`, `5m`, `1h30m`)."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(
                f"{text!r} is neither a number of seconds nor a duration (e.g. 60, 30s, 1m, 1h)"
            ) from exc
    if not 0 < seconds < 10**9:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return timedelta(seconds=seconds)


def status_arg(text: str) -> str | list[int | str]:
    """argparse type: a status class (`5xx`, `4XX`), or statuses and classes (`401,403`,
    `404,5xx`) as a list."""
    value = text.strip().lower()
    if STATUS_CLASS.fullmatch(value):
        return value
    parts: list[int | str] = []
    for part in (p.strip() for p in value.split(",")):
        if STATUS_CLASS.fullmatch(part):
            parts.append(part)
        elif part.isdigit() and 100 <= int(part) <= 599:
            parts.append(int(part))
        else:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a status class (1xx-5xx) or statuses (e.g. 401,403)"
            )
    return parts


def props_of(values: list[str] | None) -> list[str]:
    """--prop host --prop unit, or --prop host,unit; `*` (or nothing) is no grouping."""
    props: list[str] = []
    for value in values or ():
        for part in value.split(","):
            name = part.strip()
            if name and name != "*" and name not in props:
                props.append(name)
    return props


def filters_of(args: argparse.Namespace) -> dict[str, Any]:
    """The filter options as the jsonb vigil.log_metric_create takes (keys in api17)."""
    filters: dict[str, Any] = {}
    for key in FILTER_OPTIONS:
        value = getattr(args, key)
        if value is not None:
            filters[key] = value
    if args.path_prefix is not None:
        filters["path_prefix"] = args.path_prefix
    if args.status is not None:
        filters["status"] = args.status
    if args.field_eq:
        filters["fields"] = dict(args.field_eq)
    return filters


def source_of(args: argparse.Namespace, props: list[str], filters: dict[str, Any]) -> str:
    """--source, else what the other options imply: requests when a request field, property
    or filter is named, journal otherwise."""
    if args.source is not None:
        return str(args.source)
    if (
        (args.of or "") in REQUEST_FIELDS | REQUEST_PROPS
        or any(p in REQUEST_PROPS for p in props)
        or any(k in filters for k in REQUEST_FILTERS)
    ):
        return "requests"
    return "journal"


def stat_of(text: str) -> str:
    value = text.strip().lower()
    return STAT_ALIASES.get(value, value)


# Actions ------------------------------------------------------------------------------


def metric_json(row: Row) -> dict[str, Any]:
    """A log metric for scripts: the columns of metric_list, durations as the options take
    them ("1m"), times ISO 8601 in UTC."""
    return jsonable(row)


def _create(conn: Conn, args: argparse.Namespace) -> int:
    if args.default:
        given = [flag for flag, value in _definition_flags(args) if value is not None]
        if given:
            raise CliError(f"--default takes no other option (not {', '.join(given)})", code=2)
        return _create_defaults(conn, args)
    if not args.id:
        raise CliError("give -id ID and -s STAT, or --default", code=2)
    if not args.stat:
        raise CliError("a log metric needs a statistic: -s/--stat STAT", code=2)
    props = props_of(args.prop)
    filters = filters_of(args)
    params = {
        "id": args.id,
        "source": source_of(args, props, filters),
        "stat": stat_of(args.stat),
        "field": args.of,
        "props": props,
        "period": args.period or DEFAULT_PERIOD,
        "refresh_rate": args.refresh_rate,  # none: the period, at most 1 minute
        "filters": Jsonb(filters),
        "value_regex": args.value_regex,
        "description": args.description,
        "created_by": os_user(),
    }
    with conn.transaction():
        (created,) = fetch(conn, QUERIES["metric_create"], params)
        row = fetch(conn, QUERIES["metric_one"], (created["id"],))[0]
    if args.json:
        print_json(metric_json(row))
    else:
        print(f"log metric {row['id']!r} created: {describe(row)}")
        print(f"its values: vigil metrics get {row['id']}")
        print(f"an alert on it: vigil rules add NAME --series {row['id']} --agg max --above N")
    return 0


def _definition_flags(args: argparse.Namespace) -> list[tuple[str, object]]:
    return [
        ("-id", args.id),
        ("--stat", args.stat),
        ("--of", args.of),
        ("--prop", args.prop),
        ("--period", args.period),
        ("--refresh_rate", args.refresh_rate),
        ("--source", args.source),
        ("--value-regex", args.value_regex),
        ("--description", args.description),
        *((f"--{k.replace('_', '-')}", v) for k, v in filters_of(args).items()),
    ]


def _create_defaults(conn: Conn, args: argparse.Namespace) -> int:
    created = [str(r["id"]) for r in fetch(conn, QUERIES["metric_defaults"], (os_user(),))]
    if args.json:
        print_json({"created": created})
    elif created:
        print("created the default log metrics: " + ", ".join(created))
        if "totaltraffic" in created:
            print("and the alert rule 'totaltraffic' (more than 1000 requests in a minute)")
    else:
        print("the default log metrics exist already")
    return 0


def describe(row: Row) -> str:
    """What a metric computes, in one phrase: count of requests {status=5xx} by route per 1m."""
    stat = str(row["stat"])
    source = SOURCE_TEXT.get(str(row["source"]), str(row["source"]))
    what = (
        f"{stat} of {source}"
        if stat == "count"
        else f"{stat.replace('_', ' ')} {row['field'] or '?'} of {source}"
    )
    filters = row["filters"] or {}
    if filters:
        what += " {" + ", ".join(f"{k}={_filter_text(v)}" for k, v in filters.items()) + "}"
    if row["props"]:
        what += " by " + ",".join(row["props"])
    return what + f" per {format_duration(row['period'])}"


def _filter_text(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


def _list(conn: Conn, args: argparse.Namespace) -> int:
    rows = fetch(conn, QUERIES["metric_list"])
    if args.json:
        print_json([metric_json(r) for r in rows])
        return 0
    if not rows:
        print("no log metrics yet (`vigil metrics create --default` makes the usual ones)")
        return 0
    print(
        table(
            ("id", "computes", "refresh", "refreshed", "error"),
            (
                (
                    r["id"] + (" (default)" if r["is_default"] else ""),
                    describe(r),
                    format_duration(r["refresh_rate"]),
                    utc(r["refreshed_at"]),
                    _one_line(r["last_error"]) or "-",
                )
                for r in rows
            ),
        )
    )
    return 0


def _one_line(text: str | None, width: int = 60) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _require_metric(conn: Conn, metric_id: str) -> None:
    require(conn, QUERIES["metric_exists"], (metric_id,), NO_METRIC.format(id=metric_id))


def groups_text(groups: dict[str, Any] | None) -> str:
    if not groups:
        return "-"
    return ",".join(f"{k}={v}" for k, v in groups.items())


def _get(conn: Conn, args: argparse.Namespace) -> int:
    _require_metric(conn, args.id)
    rows = fetch(conn, QUERIES["metric_latest"], (args.id, args.limit))
    if args.json:
        print_json(
            [
                jsonable({"time": r["at"], "groups": r["groups"] or {}, "value": r["value"]})
                for r in rows
            ]
        )
        return 0
    if not rows:
        print(f"no observations of {args.id!r} yet (see `vigil metrics meta {args.id}`)")
        return 0
    print(
        table(
            ("time", "groups", "value"),
            ((utc(r["at"]), groups_text(r["groups"]), number(r["value"])) for r in rows),
        )
    )
    return 0


def _meta(conn: Conn, args: argparse.Namespace) -> int:
    _require_metric(conn, args.id)
    rows = fetch(conn, QUERIES["metric_meta"], (args.id,))
    meta: dict[str, Any] = dict(rows[0]["log_metric_meta"] or {}) if rows else {}
    meta.setdefault("rules", [r["name"] for r in fetch(conn, QUERIES["metric_rules"], (args.id,))])
    if args.json:
        print_json(meta)
        return 0
    sql = meta.get("sql")
    shown = {k: v for k, v in meta.items() if k != "sql"}
    width = max((len(k) for k in shown), default=0)
    for key, value in shown.items():
        print(f"{key:<{width}}  {_meta_text(value)}")
    if sql:
        print()
        print("the SQL it runs:")
        print(sql if isinstance(sql, str) else json.dumps(sql, indent=2))
    return 0


def _meta_text(value: object) -> str:
    if value is None or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        try:  # times from jsonb: shown as the other commands show them
            return utc(datetime.fromisoformat(value).astimezone(UTC))
        except ValueError:
            return value
    if isinstance(value, float):
        return number(value)
    return str(value)


def _delete(conn: Conn, args: argparse.Namespace) -> int:
    rules = [r["name"] for r in fetch(conn, QUERIES["metric_rules"], (args.id,))]
    require(conn, QUERIES["metric_delete"], (args.id,), NO_METRIC.format(id=args.id))
    print(f"log metric {args.id!r} deleted, with its series")
    if rules:
        print(
            "the rules on it now see no data: " + ", ".join(rules) + " (`vigil rules delete NAME`)"
        )
    return 0


def _refresh(conn: Conn, args: argparse.Namespace) -> int:
    _require_metric(conn, args.id)
    rows = fetch(conn, QUERIES["metric_refresh"], (args.id,))
    written = rows[0]["log_metric_refresh"] if rows else 0
    print(f"log metric {args.id!r} refreshed: {written} buckets written")
    return 0


# Parser -------------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 100000")
    return value


def _add_create_options(create: argparse.ArgumentParser) -> None:
    create.add_argument(
        "--default",
        action="store_true",
        help="create the default metrics (log_lines, log_errors, totaltraffic with its alert "
        "rule, http_5xx, sshd_auth_failures); those that exist are kept",
    )
    create.add_argument(
        "-id", "--id", dest="id", metavar="ID", help="its id and series name: [a-z][a-z0-9_]*"
    )
    what = create.add_argument_group("what it computes")
    what.add_argument(
        "-s",
        "--stat",
        metavar="STAT",
        help="count, count_distinct, sum, avg, min, max, p50, p95 or p99",
    )
    what.add_argument(
        "--of",
        metavar="FIELD",
        help="the field of the statistic (not for count): requests: request_time, "
        "upstream_time, bytes, status, error (1 for a 5xx: avg = share of 5xx); journal: "
        "priority, captured (--value-regex); count_distinct: any property",
    )
    what.add_argument(
        "--prop",
        action="append",
        metavar="PROP",
        help="group by (repeat, or host,unit; '*' = no grouping, the default): journal: "
        "host, unit, container, priority, identifier or any field; requests: host, vhost, ip, "
        "method, status, status_class, route, path, user_agent",
    )
    what.add_argument(
        "--period",
        type=seconds_or_duration,
        metavar="SECONDS|DURATION",
        help="the bucket: 60 (seconds) or 1m, 5m... (default 1m)",
    )
    what.add_argument(
        "--refresh_rate",
        "--refresh-rate",
        dest="refresh_rate",
        type=seconds_or_duration,
        metavar="SECONDS|DURATION",
        help="how often it is brought up to date (default: the period, at most 1m)",
    )
    what.add_argument(
        "--source",
        choices=("journal", "requests"),
        help="journal lines or request records (default: requests when a request field, "
        "property or filter is named, else journal)",
    )
    what.add_argument(
        "--value-regex",
        metavar="RE",
        help="journal: a regex with one capture group; its number is the field 'captured'",
    )
    what.add_argument("--description", metavar="TEXT")
    what.add_argument("--json", action="store_true", help="print what was created as JSON")
    which = create.add_argument_group("which lines (all must hold)")
    which.add_argument("--host", metavar="GLOB", help="host name (* = any)")
    which.add_argument("--unit", metavar="GLOB", help="journal: systemd unit")
    which.add_argument("--container", metavar="GLOB", help="journal: container name")
    which.add_argument(
        "--priority", type=priority_arg, metavar="P", help="journal: priority <= P (0-7 or err...)"
    )
    which.add_argument(
        "--identifier", metavar="GLOB", help="journal: SYSLOG_IDENTIFIER (e.g. sshd)"
    )
    which.add_argument(
        "--contains", metavar="TEXT", help="the message (requests: the path) contains TEXT"
    )
    which.add_argument(
        "--regex", metavar="RE", help="the message (requests: the path) matches RE (POSIX)"
    )
    which.add_argument(
        "--field",
        dest="field_eq",
        type=label_arg,
        action="append",
        metavar="KEY=VALUE",
        help="journal: the field KEY equals VALUE (repeatable)",
    )
    which.add_argument(
        "--status",
        type=status_arg,
        metavar="CLASS|CODES",
        help="requests: 5xx, or 401,403 (classes and codes, comma-separated)",
    )
    which.add_argument("--vhost", metavar="GLOB", help="requests: the virtual host")
    which.add_argument("--method", metavar="METHOD", help="requests: GET, POST...")
    which.add_argument("--path-prefix", metavar="PREFIX", help="requests: the path starts so")
    which.add_argument("--ip", metavar="IP|CIDR", help="requests: the client address is within")


def register(subparsers: Any) -> dict[str, Handler]:
    actions = add_command(
        subparsers, "metrics", "log metrics: series computed from journal lines and requests"
    )
    create = actions.add_parser(
        "create",
        help="a new log metric (or --default: the usual ones)",
        description="A new log metric over the lines already stored and those to come, e.g. "
        "`vigil metrics create -id magic -s count --prop '*' --period 60 --refresh_rate 60`.",
    )
    _add_create_options(create)
    listing = actions.add_parser("list", help="every log metric")
    listing.add_argument("--json", action="store_true")
    get = actions.add_parser("get", help="its latest observations, newest first")
    get.add_argument("id", metavar="ID")
    get.add_argument("--json", action="store_true")
    get.add_argument(
        "--limit", type=_positive, default=20, metavar="N", help="at most N (default 20)"
    )
    meta = actions.add_parser("meta", help="its definition, the SQL it runs, its refreshes")
    meta.add_argument("id", metavar="ID")
    meta.add_argument("--json", action="store_true")
    delete = actions.add_parser("delete", help="the metric and its series")
    delete.add_argument("id", metavar="ID")
    refresh = actions.add_parser("refresh", help="bring it up to date now")
    refresh.add_argument("id", metavar="ID")
    return {
        "metrics": subcommands(
            {
                "create": _create,
                "list": _list,
                "get": _get,
                "meta": _meta,
                "delete": _delete,
                "refresh": _refresh,
            }
        )
    }
