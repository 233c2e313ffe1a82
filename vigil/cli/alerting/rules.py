"""`vigil rules list|show|add|edit|enable|disable|delete|test`: the rows of vigil.alert_rules.

`add` and `edit` take the same options; `edit` changes only the ones given. The database
checks every value (its check constraints, said in words by common.CONSTRAINTS); this
module checks only which options go together.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from psycopg.types.json import Jsonb

from vigil.cli.alerting import QUERIES
from vigil.cli.alerting.common import (
    NO_RULE,
    CliError,
    Conn,
    Handler,
    Row,
    add_command,
    duration_option,
    fetch,
    finite_float,
    jsonable,
    label_option,
    labels,
    matchers_text,
    number,
    os_user,
    print_json,
    require,
    statement_action,
    subcommands,
    table,
    utc,
)
from vigil.cli.block import add_rule_block_options, block_given, rule_blocks, set_rule_block
from vigil.durations import format_duration
from vigil.rule_text import condition_tail

AGGS = ("avg", "min", "max", "last", "count", "sum", "rate")
OPS = {
    **{op: op for op in (">", ">=", "<", "<=", "==", "!=")},
    **{"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "==", "ne": "!="},
}
PRIORITIES = {
    "emerg": 0,
    "alert": 1,
    "crit": 2,
    "err": 3,
    "warning": 4,
    "notice": 5,
    "info": 6,
    "debug": 7,
}

# Which matcher options each source takes (option -> column it sets).
MATCHERS: dict[str, dict[str, str]] = {
    "series": {"--label": "match_labels"},
    "heartbeat": {"--host": "match_host", "--name": "match_name", "--type": "match_type"},
    "uptime": {"--service": "match_name"},
    "log": {
        "--host": "match_host",
        "--unit": "match_name",
        "--contains": "match_labels",
        "--priority": "match_labels",
    },
    "job": {},
}
WATCHED_COLUMNS = ("source", "match_host", "match_name", "match_type", "match_labels")
"""What a rule watches: fixed for the built-in rules."""

# The tunable columns rule_write sets, with what `rules edit` calls each when it changed.
COLUMN_OPTIONS = {
    "source": "source",
    "match_host": "host pattern",
    "match_name": "name pattern",
    "match_type": "type pattern",
    "match_labels": "labels matched",
    "agg": "--agg",
    "agg_window": "--window",
    "op": "--op",
    "threshold": "--threshold",
    "recover_op": "--recover-op",
    "recover_threshold": "--recover-threshold",
    "for_duration": "--for",
    "keep_firing_for": "--keep-firing-for",
    "no_data": "--no-data",
    "no_data_after": "--no-data-after",
    "severity": "--severity",
    "repeat_interval": "--repeat",
    "group_wait": "--group-wait",
    "alert_template": "--message",
    "ok_template": "--ok-message",
    "depends_on": "--depends-on",
    "depends_on_labels": "--depends-on-label",
    "rule_group": "--group",
    "eval_interval": "--eval-interval",
    "enabled": "--disabled",
    "description": "--description",
}


def op_arg(text: str) -> str:
    """argparse type: > >= < <= == != (or gt ge lt le eq ne, which need no shell quoting)."""
    try:
        return OPS[text.strip().lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an operator (> >= < <= == != or gt ge lt le eq ne)"
        ) from None


def priority_arg(text: str) -> int:
    """argparse type: a syslog priority, 0-7 or its name (err, warning...)."""
    value = text.strip().lower()
    if value.isdigit() and 0 <= int(value) <= 7:
        return int(value)
    if value in PRIORITIES:
        return PRIORITIES[value]
    raise argparse.ArgumentTypeError(f"{text!r} is not a priority (0-7 or {', '.join(PRIORITIES)})")


# What the options change -------------------------------------------------------------


def _given_source(args: argparse.Namespace) -> str | None:
    if args.series is not None:
        return "series"
    for source in ("heartbeat", "uptime", "log"):
        if getattr(args, source):
            return source
    return None


def _matcher_options(args: argparse.Namespace) -> dict[str, Any]:
    given = {
        "--label": args.label,
        "--host": args.m_host,
        "--name": args.m_name,
        "--type": args.m_type,
        "--service": args.m_service,
        "--unit": args.m_unit,
        "--contains": args.contains,
        "--priority": args.priority,
    }
    return {option: value for option, value in given.items() if value is not None}


def _watched(args: argparse.Namespace, current: Row | None) -> dict[str, Any]:
    """The columns of what the rule watches that the options change. A source option starts
    over (every matcher not given is cleared); without one the matchers of the rule's
    source change one by one."""
    source = _given_source(args)
    if source is None and current is None:  # pragma: no cover - argparse requires one on add
        raise CliError("give what the rule watches: --series, --heartbeat, --uptime or --log", 2)
    effective = source or str(current["source"] if current else "")
    options = _matcher_options(args)
    takes = MATCHERS.get(effective, {})
    wrong = [option for option in options if option not in takes]
    if wrong:
        accepted = f"it takes {', '.join(takes)}" if takes else "it takes no matcher"
        raise CliError(f"{wrong[0]} does not apply to a {effective} rule ({accepted})", 2)
    changes: dict[str, Any] = {}
    match_labels: dict[str, Any] = dict(current["match_labels"]) if current else {}
    if source is not None:
        changes = {
            "source": source,
            "match_host": None,
            "match_name": args.series,
            "match_type": None,
            "match_labels": {},
        }
        match_labels = {}
    for option, value in options.items():
        column = takes[option]
        if column != "match_labels":
            changes[column] = value or None  # an empty pattern: every host, name...
        elif option == "--label":
            match_labels = labels(value)
        else:
            key = option.removeprefix("--")
            if value == "":
                match_labels.pop(key, None)
            else:
                match_labels[key] = value
        if column == "match_labels":
            changes["match_labels"] = match_labels
    return changes


def _condition(args: argparse.Namespace, adding: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if args.above is not None:
        changes.update(op=">", threshold=args.above)
    elif args.below is not None:
        changes.update(op="<", threshold=args.below)
    elif args.op is not None:
        changes["op"] = args.op
    if args.threshold is not None:
        if args.above is not None or args.below is not None:
            raise CliError("--threshold goes with --op, not with --above or --below", 2)
        if adding and args.op is None:
            raise CliError("--threshold needs --op (or give --above X or --below X)", 2)
        changes["threshold"] = args.threshold
    elif adding and args.op is not None:
        raise CliError("--op needs --threshold", 2)

    if args.recover_below is not None:
        changes.update(recover_op="<", recover_threshold=args.recover_below)
    elif args.recover_above is not None:
        changes.update(recover_op=">", recover_threshold=args.recover_above)
    elif getattr(args, "no_recover", False):
        changes.update(recover_op=None, recover_threshold=None)
    elif args.recover_op is not None:
        changes["recover_op"] = args.recover_op
    if args.recover_threshold is not None:
        if "recover_threshold" in changes:
            raise CliError("--recover-threshold goes with --recover-op only", 2)
        changes["recover_threshold"] = args.recover_threshold
    return changes


def _tuning(conn: Conn, args: argparse.Namespace) -> dict[str, Any]:
    given = {
        "agg": args.agg,
        "agg_window": args.window,
        "for_duration": args.for_duration,
        "keep_firing_for": args.keep_firing_for,
        "no_data": args.no_data,
        "no_data_after": args.no_data_after,
        "severity": args.severity,
        "repeat_interval": args.repeat,
        "group_wait": args.group_wait,
        "eval_interval": args.eval_interval,
        "rule_group": args.group,
        "depends_on_labels": args.depends_on_label,
    }
    changes = {column: value for column, value in given.items() if value is not None}
    # Texts: an empty value clears (the default message, no description, no parent).
    for column, value in (
        ("alert_template", args.message),
        ("ok_template", args.ok_message),
        ("description", args.description),
        ("depends_on", args.depends_on),
    ):
        if value is not None:
            changes[column] = value or None
    parent = changes.get("depends_on")
    if parent is not None:
        if parent == args.name:
            raise CliError("a rule cannot depend on itself")
        require(
            conn, QUERIES["rule_exists"], (parent,), "--depends-on: " + NO_RULE.format(name=parent)
        )
    if getattr(args, "disabled", False):
        changes["enabled"] = False
    return changes


def _default_agg(source: str) -> str:
    return "count" if source == "log" else "last"


# Commands -------------------------------------------------------------------------------


def _add(conn: Conn, args: argparse.Namespace) -> int:
    watched = _watched(args, None)
    condition = _condition(args, adding=True)
    with conn.transaction():
        tuning = _tuning(conn, args)
        source = watched["source"]
        conn.execute(
            QUERIES["rule_insert"],
            {
                "name": args.name,
                "source": source,
                "match_name": watched.get("match_name"),
                "agg": tuning.get("agg") or _default_agg(source),
                "op": condition.get("op"),
                "threshold": condition.get("threshold"),
                "created_by": os_user(),
            },
        )
        row = _write(conn, args.name, {**watched, **condition, **tuning})
        block = set_rule_block(conn, args.name, args)
    print(f"rule {args.name!r} added: {watches_text(row)}: {condition_text(row)}")
    if block:
        print(f"when it fires it {block}")
    if not row["enabled"]:
        print("it is disabled: `vigil rules enable` starts its evaluation")
    return 0


def _edit(conn: Conn, args: argparse.Namespace) -> int:
    with conn.transaction():
        current = _lock(conn, args.name)
        changes = {
            **_watched(args, current),
            **_condition(args, adding=False),
            **_tuning(conn, args),
        }
        if not changes and not block_given(args):
            raise CliError("nothing to change: give the options to change (see --help)", 2)
        if current["builtin"] and any(
            changes.get(c, current[c]) != current[c] for c in WATCHED_COLUMNS
        ):
            raise CliError(
                f"rule {args.name!r} is built in: what it watches cannot change (tune its "
                "condition, durations, texts and severity, or disable it)"
            )
        if (
            current["builtin"]
            and current["op"] is None
            and ("op" in changes or "threshold" in changes)
        ):
            raise CliError(
                f"rule {args.name!r} is built in and has no threshold: it fires on "
                + (
                    "a missed deadline (tune --no-data-after)"
                    if current["source"] == "heartbeat"
                    else "its own condition (see `vigil rules show`)"
                )
            )
        if changes.get("source") == "log" and current["source"] != "log" and not args.agg:
            changes["agg"] = "count"  # a log rule counts lines
        changed = [c for c in COLUMN_OPTIONS if c in changes and changes[c] != current[c]]
        row = _write(conn, args.name, changes)
        block = set_rule_block(conn, args.name, args)
    what = ", ".join(COLUMN_OPTIONS[c] for c in changed) if changed else "nothing (same values)"
    if block_given(args):
        what = "--block-for" if what.startswith("nothing") else what + ", --block-for"
    print(f"rule {args.name!r} changed: {what}")
    print(f"  {watches_text(row)}: {condition_text(row)}" + (f"; {block}" if block else ""))
    return 0


def _lock(conn: Conn, name: str) -> Row:
    rows = fetch(conn, QUERIES["rule_lock"], (name,))
    if not rows:
        raise CliError(NO_RULE.format(name=name))
    return rows[0]


def _write(conn: Conn, name: str, changes: dict[str, Any]) -> Row:
    row = {**_lock(conn, name), **changes}
    params = {column: row[column] for column in COLUMN_OPTIONS}
    params["match_labels"] = Jsonb(params["match_labels"])
    params["name"] = name
    conn.execute(QUERIES["rule_write"], params)
    return _get(conn, name)


def _get(conn: Conn, name: str) -> Row:
    rows = fetch(conn, QUERIES["rule_list"], {"name": name})
    if not rows:
        raise CliError(NO_RULE.format(name=name))
    return {**rows[0], **rule_blocks(conn).get(name, {})}


def _list(conn: Conn, args: argparse.Namespace) -> int:
    blocks = rule_blocks(conn)
    rows = [
        {**r, **blocks.get(r["name"], {})}
        for r in fetch(conn, QUERIES["rule_list"], {"name": None})
    ]
    if args.json:
        print_json([rule_json(r) for r in rows])
        return 0
    print(
        table(
            (
                "name",
                "source",
                "watches",
                "condition",
                "for",
                "repeat",
                "severity",
                "enabled",
                "firing",
                "pending",
            ),
            (
                (
                    r["name"] + (" (built in)" if r["builtin"] else ""),
                    r["source"],
                    watches_text(r),
                    condition_text(r),
                    format_duration(r["for_duration"]),
                    format_duration(r["repeat_interval"]) if r["repeat_interval"] else "never",
                    r["severity"],
                    "yes" if r["enabled"] else "no",
                    r["firing"],
                    r["pending"],
                )
                for r in rows
            ),
        )
    )
    return 0


def _show(conn: Conn, args: argparse.Namespace) -> int:
    from vigil.cli.alerting.alerts import alert_json, alert_table

    row = _get(conn, args.name)
    instances = fetch(conn, QUERIES["alert_list"], {"rule": args.name, "all": True, "recent": True})
    if args.json:
        print_json({**rule_json(row), "instances": [alert_json(i) for i in instances]})
        return 0
    shown = rule_json(row)
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        if isinstance(value, dict):
            value = matchers_text(value)
        elif isinstance(value, list):
            value = ",".join(value) or "-"
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, float):
            value = number(value)
        print(f"{key:<{width}}  {'-' if value is None else value}")
    print()
    if instances:
        print(alert_table(instances, with_rule=False))
    else:
        print("no instances yet (evaluated every " + str(shown["eval_interval"]) + ")")
    return 0


def _test(conn: Conn, args: argparse.Namespace) -> int:
    rule = _get(conn, args.name)
    rows = fetch(conn, QUERIES["rule_test"], (args.name,))
    if args.json:
        print_json(
            [
                jsonable(
                    {
                        "instance": r["instance"],
                        "instance_text": r["instance_text"],
                        "value": r["value"],
                        "last_at": r["last_at"],
                        "state": r["state"],
                        "would_be": r["would_be"],
                        "change": r["would_be"] != r["state"],
                        "reason": r["reason"],
                    }
                )
                for r in rows
            ]
        )
        return 0
    print(f"rule {args.name!r}: {watches_text(rule)}: {condition_text(rule)}")
    if not rule["enabled"]:
        print("disabled: the evaluator skips it until `vigil rules enable`")
    if not rows:
        print("no instance: nothing matches what it watches")
    else:
        print(
            table(
                ("instance", "value", "last data", "now", "would be", "reason"),
                (
                    (
                        r["instance_text"],
                        number(r["value"]),
                        utc(r["last_at"]),
                        r["state"],
                        r["would_be"] + (" (change)" if r["would_be"] != r["state"] else ""),
                        r["reason"],
                    )
                    for r in rows
                ),
            )
        )
    print("(a test: nothing was written and nobody was notified)", file=sys.stderr)
    return 0


# Display --------------------------------------------------------------------------------


def watches_text(row: Row) -> str:
    """What a rule watches, in one phrase."""
    source = row["source"]
    if source == "series":
        wanted = row["match_labels"] or {}
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(wanted.items()))
        return f"series {row['match_name']}" + (f"{{{inner}}}" if inner else "")
    if source == "heartbeat":
        parts = [
            f"{label}={row[column]}"
            for label, column in (
                ("host", "match_host"),
                ("name", "match_name"),
                ("type", "match_type"),
            )
            if row[column]
        ]
        return "heartbeat " + (" ".join(parts) if parts else "every metric")
    if source == "uptime":
        return f"service {row['match_name']}" if row["match_name"] else "every service"
    if source == "log":
        parts = [f"host={row['match_host']}"] if row["match_host"] else []
        parts += [f"unit={row['match_name']}"] if row["match_name"] else []
        extra = row["match_labels"] or {}
        if "contains" in extra:
            parts.append(f"contains {extra['contains']!r}")
        if "priority" in extra:
            parts.append(f"priority <= {extra['priority']}")
        return "log lines " + (" ".join(parts) if parts else "of every host")
    if source == "job":
        return "Vigil's jobs"
    return str(source)


def condition_text(row: Row) -> str:
    """When a rule fires and recovers, in one phrase."""
    if row["op"] is None:
        builtin = {
            "heartbeat": "no report before its deadline (the ping's value in minutes, "
            f"else {format_duration(row['no_data_after'])})",
            "uptime": "retries + 1 failed checks in a row",
            "job": "no finished run for its stall_after",
        }
        return builtin.get(row["source"], "no condition")
    threshold = number(row["threshold"])
    if row["builtin"]:
        text = f"value {row['op']} {threshold}"
    elif row["agg"] == "last":
        text = f"last {row['op']} {threshold}"
    else:
        text = f"{row['agg']}({format_duration(row['agg_window'])}) {row['op']} {threshold}"
    return text + condition_tail(row, number, "no data for")


def rule_json(row: Row) -> dict[str, Any]:
    """A rule for scripts (`rules list --json`, `rules show --json`): option names where an
    option sets the column, durations as the options take them ("5m"), times ISO 8601."""
    return jsonable(
        {
            "id": row["id"],
            "name": row["name"],
            "source": row["source"],
            "builtin": row["builtin"],
            "enabled": row["enabled"],
            "watches": watches_text(row),
            "condition": condition_text(row),
            "metric_type": row["metric_type"],
            "match_host": row["match_host"],
            "match_name": row["match_name"],
            "match_type": row["match_type"],
            "match_labels": row["match_labels"],
            "agg": row["agg"],
            "window": row["agg_window"],
            "op": row["op"],
            "threshold": row["threshold"],
            "recover_op": row["recover_op"],
            "recover_threshold": row["recover_threshold"],
            "for": row["for_duration"],
            "keep_firing_for": row["keep_firing_for"],
            "no_data": row["no_data"],
            "no_data_after": row["no_data_after"],
            "severity": row["severity"],
            "labels": row["labels"],
            "repeat": row["repeat_interval"],
            "group_wait": row["group_wait"],
            "eval_interval": row["eval_interval"],
            "group": row["rule_group"],
            "depends_on": row["depends_on"],
            "depends_on_labels": row["depends_on_labels"],
            "message": row["alert_template"],
            "ok_message": row["ok_template"],
            "description": row["description"],
            "created_by": row["created_by"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "next_eval_at": row["next_eval_at"],
            "firing": row["firing"],
            "pending": row["pending"],
            "block_for": row.get("block_for"),
            "block_label": row.get("block_label") if row.get("block_for") else None,
        }
    )


# Parser ---------------------------------------------------------------------------------


def add_rule_options(parser: argparse.ArgumentParser, edit: bool) -> None:
    """The options of `rules add` (and of `rules edit`, where each is optional and changes
    only its column)."""
    what = parser.add_argument_group(
        "what it watches" + (" (a new source starts over)" if edit else " (one source)")
    )
    source = what.add_mutually_exclusive_group(required=not edit)
    source.add_argument("--series", metavar="SERIES", help="a numeric series name (* allowed)")
    source.add_argument("--heartbeat", action="store_true", help="metrics sent to /metric")
    source.add_argument("--uptime", action="store_true", help="the services' HTTP checks")
    source.add_argument("--log", action="store_true", help="journal lines, counted per host")
    label_option(what, "series: a label the series must have (repeat for more)")
    what.add_argument("--host", dest="m_host", metavar="PATTERN", help="heartbeat, log: host")
    what.add_argument("--name", dest="m_name", metavar="PATTERN", help="heartbeat: metric name")
    what.add_argument("--type", dest="m_type", metavar="PATTERN", help="heartbeat: metric type")
    what.add_argument("--service", dest="m_service", metavar="PATTERN", help="uptime: service")
    what.add_argument("--unit", dest="m_unit", metavar="PATTERN", help="log: systemd unit")
    what.add_argument("--contains", metavar="TEXT", help="log: only lines containing TEXT")
    what.add_argument(
        "--priority",
        type=priority_arg,
        metavar="N",
        help="log: only lines of priority N or more severe (0-7 or err, warning...)",
    )

    cond = parser.add_argument_group("condition (values are compared as numbers)")
    fire = cond.add_mutually_exclusive_group()
    fire.add_argument("--above", type=finite_float, metavar="X", help="fire when value > X")
    fire.add_argument("--below", type=finite_float, metavar="X", help="fire when value < X")
    fire.add_argument("--op", type=op_arg, metavar="OP", help="> >= < <= == != (or gt ge ...)")
    cond.add_argument("--threshold", type=finite_float, metavar="X", help="with --op")
    recover = cond.add_mutually_exclusive_group()
    recover.add_argument(
        "--recover-below", type=finite_float, metavar="Y", help="recover only when value < Y"
    )
    recover.add_argument(
        "--recover-above", type=finite_float, metavar="Y", help="recover only when value > Y"
    )
    recover.add_argument("--recover-op", type=op_arg, metavar="OP", help="with --recover-threshold")
    if edit:
        recover.add_argument(
            "--no-recover",
            action="store_true",
            help="recover as soon as the condition no longer holds",
        )
    cond.add_argument("--recover-threshold", type=finite_float, metavar="Y")
    cond.add_argument(
        "--agg", choices=AGGS, help="how the window becomes one value (default last; log: count)"
    )
    duration_option(cond, "--window", "read back from now (default 5m)")

    timing = parser.add_argument_group("timing (durations: 30s, 5m, 2h, 1d, 1h30m; 0 = none)")
    duration_option(
        timing, "--for", "pending this long before firing (default 0)", dest="for_duration"
    )
    duration_option(
        timing, "--keep-firing-for", "recovered this long before back to normal (default 0)"
    )
    duration_option(timing, "--repeat", "remind every DURATION while firing (default 0: never)")
    timing.add_argument(
        "--no-data",
        choices=("alert", "ok", "keep"),
        help="when the source is silent: fire, recover or keep the state (default keep)",
    )
    duration_option(
        timing, "--no-data-after", "silence that counts as no data (default: the window)"
    )
    duration_option(
        timing,
        "--group-wait",
        "hold notifications to send those due together as one (default 2s, at most 10m)",
    )
    duration_option(timing, "--eval-interval", "how often it is evaluated (default 10s)")

    notify = parser.add_argument_group("notifications (an empty TEXT clears)")
    notify.add_argument("--severity", choices=("info", "warning", "critical"))
    notify.add_argument(
        "--depends-on",
        metavar="RULE",
        help="withhold while RULE fires for the same --depends-on-label values",
    )
    notify.add_argument(
        "--depends-on-label",
        action="append",
        metavar="KEY",
        help="labels that must match the parent's instance (default host; repeat for more)",
    )
    notify.add_argument("--group", metavar="NAME", help="a rule group, to tune rules together")
    notify.add_argument(
        "--message",
        metavar="TEMPLATE",
        help="firing text: {rule} {instance} {value} {host} {name} {severity} {reason} {since}",
    )
    notify.add_argument(
        "--ok-message", metavar="TEMPLATE", help="recovery text (same, plus {duration})"
    )
    notify.add_argument("--description", metavar="TEXT")
    if not edit:
        notify.add_argument("--disabled", action="store_true", help="add it disabled")


cmd_rules = subcommands(
    {
        "add": _add,
        "edit": _edit,
        "list": _list,
        "show": _show,
        "enable": statement_action(
            QUERIES["rule_set_enabled"], NO_RULE, "rule {name!r} enabled", enabled=True
        ),
        "disable": statement_action(
            QUERIES["rule_set_enabled"], NO_RULE, "rule {name!r} disabled", enabled=False
        ),
        "delete": statement_action(
            QUERIES["rule_delete"], NO_RULE, "rule {name!r} deleted with its instances and history"
        ),
        "test": _test,
    }
)


def register(subparsers: Any) -> dict[str, Handler]:
    actions = add_command(
        subparsers, "rules", "alert rules: list, show, add, edit, enable, disable, delete, test"
    )
    listing = actions.add_parser("list", help="every rule with its firing and pending counts")
    listing.add_argument("--json", action="store_true", help="a JSON list of rule objects")
    show = actions.add_parser("show", help="one rule: every setting and its instances")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    add = actions.add_parser(
        "add",
        help="add a rule",
        description="Add an alert rule. Example: vigil rules add cpu-high --series cpu "
        "--label host=web-1 --agg avg --window 5m --above 90 --recover-below 80 --for 2m",
    )
    add.add_argument("name", help="letters, digits and _ . : - (at most 100)")
    add_rule_options(add, edit=False)
    add_rule_block_options(add, edit=False)
    edit = actions.add_parser(
        "edit",
        help="change the options given, keep the others",
        description="Change a rule: only the options given change.",
    )
    edit.add_argument("name")
    add_rule_options(edit, edit=True)
    add_rule_block_options(edit, edit=True)
    for verb, text in (
        ("enable", "evaluate and notify again"),
        ("disable", "stop evaluating (built-in rules: stop notifying)"),
        ("delete", "delete a rule with its instances and history (not a built-in one)"),
    ):
        actions.add_parser(verb, help=text).add_argument("name")
    test = actions.add_parser(
        "test", help="evaluate now and print what would change; writes nothing, notifies nobody"
    )
    test.add_argument("name")
    test.add_argument("--json", action="store_true")
    return {"rules": cmd_rules}
