"""What the alerting commands share: parsing of durations and labels, one-line errors (the
database's check constraints in words), aligned tables and JSON values."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import psycopg
from psycopg.rows import dict_row

from vigil.cluster import database_url
from vigil.db import fetch_bool
from vigil.durations import format_duration, parse_duration
from vigil.settings import Settings

Conn = psycopg.Connection[Any]
Row = dict[str, Any]
Handler = Callable[[Settings, argparse.Namespace], int]
Action = Callable[[Conn, argparse.Namespace], int]


class CliError(Exception):
    """A refusal the command reports as one line on stderr: exit code 1 (refused: bad value,
    not found, a constraint), or 2 for a usage error (options that do not go together)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class OneLineParser(argparse.ArgumentParser):
    """A subcommand parser whose usage errors are one line (the usage of `vigil rules add`
    alone is a screen): `vigil: argument --agg: invalid choice: ... (see `vigil rules add
    --help`)`; exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"vigil: {message} (see `{self.prog} --help`)\n")


def add_command(subparsers: Any, name: str, help: str) -> Any:
    """`vigil NAME ACTION ...`: a command made of actions (`args.action`, one required), each
    a subcommand with one-line usage errors; returns what its actions are added to."""
    command = subparsers.add_parser(name, help=help)
    return command.add_subparsers(dest="action", required=True, parser_class=OneLineParser)


# The check and unique constraints of sql/15_alerts.sql in the words of the command line.
CONSTRAINTS: dict[str, str] = {
    "alert_rules_name_key": 'a rule named "{name}" exists already',
    "alert_rules_name_check": (
        'rule name "{name}": 1 to 100 letters, digits and _ . : -, starting with a letter or digit'
    ),
    "alert_rules_source_check": "a rule watches --series, --heartbeat, --uptime or --log",
    "alert_rules_agg_check": "--agg must be avg, min, max, last, count, sum or rate",
    "alert_rules_uptime_agg_check": (
        "an --uptime rule aggregates with --agg last (1 up, 0 down), avg (share of checks ok), "
        "min or max (response time in ms) or count (failed checks)"
    ),
    "alert_rules_log_agg_check": "a --log rule counts lines: --agg count only",
    "alert_rules_window_check": "--window must be between 1s and 31d",
    "alert_rules_op_check": "--op must be one of > >= < <= == !=",
    "alert_rules_recover_op_check": "--recover-op must be one of > >= < <= == !=",
    "alert_rules_condition_check": (
        "a rule needs a condition: --above X, --below X or --op OP --threshold X"
    ),
    "alert_rules_recover_check": (
        "a recovery condition needs its operator and threshold: --recover-below Y, "
        "--recover-above Y or --recover-op OP --recover-threshold Y"
    ),
    "alert_rules_series_check": "a --series rule needs the series name",
    "alert_rules_durations_check": (
        "--for, --keep-firing-for and --repeat must be 0 or more, --group-wait at most 10m "
        "and --no-data-after more than 0"
    ),
    "alert_rules_no_data_check": "--no-data must be alert, ok or keep",
    "alert_rules_severity_check": "--severity must be info, warning or critical",
    "alert_rules_labels_check": "labels must be KEY=VALUE pairs",
    "alert_rules_eval_interval_check": "--eval-interval must be between 1s and 1d",
    "alert_rules_metric_type_check": "only the built-in heartbeat rules have a metric type",
    "alert_rules_depends_on_fkey": "--depends-on names no rule (see `vigil rules list`)",
    "silences_range_check": "a silence must end after it starts (--for more than 0)",
    "silences_matchers_check": "labels must be KEY=VALUE pairs",
    "silences_comment_check": "--comment must be 1 to 500 characters, not only spaces",
    "maintenance_windows_name_key": 'a maintenance window named "{name}" exists already',
    "maintenance_windows_days_check": "--days are mon, tue, wed, thu, fri, sat, sun",
    "maintenance_windows_matchers_check": "labels must be KEY=VALUE pairs",
    "maintenance_windows_range_check": (
        "--from and --to must differ (an end at or before the start is on the next day)"
    ),
}

NO_RULE = 'no rule named "{name}" (see `vigil rules list`)'

REFUSAL_CLASSES = ("22", "23")
"""SQLSTATE classes that refuse the input: data exceptions (22023 raised by the engine's
functions, values out of range) and integrity constraints (check, unique, not null)."""
REFUSAL_CODES = frozenset({"42501", "55000", "P0001"})
"""And single codes: not allowed, an object not in a state to do that (a built-in rule
cannot be deleted), a plain RAISE."""


def is_refusal(exc: psycopg.Error) -> bool:
    """Whether the database refused the statement because of the input (one line, exit code
    1); anything else (connection lost, schema not migrated) goes to main's database error."""
    code = exc.sqlstate or ""
    return code.startswith(REFUSAL_CLASSES) or code in REFUSAL_CODES


def explain(exc: psycopg.Error, **values: object) -> str:
    """One line for a refused statement: the constraint in words, else the database's own
    message with its hint."""
    diag = exc.diag
    text = CONSTRAINTS.get(diag.constraint_name or "")
    if text is not None:
        return text.format_map({k: v for k, v in values.items() if v is not None})
    message = (diag.message_primary or str(exc)).strip()
    hint = f" ({diag.message_hint})" if diag.message_hint else ""
    return message + hint


def run_with_connection(
    settings: Settings, args: argparse.Namespace, action: Callable[[Conn], int]
) -> int:
    """Runs `action` on an autocommit connection to the database, as the other commands do;
    refusals (CliError, the database's input errors) become one line on stderr."""
    try:
        with database_url(settings) as url, psycopg.connect(url, autocommit=True) as conn:
            return action(conn)
    except CliError as exc:
        fail(str(exc))
        return exc.code
    except psycopg.Error as exc:
        if not is_refusal(exc):
            raise
        fail(explain(exc, name=getattr(args, "name", None)))
        return 1
    except BrokenPipeError:
        return reader_gone()


def subcommands(actions: Mapping[str, Action]) -> Handler:
    """The handler of a command whose subcommands (`args.action`) each run on a connection
    of their own (run_with_connection)."""

    def handle(settings: Settings, args: argparse.Namespace) -> int:
        action = actions[args.action]
        return run_with_connection(settings, args, lambda conn: action(conn, args))

    return handle


def reader_gone() -> int:
    """stdout's reader went away (`vigil alerts --json | head`): end quietly, as `cat` does;
    stdout then points at /dev/null so that the interpreter's final flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def fail(message: str) -> None:
    print(f"vigil: {message}", file=sys.stderr)


def fetch(conn: Conn, query: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[Row]:
    """The rows of a named query as dicts."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def require(
    conn: Conn, query: str, params: Sequence[Any] | Mapping[str, Any], missing: str
) -> None:
    """Runs a statement that answers true (a row, a name, an id) when it found what it names;
    refuses with `missing` when it did not."""
    if not fetch_bool(conn, query, params):
        raise CliError(missing)


def statement_action(query: str, missing: str, done: str, **fixed: object) -> Action:
    """A command that is one statement: run with the command's arguments as `%(name)s`
    parameters (`fixed` adds values), it prints `done`, or refuses with `missing` when the
    statement found nothing. Both messages are formatted with the same values:
    `rule {name!r} deleted`."""

    def action(conn: Conn, args: argparse.Namespace) -> int:
        values = {**vars(args), **fixed}
        require(conn, query, values, missing.format_map(values))
        print(done.format_map(values))
        return 0

    return action


# Parsing ------------------------------------------------------------------------------


def duration_arg(text: str) -> timedelta:
    """argparse type: a duration (parse_duration)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def duration_option(group: Any, flag: str, help: str | None = None, **kwargs: Any) -> None:
    """An option that takes a duration (parse_duration), on a parser or an argument group."""
    group.add_argument(flag, type=duration_arg, metavar="DURATION", help=help, **kwargs)


def label_option(group: Any, help: str | None = None) -> None:
    """--label KEY=VALUE, repeatable: labels that alert instances must have."""
    group.add_argument("--label", type=label_arg, action="append", metavar="KEY=VALUE", help=help)


def label_arg(text: str) -> tuple[str, str]:
    """argparse type: KEY=VALUE (the value may be empty, the key not)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value


def labels(pairs: Iterable[tuple[str, str]] | None) -> dict[str, str]:
    return dict(pairs or ())


def finite_float(text: str) -> float:
    """argparse type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def parse_time(text: str) -> datetime:
    """An ISO 8601 time; without an offset it is the machine's local time."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-11-22T10:00:00+01:00)"
        ) from None
    return value if value.tzinfo else value.astimezone()


def os_user() -> str | None:
    """Who runs the command (authors of silences, creators of rules); None when unknown
    (the database user is taken then)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


# Output -------------------------------------------------------------------------------


def utc(value: datetime | None) -> str:
    """A time for people, in UTC: 2026-11-22 10:00:00."""
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}" if value else "-"


def iso(value: datetime | None) -> str | None:
    """A time for scripts: ISO 8601 in UTC."""
    return value.astimezone(UTC).isoformat() if value else None


def number(value: float | None, text: str | None = None) -> str:
    """A value for people: 95, 0.25, 1.5e+09; the raw text when there is no number."""
    if value is None:
        return text if text else "-"
    return f"{value:.6g}"


def matchers_text(matchers: Mapping[str, Any] | None) -> str:
    """{"host": "web-1"} as host=web-1 (several comma-separated); - when empty."""
    if not matchers:
        return "-"
    return ",".join(f"{k}={v}" for k, v in sorted(matchers.items()))


def ago(value: datetime | None, now: datetime) -> str:
    """How long ago: 12s, 3m 12s, 2h 5m, 1d 3h."""
    if value is None:
        return "-"
    seconds = max(0, int((now - value).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Aligned columns under a header line, as `vigil token list` prints them."""
    cells = [[str(h) for h in headers], *([("" if c is None else str(c)) for c in r] for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    return "\n".join(lines)


def print_json(value: object) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def jsonable(fields: Mapping[str, Any]) -> dict[str, Any]:
    """An object for scripts (--json), as docs/alerts.md promises: times ISO 8601 in UTC,
    durations as the options take them ("5m"), every other value as it is."""
    return {key: _json_value(value) for key, value in fields.items()}


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    return value
