"""The alert pages: /alerts (firing and pending instances, recently normal ones, history),
/rules (list; a form per rule with a preview of its current values; enable, disable,
delete) and /silences (active, upcoming and expired; add, expire).

Every change is a CSRF-checked POST behind the operator session. What the database refuses
(a check constraint, an unknown rule, a silence that ends in the past) re-renders the form
with a readable message and a 4xx; only an unavailable database is a 503."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.alerts import QUERIES
from api.auth.sessions import current_operator, operator_guard
from api.core.db import http_error, pool_of, read_pool_of, status_of
from api.core.pages import render
from vigil import durations
from vigil.rule_text import condition_tail

SOURCES = ("series", "heartbeat", "uptime", "log")
"""The sources an operator's rule can watch (job is only the built-in vigil-jobs rule)."""
AGGREGATES = ("avg", "min", "max", "last", "count", "sum", "rate")
OPERATORS = (">", ">=", "<", "<=", "==", "!=")
NO_DATA = ("keep", "alert", "ok")
SEVERITIES = ("info", "warning", "critical")
STATES = ("firing", "pending", "normal")
NORMAL_SHOWN = 50
HISTORY_SHOWN = 100
EXPIRED_SHOWN = 50

RULE_FIELDS = (
    "name", "description", "source", "match_host", "match_name", "match_type",
    "match_labels", "agg", "agg_window", "op", "threshold", "recover_op",
    "recover_threshold", "for_duration", "keep_firing_for", "no_data", "no_data_after",
    "severity", "labels", "repeat_interval", "group_wait", "alert_template", "ok_template",
    "depends_on", "depends_on_labels", "rule_group", "eval_interval", "enabled",
)  # fmt: skip
"""The columns of vigil.alert_rules the rule form edits (its field names)."""
BUILTIN_FIXED = (
    "name", "source", "match_host", "match_name", "match_type", "match_labels", "agg",
    "agg_window", "op", "for_duration", "keep_firing_for", "no_data", "rule_group",
    "eval_interval",
)  # fmt: skip
"""What a built-in rule keeps whatever the form sends: it is judged where its signal
arrives, so only its thresholds, timings of notifications, texts and severity are tuned."""
DEADLINE_FIXED = ("threshold", "recover_op", "recover_threshold")
"""Also kept for a built-in rule without a condition (ping deadline, uptime, jobs)."""
NEW_RULE = {
    "source": "series", "agg": "avg", "agg_window": "5m", "op": ">", "for_duration": "0s",
    "keep_firing_for": "0s", "no_data": "keep", "severity": "warning",
    "repeat_interval": "0s", "group_wait": "2s", "depends_on_labels": "host",
    "rule_group": "default", "eval_interval": "10s", "enabled": "on",
}  # fmt: skip

CONSTRAINT_MESSAGES = {
    "alert_rules_name_key": "A rule with this name exists already.",
    "alert_rules_name_check": (
        "Name: 1 to 100 letters, digits and _ . : - , starting with a letter or digit."
    ),
    "alert_rules_source_check": "Source: choose series, heartbeat, uptime or log.",
    "alert_rules_agg_check": "Aggregate: choose avg, min, max, last, count, sum or rate.",
    "alert_rules_uptime_agg_check": (
        "An uptime rule aggregates with last (1 up, 0 down), avg (share of good checks), "
        "min or max (response time in ms) or count (failed checks)."
    ),
    "alert_rules_log_agg_check": "A log rule counts lines: choose the aggregate count.",
    "alert_rules_window_check": "Window: between 1 second and 31 days.",
    "alert_rules_op_check": "Condition: the operator is one of > >= < <= == !=.",
    "alert_rules_recover_op_check": "Recovery: the operator is one of > >= < <= == !=.",
    "alert_rules_condition_check": "A rule needs a condition: an operator and a threshold.",
    "alert_rules_recover_check": (
        "Recovery: give both an operator and a threshold, or neither (then the rule recovers "
        "when its condition no longer holds)."
    ),
    "alert_rules_series_check": "A series rule needs the series name (Name pattern).",
    "alert_rules_durations_check": (
        "Durations: for, keep firing for and repeat are 0 or more, group wait is at most "
        "10 minutes, no data after is longer than 0."
    ),
    "alert_rules_no_data_check": "No data: choose keep, alert or ok.",
    "alert_rules_severity_check": "Severity: choose info, warning or critical.",
    "alert_rules_labels_check": "Labels and matchers are key=value lines.",
    "alert_rules_eval_interval_check": "Evaluate every: between 1 second and 1 day.",
    "alert_rules_metric_type_check": "Only built-in heartbeat rules judge a metric type.",
    "silences_range_check": "A silence must end after it starts.",
    "silences_matchers_check": "Label matchers are key=value lines.",
    "silences_comment_check": "Comment: say why, in 1 to 500 characters.",
}
"""Check and unique constraints of sql/15_alerts.sql as operators read them."""

MAX_DURATION = timedelta(days=3660)


class FormError(ValueError):
    """A form field that cannot be used; the message names the field."""


# Parsing and formatting (pure) ----------------------------------------------------------


def parse_duration(text: str, what: str) -> timedelta:
    """What `vigil rules` takes (vigil.durations.parse_duration), typed more loosely: spaces
    and capitals ignored, a bare number is seconds; FormError otherwise."""
    compact = text.strip().lower().replace(" ", "")
    if compact.replace(".", "", 1).isdigit():
        compact += "s"
    try:
        value = durations.parse_duration(compact)
    except ValueError:
        raise FormError(
            f"{what}: {text.strip()!r} is not a duration ({durations.DURATION_EXAMPLES})."
        ) from None
    if value > MAX_DURATION:
        raise FormError(f"{what}: at most {MAX_DURATION.days} days.")
    return value


def format_duration(value: timedelta | None) -> str:
    """A duration as the form takes it back (as `vigil rules` prints it: 0s, 45s, 5m, 1h30m,
    2d, 1d2h); empty for none."""
    return durations.format_duration(value) or ""


def parse_labels(text: str, what: str) -> dict[str, str]:
    """key=value lines (blank lines and # comments skipped; "quoted" values unquoted)."""
    labels: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise FormError(f"{what}, line {number}: write key=value (got {line!r}).")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if key in labels:
            raise FormError(f"{what}: {key} is given twice.")
        labels[key] = value
    return labels


def format_labels(labels: Mapping[str, Any] | None) -> str:
    """Labels as key=value lines (the form's text)."""
    return "\n".join(f"{k}={'' if v is None else v}" for k, v in (labels or {}).items())


def parse_number(text: str, what: str) -> float | None:
    """A finite number, or None for an empty field."""
    stripped = text.strip()
    if not stripped:
        return None
    try:
        value = float(stripped)
    except ValueError:
        raise FormError(f"{what}: {stripped!r} is not a number.") from None
    if not math.isfinite(value):
        raise FormError(f"{what}: {stripped!r} is not a finite number.")
    return value


def format_number(value: float | None) -> str:
    """A value for people, as vigil._format_value: integers as such, else 3 decimals."""
    if value is None:
        return ""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _choice(text: str, choices: tuple[str, ...], what: str) -> str:
    if text not in choices:
        raise FormError(f"{what}: choose one of {', '.join(choices)}.")
    return text


def _optional(text: str) -> str | None:
    stripped = text.strip()
    return stripped or None


def parse_rule(raw: Mapping[str, str]) -> dict[str, Any]:
    """The form's text fields as the parameters of rule_insert / rule_update."""
    name = raw.get("name", "").strip()
    if not name:
        raise FormError("Name: required.")
    source = raw.get("source", "")
    if source not in (*SOURCES, "job"):
        raise FormError(f"Source: choose one of {', '.join(SOURCES)}.")
    op = raw.get("op", "").strip() or None
    if op is not None:
        _choice(op, OPERATORS, "Condition operator")
    recover_op = raw.get("recover_op", "").strip() or None
    if recover_op is not None:
        _choice(recover_op, OPERATORS, "Recovery operator")
    after = raw.get("no_data_after", "").strip()
    depends_on_labels = [
        part.strip() for part in raw.get("depends_on_labels", "").split(",") if part.strip()
    ]
    return {
        "name": name,
        "description": _optional(raw.get("description", "")),
        "source": source,
        "match_host": _optional(raw.get("match_host", "")),
        "match_name": _optional(raw.get("match_name", "")),
        "match_type": _optional(raw.get("match_type", "")),
        "match_labels": Jsonb(parse_labels(raw.get("match_labels", ""), "Label matchers")),
        "agg": _choice(raw.get("agg", ""), AGGREGATES, "Aggregate"),
        "agg_window": parse_duration(raw.get("agg_window", "") or "5m", "Window"),
        "op": op,
        "threshold": parse_number(raw.get("threshold", ""), "Threshold"),
        "recover_op": recover_op,
        "recover_threshold": parse_number(raw.get("recover_threshold", ""), "Recovery threshold"),
        "for_duration": parse_duration(raw.get("for_duration", "") or "0", "For"),
        "keep_firing_for": parse_duration(raw.get("keep_firing_for", "") or "0", "Keep firing for"),
        "no_data": _choice(raw.get("no_data", ""), NO_DATA, "No data"),
        "no_data_after": parse_duration(after, "No data after") if after else None,
        "severity": _choice(raw.get("severity", ""), SEVERITIES, "Severity"),
        "labels": Jsonb(parse_labels(raw.get("labels", ""), "Labels")),
        "repeat_interval": parse_duration(raw.get("repeat_interval", "") or "0", "Repeat every"),
        "group_wait": parse_duration(raw.get("group_wait", "") or "0", "Group wait"),
        "alert_template": _optional(raw.get("alert_template", "")),
        "ok_template": _optional(raw.get("ok_template", "")),
        "depends_on": _optional(raw.get("depends_on", "")),
        "depends_on_labels": depends_on_labels,
        "rule_group": raw.get("rule_group", "").strip() or "default",
        "eval_interval": parse_duration(raw.get("eval_interval", "") or "10s", "Evaluate every"),
        "enabled": raw.get("enabled") == "on",
    }


def form_values(rule: Mapping[str, Any]) -> dict[str, str]:
    """A rule row (rule_get) as the form's text fields."""
    values: dict[str, str] = {}
    for field in RULE_FIELDS:
        value = rule.get(field)
        if field == "enabled":
            values[field] = "on" if value else ""
        elif isinstance(value, timedelta) or field in ("no_data_after",):
            values[field] = format_duration(value)
        elif field in ("match_labels", "labels"):
            values[field] = format_labels(value)
        elif field == "depends_on_labels":
            values[field] = ", ".join(value or [])
        elif isinstance(value, float):
            values[field] = format_number(value)
        else:
            values[field] = "" if value is None else str(value)
    return values


def condition_text(rule: Mapping[str, Any]) -> str:
    """The condition of a rule in one line: avg 5m > 90, recover < 80."""
    if rule["builtin"] and rule["op"] is None:
        if rule["source"] == "heartbeat":
            default = format_duration(rule["no_data_after"])
            return f"no report before its deadline (ping value in minutes, else {default})"
        if rule["source"] == "uptime":
            return "retries + 1 failed checks in a row"
        return "no finished run for the job's stall_after"
    threshold = format_number(rule["threshold"])
    if rule["builtin"] and rule["source"] == "heartbeat":
        text = f"value {rule['op']} {threshold} or not a number"
    else:
        text = f"{rule['agg']} {format_duration(rule['agg_window'])} {rule['op']} {threshold}"
    return text + condition_tail(rule, format_number)


def watches_text(rule: Mapping[str, Any]) -> str:
    """What a rule's instances are, in one line: cpu{host=web-1}, host web-* unit nginx."""
    labels = ",".join(f"{k}={v}" for k, v in (rule.get("match_labels") or {}).items())
    source = rule["source"]
    if source == "series":
        return f"{rule['match_name'] or '*'}{'{' + labels + '}' if labels else ''}"
    parts = []
    names = {"heartbeat": "name", "uptime": "service", "log": "unit"}
    if rule.get("match_host"):
        parts.append(f"host {rule['match_host']}")
    if rule.get("match_name"):
        parts.append(f"{names.get(source, 'name')} {rule['match_name']}")
    if rule.get("match_type"):
        parts.append(f"type {rule['match_type']}")
    if labels:
        parts.append(labels)
    return " ".join(parts) or "every " + {
        "heartbeat": "metric", "uptime": "service", "log": "host", "job": "job"
    }.get(source, "instance")  # fmt: skip


def silence_link(rule: str, labels: Mapping[str, Any]) -> str:
    """The silence form prefilled for one instance: its rule and its labels as matchers."""
    matchers = "\n".join(f"{k}={v}" for k, v in labels.items() if isinstance(v, str))
    return "/silences?" + urlencode({"rule": rule, "matchers": matchers}) + "#add-silence"


def labels_text(labels: Mapping[str, Any] | None) -> str:
    """An instance's labels on one line, for a tooltip: host=web-1, __name__=cpu."""
    return ", ".join(f"{k}={v}" for k, v in (labels or {}).items())


def shown_value(value: float | None, value_text: str | None) -> str:
    """An instance's value: the reported text when there is one (heartbeats, services)."""
    if value_text is not None:
        return value_text
    return format_number(value) if value is not None else "no data"


def db_problem(exc: psycopg.Error) -> tuple[int, str]:
    """(4xx status, message for people) for what the database refused; raises the 503 of
    api.core.db for everything else (the database is down or failing)."""
    # 42501: e.g. deleting a built-in rule (its trigger refuses it).
    status = 403 if exc.sqlstate == "42501" else status_of(exc)
    if status >= 500:
        raise http_error(exc) from exc
    diag = exc.diag
    message = CONSTRAINT_MESSAGES.get(diag.constraint_name or "")
    if message is None:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = diag.message_primary or first
        if diag.message_hint:
            message += f" ({diag.message_hint})"
    return status, message


# Database helpers --------------------------------------------------------------------------


async def _all(conn: AsyncConnection[Any], sql: str, params: Any = None) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def _rule_names(conn: AsyncConnection[Any]) -> list[str]:
    return [str(r["name"]) for r in await _all(conn, QUERIES["alert_rule_names"])]


def _filter(request: Request[Any, Any, Any], key: str) -> str | None:
    value = request.query_params.get(key)
    return value.strip() if value and value.strip() else None


# /alerts ------------------------------------------------------------------------------------


def _decorate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row["shown_value"] = shown_value(row["value"], row["value_text"])
        row["silence_link"] = silence_link(row["rule"], row["instance"] or {})
        row["labels_text"] = labels_text(row["instance"])
    return rows


@get("/alerts", guards=[operator_guard], include_in_schema=False)
async def alerts_page(request: Request[Any, Any, Any]) -> Template:
    rule = _filter(request, "rule")
    state = _filter(request, "state")
    state = state if state in STATES else None
    params = {"rule": rule, "state": state}
    async with read_pool_of(request.app).connection() as conn:
        open_ = await _all(conn, QUERIES["alerts_open"], params)
        normal = await _all(conn, QUERIES["alerts_normal"], {**params, "limit": NORMAL_SHOWN})
        history = await _all(conn, QUERIES["alerts_history"], {**params, "limit": HISTORY_SHOWN})
        names = await _rule_names(conn)
    for event in history:
        event["shown_value"] = shown_value(event["value"], event["value_text"])
        event["labels_text"] = labels_text(event["instance"])
    return render(
        request,
        "alerts/alerts.html",
        open=_decorate(open_),
        normal=_decorate(normal),
        history=history,
        rule_names=names,
        filters=params,
        states=STATES,
        firing=sum(1 for a in open_ if a["state"] == "firing"),
        pending=sum(1 for a in open_ if a["state"] == "pending"),
    )


# /rules -------------------------------------------------------------------------------------


@get("/rules", guards=[operator_guard], include_in_schema=False)
async def rules_page(request: Request[Any, Any, Any]) -> Template:
    return await _rules_list(request)


async def _rules_list(
    request: Request[Any, Any, Any], status_code: int = 200, error: str | None = None
) -> Template:
    async with read_pool_of(request.app).connection() as conn:
        rules = await _all(conn, QUERIES["rules_list"])
    for rule in rules:
        rule["condition"] = condition_text(rule)
        rule["watches"] = watches_text(rule)
        rule["for_text"] = format_duration(rule["for_duration"])
        rule["repeat_text"] = format_duration(rule["repeat_interval"])
    return render(
        request,
        "alerts/rules.html",
        status_code=status_code,
        rules=rules,
        error=error,
        done=request.query_params.get("done"),
        done_name=request.query_params.get("name"),
    )


async def _existing(request: Request[Any, Any, Any], name: str) -> dict[str, Any]:
    async with pool_of(request.app).connection() as conn:
        found = await _all(conn, QUERIES["rule_get"], (name,))
    if not found:
        raise NotFoundException(detail=f"no rule named {name!r}")
    return found[0]


async def _preview(conn: AsyncConnection[Any], name: str) -> list[dict[str, Any]]:
    rows = await _all(conn, QUERIES["rule_preview"], (name,))
    return [
        {
            "instance": row["instance"],
            "instance_text": row["instance_text"],
            "value": format_number(row["value"]) if row["value"] is not None else "no data",
            "last_at": row["last_at"],
            "state": row["state"],
            "would_be": row["would_be"],
            "reason": row["reason"],
        }
        for row in rows
    ]


def _form_condition(values: Mapping[str, str], builtin: bool) -> str | None:
    """The condition of the form's values in one line (None while they do not parse)."""
    try:
        params = parse_rule(values)
    except FormError:
        return None
    return condition_text({**params, "builtin": builtin})


async def _form_page(
    request: Request[Any, Any, Any],
    values: Mapping[str, str],
    original: str | None,
    builtin: bool = False,
    *,
    status_code: int = 200,
    error: str | None = None,
    preview: list[dict[str, Any]] | None = None,
    preview_error: str | None = None,
) -> Template:
    async with read_pool_of(request.app).connection() as conn:
        names = await _rule_names(conn)
    return render(
        request,
        "alerts/rule_form.html",
        status_code=status_code,
        values=values,
        original=original,
        builtin=builtin,
        fixed=(BUILTIN_FIXED + (() if values.get("op") else DEADLINE_FIXED)) if builtin else (),
        condition=_form_condition(values, builtin),
        error=error,
        preview=preview,
        preview_error=preview_error,
        rule_names=[n for n in names if n != original],
        sources=SOURCES,
        aggregates=AGGREGATES,
        operators=OPERATORS,
        no_data_choices=NO_DATA,
        severities=SEVERITIES,
        action="/rules/new" if original is None else f"/rules/{quote(original, safe='')}/edit",
        done=request.query_params.get("done"),
    )


@get("/rules/new", guards=[operator_guard], include_in_schema=False)
async def new_rule_page(request: Request[Any, Any, Any]) -> Template:
    values = {field: "" for field in RULE_FIELDS} | NEW_RULE
    for field in ("match_name", "source"):  # e.g. /rules/new?source=series&match_name=cpu
        given = _filter(request, field)
        if given is not None:
            values[field] = given
    return await _form_page(request, values, None)


@get("/rules/{name:str}/edit", guards=[operator_guard], include_in_schema=False)
async def edit_rule_page(request: Request[Any, Any, Any], name: FromPath[str]) -> Template:
    rule = await _existing(request, name)
    preview, preview_error = None, None
    try:
        async with pool_of(request.app).connection() as conn:  # rule_test writes, rolled back
            preview = await _preview(conn, name)
    except psycopg.Error as exc:
        preview_error = db_problem(exc)[1]
    return await _form_page(
        request,
        form_values(rule),
        name,
        bool(rule["builtin"]),
        preview=preview,
        preview_error=preview_error,
    )


async def _submit(request: Request[Any, Any, Any], original: str | None) -> Response[Any]:
    form = await request.form()
    values = {field: str(form.get(field, "")) for field in RULE_FIELDS}
    values["enabled"] = "on" if form.get("enabled") else ""
    existing = await _existing(request, original) if original is not None else None
    builtin = bool(existing and existing["builtin"])
    if existing is not None and builtin:
        kept = form_values(existing)
        fixed = BUILTIN_FIXED + (DEADLINE_FIXED if existing["op"] is None else ())
        values.update({field: kept[field] for field in fixed})
    try:
        params = parse_rule(values)
        if not builtin:
            _choice(params["source"], SOURCES, "Source")
    except FormError as exc:
        return await _form_page(request, values, original, builtin, status_code=400, error=str(exc))
    params["original"] = original
    params["author"] = current_operator(request).email
    query = QUERIES["rule_insert"] if original is None else QUERIES["rule_update"]
    preview_only = form.get("action") == "preview"
    preview: list[dict[str, Any]] | None = None
    row: tuple[Any, ...] | None = None
    try:
        async with pool_of(request.app).connection() as conn:
            if params["depends_on"] and params["depends_on"] not in await _rule_names(conn):
                raise FormError(f"Depends on: there is no rule named {params['depends_on']!r}.")
            if preview_only:
                # Written and tested inside a transaction that is rolled back: an unsaved
                # rule (or unsaved changes) previewed against the data of now.
                async with conn.transaction(force_rollback=True):
                    await conn.execute(query, params)
                    preview = await _preview(conn, params["name"])
            else:
                row = await (await conn.execute(query, params)).fetchone()
    except FormError as exc:
        return await _form_page(request, values, original, builtin, status_code=400, error=str(exc))
    except psycopg.Error as exc:
        status, message = db_problem(exc)
        return await _form_page(
            request, values, original, builtin, status_code=status, error=message
        )
    if preview is not None:
        return await _form_page(request, values, original, builtin, preview=preview)
    if row is None:  # renamed or deleted meanwhile
        raise NotFoundException(detail=f"no rule named {original!r}")
    saved = str(row[0])
    return Redirect("/rules?" + urlencode({"done": "saved", "name": saved}), status_code=303)


@post("/rules/new", guards=[operator_guard], status_code=303, include_in_schema=False)
async def create_rule(request: Request[Any, Any, Any]) -> Response[Any]:
    return await _submit(request, None)


@post("/rules/{name:str}/edit", guards=[operator_guard], status_code=303, include_in_schema=False)
async def update_rule(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[Any]:
    return await _submit(request, name)


async def _set_enabled(request: Request[Any, Any, Any], name: str, enabled: bool) -> Response[Any]:
    async with pool_of(request.app).connection() as conn:
        row = await (await conn.execute(QUERIES["rule_set_enabled"], (enabled, name))).fetchone()
    if row is None:
        return await _rules_list(request, 404, f"There is no rule named {name!r}.")
    done = "enabled" if enabled else "disabled"
    return Redirect("/rules?" + urlencode({"done": done, "name": name}), status_code=303)


@post("/rules/{name:str}/enable", guards=[operator_guard], status_code=303, include_in_schema=False)
async def enable_rule(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[Any]:
    return await _set_enabled(request, name, True)


@post(
    "/rules/{name:str}/disable", guards=[operator_guard], status_code=303, include_in_schema=False
)
async def disable_rule(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[Any]:
    return await _set_enabled(request, name, False)


@post("/rules/{name:str}/delete", guards=[operator_guard], status_code=303, include_in_schema=False)
async def delete_rule(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[Any]:
    async with pool_of(request.app).connection() as conn:
        row = await (await conn.execute(QUERIES["rule_delete"], (name,))).fetchone()
        builtin = row is None and bool(await _all(conn, QUERIES["rule_get"], (name,)))
    if builtin:
        message = f"Rule {name!r} is built in and cannot be deleted; disable it instead."
        return await _rules_list(request, 403, message)
    if row is None:
        return await _rules_list(request, 404, f"There is no rule named {name!r}.")
    return Redirect("/rules?" + urlencode({"done": "deleted", "name": name}), status_code=303)


# /silences ----------------------------------------------------------------------------------


async def _silences(
    request: Request[Any, Any, Any],
    form: Mapping[str, str],
    *,
    status_code: int = 200,
    error: str | None = None,
) -> Template:
    async with read_pool_of(request.app).connection() as conn:
        current = await _all(conn, QUERIES["silences_current"])
        expired = await _all(conn, QUERIES["silences_expired"], (EXPIRED_SHOWN,))
        names = await _rule_names(conn)
    return render(
        request,
        "alerts/silences.html",
        status_code=status_code,
        current=current,
        expired=expired,
        rule_names=names,
        form=form,
        error=error,
        done=request.query_params.get("done"),
    )


SILENCE_FIELDS = ("rule", "matchers", "duration", "until", "comment", "tz")


@get("/silences", guards=[operator_guard], include_in_schema=False)
async def silences_page(request: Request[Any, Any, Any]) -> Template:
    form = {field: request.query_params.get(field, "") for field in SILENCE_FIELDS}
    form["duration"] = form["duration"] or "2h"
    return await _silences(request, form)


def parse_until(text: str, tz: str = "") -> datetime | None:
    """The form's end time: a datetime-local value in the viewer's zone `tz` (the form's
    hidden field, filled by vigil.js; UTC when empty), or with its own offset."""
    stripped = text.strip()
    if not stripped:
        return None
    try:
        at = datetime.fromisoformat(stripped)
    except ValueError:
        raise FormError(f"Until: {stripped!r} is not a time such as 2026-11-22T18:00.") from None
    if at.tzinfo:
        return at
    try:
        zone = ZoneInfo(tz.strip()) if tz.strip() else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise FormError(f"Until: unknown time zone {tz.strip()!r}.") from None
    return at.replace(tzinfo=zone)


@post("/silences", guards=[operator_guard], status_code=303, include_in_schema=False)
async def add_silence(request: Request[Any, Any, Any]) -> Response[Any]:
    data = await request.form()
    form = {field: str(data.get(field, "")) for field in SILENCE_FIELDS}
    try:
        until = parse_until(form["until"], form["tz"])
        duration = None
        if until is None:
            if not form["duration"].strip():
                raise FormError("Give a duration (e.g. 2h) or an end time.")
            duration = parse_duration(form["duration"], "Duration")
        comment = form["comment"].strip()
        if not comment:
            raise FormError("Comment: say why you silence these alerts.")
        params = {
            "rule": _optional(form["rule"]),
            "matchers": Jsonb(parse_labels(form["matchers"], "Label matchers")),
            "for": duration,
            "until": until,
            "comment": comment,
            "author": current_operator(request).email,
        }
    except FormError as exc:
        return await _silences(request, form, status_code=400, error=str(exc))
    try:
        async with pool_of(request.app).connection() as conn:
            await conn.execute(QUERIES["silence_add"], params)
    except psycopg.Error as exc:
        status, message = db_problem(exc)
        return await _silences(request, form, status_code=status, error=message)
    return Redirect("/silences?done=added", status_code=303)


@post(
    "/silences/{silence_id:int}/expire",
    guards=[operator_guard],
    status_code=303,
    include_in_schema=False,
)
async def expire_silence(
    request: Request[Any, Any, Any], silence_id: FromPath[int]
) -> Response[Any]:
    async with pool_of(request.app).connection() as conn:
        row = await (await conn.execute(QUERIES["silence_expire"], (silence_id,))).fetchone()
    if not row or not row[0]:
        form = {field: "" for field in SILENCE_FIELDS} | {"duration": "2h"}
        message = f"Silence {silence_id} is not active or upcoming (expired already?)."
        return await _silences(request, form, status_code=404, error=message)
    return Redirect("/silences?done=expired", status_code=303)


ROUTES = [
    alerts_page,
    rules_page,
    new_rule_page,
    edit_rule_page,
    create_rule,
    update_rule,
    enable_rule,
    disable_rule,
    delete_rule,
    silences_page,
    add_silence,
    expire_silence,
]
