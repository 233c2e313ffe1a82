"""`vigil rules|alerts|silence|maintenance` as operators and their scripts run them: the
console script on a fresh database, its JSON contract, one-line refusals with their exit
codes (1: refused, 2: usage), and an alert from a series point to `vigil alerts --json`,
silenced, suppressed and observed."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from tests.support.processes import VIGIL, vigil_env, vigil_in_process
from vigil.cli.alerting.common import CliError
from vigil.cli.alerting.silences import days_text, parse_clock, parse_days
from vigil.durations import format_duration, parse_duration

Conn = psycopg.Connection[tuple[object, ...]]

ALERT_KEYS = {"rule", "instance", "state", "since", "value", "silenced", "suppressed", "reason"}
RULE_KEYS = {
    "name", "source", "builtin", "enabled", "op", "threshold", "recover_op",
    "recover_threshold", "agg", "window", "for", "repeat", "severity", "firing",
}  # fmt: skip


def vigil(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    """In this process; the observe and broken-pipe tests run the real console script."""
    return vigil_in_process(dsn, *args)


def ok(dsn: str, *args: str) -> str:
    result = vigil(dsn, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def as_json(dsn: str, *args: str) -> Any:
    return json.loads(ok(dsn, *args, "--json"))


def refused(dsn: str, *args: str, code: int = 1) -> str:
    """The one line on stderr of a command that must fail with exit code `code`."""
    result = vigil(dsn, *args)
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, never a traceback
    return lines[0]


def one(conn: Conn, query: str, *params: object) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def rule_row(conn: Conn, name: str) -> dict[str, Any]:
    """The rule's columns but next_eval_at (it starts as -infinity, which Python cannot hold)."""
    columns = [
        sql.Identifier(str(c))
        for (c,) in conn.execute(
            "select attname from pg_attribute where attrelid = 'vigil.alert_rules'::regclass"
            " and attnum > 0 and not attisdropped and attname <> 'next_eval_at'"
        )
    ]
    query = sql.SQL("select {} from vigil.alert_rules where name = %s").format(
        sql.SQL(", ").join(columns)
    )
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute(query, (name,)).fetchone()
    assert row is not None, name
    return row


def point(conn: Conn, name: str, value: float, **labels: str) -> None:
    conn.execute("select vigil.add_point(%s, %s, now(), %s)", (name, value, Jsonb(labels)))


def evaluate(conn: Conn) -> None:
    conn.execute("select vigil.evaluate_rules(now())")


def by_rule(alerts: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["rule"] == rule]


def test_rules_add_maps_every_option_to_its_column(dsn: str, conn: Conn) -> None:
    out = ok(
        dsn, "rules", "add", "cpu-high", "--series", "cpu", "--label", "host=web-1",
        "--label", "dc=fra", "--agg", "avg", "--window", "5m", "--above", "90",
        "--recover-below", "80", "--for", "2m", "--repeat", "1h", "--no-data", "alert",
    )  # fmt: skip
    assert out.startswith('rule \'cpu-high\' added: series cpu{dc="fra",host="web-1"}')
    r = rule_row(conn, "cpu-high")
    assert (r["source"], r["match_name"], r["match_labels"]) == (
        "series", "cpu", {"host": "web-1", "dc": "fra"},
    )  # fmt: skip
    assert (r["agg"], r["agg_window"], r["op"], r["threshold"]) == (
        "avg", timedelta(minutes=5), ">", 90,
    )  # fmt: skip
    assert (r["recover_op"], r["recover_threshold"]) == ("<", 80)
    assert (r["for_duration"], r["repeat_interval"], r["no_data"]) == (
        timedelta(minutes=2), timedelta(hours=1), "alert",
    )  # fmt: skip
    assert (r["enabled"], r["builtin"]) == (True, False) and r["created_by"]
    assert r["group_wait"] == timedelta(seconds=2)  # not given: the column's default

    ok(
        dsn, "rules", "add", "general", "--series", "temp_*", "--op", ">=", "--threshold",
        "-5.5", "--recover-op", "lt", "--recover-threshold", "-10", "--keep-firing-for", "90s",
        "--no-data-after", "1h30m", "--severity", "critical", "--depends-on", "cpu-high",
        "--depends-on-label", "host", "--depends-on-label", "dc", "--group-wait", "0",
        "--eval-interval", "1m", "--group", "slow", "--message", "Hot: {instance} {value}",
        "--ok-message", "Cool: {instance} after {duration}", "--description", "temperatures",
        "--disabled",
    )  # fmt: skip
    g = rule_row(conn, "general")
    assert (g["op"], g["threshold"], g["recover_op"], g["recover_threshold"]) == (
        ">=", -5.5, "<", -10,
    )  # fmt: skip
    assert (g["keep_firing_for"], g["no_data_after"], g["group_wait"], g["eval_interval"]) == (
        timedelta(seconds=90), timedelta(minutes=90), timedelta(0), timedelta(minutes=1),
    )  # fmt: skip
    assert (g["severity"], g["depends_on"], g["depends_on_labels"], g["rule_group"]) == (
        "critical", "cpu-high", ["host", "dc"], "slow",
    )  # fmt: skip
    assert (g["alert_template"], g["ok_template"], g["description"], g["enabled"]) == (
        "Hot: {instance} {value}", "Cool: {instance} after {duration}", "temperatures", False,
    )  # fmt: skip
    assert (g["agg"], g["match_labels"]) == ("last", {})

    ok(
        dsn, "rules", "add", "backups", "--heartbeat", "--host", "web-*", "--name", "backup",
        "--type", "ping", "--agg", "count", "--window", "1d", "--below", "1",
    )  # fmt: skip
    h = rule_row(conn, "backups")
    assert (h["source"], h["match_host"], h["match_name"], h["match_type"], h["agg"]) == (
        "heartbeat", "web-*", "backup", "ping", "count",
    )  # fmt: skip
    ok(dsn, "rules", "add", "shop-slow", "--uptime", "--service", "shop", "--agg", "max",
       "--above", "800")  # fmt: skip
    u = rule_row(conn, "shop-slow")
    assert (u["source"], u["match_name"], u["agg"]) == ("uptime", "shop", "max")
    ok(
        dsn, "rules", "add", "nginx-errors", "--log", "--host", "web-1", "--unit",
        "nginx.service", "--contains", "upstream timed out", "--priority", "err", "--above", "10",
    )  # fmt: skip
    log = rule_row(conn, "nginx-errors")
    assert (log["source"], log["match_host"], log["match_name"], log["agg"]) == (
        "log", "web-1", "nginx.service", "count",  # a log rule counts lines
    )  # fmt: skip
    assert log["match_labels"] == {"contains": "upstream timed out", "priority": 3}


def test_rules_list_show_edit_enable_disable_delete(dsn: str, conn: Conn) -> None:
    ok(dsn, "rules", "add", "cpu-high", "--series", "cpu", "--label", "host=web-1", "--agg",
       "avg", "--window", "5m", "--above", "90", "--recover-below", "80")  # fmt: skip
    rules = as_json(dsn, "rules", "list")
    assert isinstance(rules, list)
    names = [r["name"] for r in rules]
    assert {"ping", "disk", "uptime", "vigil-jobs", "cpu-high"} <= set(names)
    for rule in rules:
        assert set(rule) >= RULE_KEYS, rule["name"]
    cpu = next(r for r in rules if r["name"] == "cpu-high")
    assert (cpu["source"], cpu["builtin"], cpu["enabled"], cpu["severity"]) == (
        "series", False, True, "warning",
    )  # fmt: skip
    assert (cpu["op"], cpu["threshold"], cpu["recover_op"], cpu["recover_threshold"]) == (
        ">", 90, "<", 80,
    )  # fmt: skip
    assert (cpu["agg"], cpu["window"], cpu["for"], cpu["repeat"], cpu["firing"]) == (
        "avg", "5m", "0s", "0s", 0,
    )  # fmt: skip
    assert next(r for r in rules if r["name"] == "disk")["builtin"] is True

    listing = ok(dsn, "rules", "list").splitlines()
    header = listing[0]
    assert header.split() == [
        "name", "source", "watches", "condition", "for", "repeat", "severity", "enabled",
        "firing", "pending",
    ]  # fmt: skip
    row = next(line for line in listing if line.startswith("cpu-high"))
    assert row.index("series") == header.index("source")  # aligned columns
    assert 'cpu{host="web-1"}' in row and "avg(5m) > 90, recover < 80" in row

    shown = as_json(dsn, "rules", "show", "cpu-high")
    assert set(shown) >= RULE_KEYS and shown["instances"] == []
    assert shown["match_labels"] == {"host": "web-1"} and shown["group_wait"] == "2s"
    human = ok(dsn, "rules", "show", "cpu-high")
    assert "eval_interval" in human and "no instances yet" in human

    # edit: only the options given change
    before = rule_row(conn, "cpu-high")
    out = ok(dsn, "rules", "edit", "cpu-high", "--below", "10", "--no-recover", "--severity",
             "critical", "--for", "30s")  # fmt: skip
    assert out.startswith("rule 'cpu-high' changed:")
    after = rule_row(conn, "cpu-high")
    assert (after["op"], after["threshold"], after["recover_op"], after["severity"]) == (
        "<", 10, None, "critical",
    )  # fmt: skip
    assert after["for_duration"] == timedelta(seconds=30)
    unchanged = ("source", "match_name", "match_labels", "agg", "agg_window", "repeat_interval",
                 "group_wait", "eval_interval", "created_at")  # fmt: skip
    assert {c: after[c] for c in unchanged} == {c: before[c] for c in unchanged}
    ok(dsn, "rules", "edit", "cpu-high", "--threshold", "12", "--label", "host=web-2")
    after = rule_row(conn, "cpu-high")
    assert (after["op"], after["threshold"], after["match_labels"]) == ("<", 12, {"host": "web-2"})
    # a new source starts over: the series' labels go, the log matchers come
    ok(dsn, "rules", "edit", "cpu-high", "--log", "--host", "web-1", "--contains", "oom")
    after = rule_row(conn, "cpu-high")
    assert (after["source"], after["match_host"], after["match_name"], after["agg"]) == (
        "log", "web-1", None, "count",
    )  # fmt: skip
    assert after["match_labels"] == {"contains": "oom"}
    ok(dsn, "rules", "edit", "cpu-high", "--priority", "4")  # one log matcher, the others kept
    assert rule_row(conn, "cpu-high")["match_labels"] == {"contains": "oom", "priority": 4}
    # built-in rules are tuned the same way
    ok(dsn, "rules", "edit", "disk", "--above", "95")
    assert rule_row(conn, "disk")["threshold"] == 95
    ok(dsn, "rules", "edit", "ping", "--no-data-after", "10m")
    assert one(conn, "select default_deadline_minutes from vigil.rules where type = 'ping'") == 10

    ok(dsn, "rules", "disable", "cpu-high")
    assert rule_row(conn, "cpu-high")["enabled"] is False
    ok(dsn, "rules", "enable", "cpu-high")
    assert rule_row(conn, "cpu-high")["enabled"] is True
    ok(dsn, "rules", "disable", "ping")
    assert rule_row(conn, "ping")["enabled"] is False

    assert "deleted" in ok(dsn, "rules", "delete", "cpu-high")
    assert one(conn, "select count(*) from vigil.alert_rules where name = 'cpu-high'") == 0
    for action in ("delete", "enable", "disable", "show"):
        assert refused(dsn, "rules", action, "cpu-high") == (
            'vigil: no rule named "cpu-high" (see `vigil rules list`)'
        )
    assert "no rule named" in refused(dsn, "rules", "edit", "cpu-high", "--above", "1")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--agg", "median", "--above", "1"), 2,
         "argument --agg: invalid choice: 'median' (choose from"),
        (("--above", "1", "--below", "2"), 2,
         "argument --below: not allowed with argument --above"),
        (("--above", "1", "--for", "5x"), 2,
         "argument --for: '5x' is not a duration (e.g. 30s, 5m, 2h, 1d or 1h30m)"),
        (("--above", "1", "--window", "5"), 2, "'5' is not a duration"),
        (("--above", "nan"), 2, "argument --above: 'nan' is not a finite number"),
        (("--op", "~", "--threshold", "1"), 2, "argument --op: '~' is not an operator"),
        (("--op", ">"), 2, "--op needs --threshold"),
        (("--threshold", "3"), 2, "--threshold needs --op"),
        (("--above", "1", "--host", "web-1"), 2,
         "--host does not apply to a series rule (it takes --label)"),
        (("--recover-below", "1"), 1,
         "a rule needs a condition: --above X, --below X or --op OP --threshold X"),
        (("--above", "1", "--recover-op", "<"), 1,
         "a recovery condition needs its operator and threshold"),
        (("--above", "1", "--window", "0"), 1, "--window must be between 1s and 31d"),
        (("--above", "1", "--window", "32d"), 1, "--window must be between 1s and 31d"),
        (("--above", "1", "--group-wait", "1h"), 1, "--group-wait at most 10m"),
        (("--above", "1", "--eval-interval", "2d"), 1, "--eval-interval must be between 1s and 1d"),
        (("--above", "1", "--depends-on", "nope"), 1, '--depends-on: no rule named "nope"'),
    ],
)  # fmt: skip
def test_bad_rule_options_are_one_line_refusals(
    dsn: str, conn: Conn, args: tuple[str, ...], code: int, message: str
) -> None:
    line = refused(dsn, "rules", "add", "x", "--series", "cpu", *args, code=code)
    assert message in line
    assert line.startswith("vigil: ")
    assert one(conn, "select count(*) from vigil.alert_rules where name = 'x'") == 0


def test_refusals_of_other_commands(dsn: str, conn: Conn) -> None:
    ok(dsn, "rules", "add", "cpu-high", "--series", "cpu", "--above", "90")
    assert refused(dsn, "rules", "add", "cpu-high", "--series", "cpu", "--above", "1") == (
        'vigil: a rule named "cpu-high" exists already'
    )
    assert "1 to 100 letters, digits" in refused(
        dsn, "rules", "add", "bad name", "--series", "cpu", "--above", "1"
    )
    assert refused(dsn, "rules", "add", "l", "--log", "--agg", "avg", "--above", "3") == (
        "vigil: a --log rule counts lines: --agg count only"
    )
    assert "an --uptime rule aggregates with" in refused(
        dsn, "rules", "add", "u", "--uptime", "--agg", "sum", "--above", "3"
    )
    # a built-in rule refuses with the SQL error's message, and stays
    assert refused(dsn, "rules", "delete", "ping") == (
        'vigil: rule "ping" is built in and cannot be deleted '
        "(disable it instead: update vigil.alert_rules set enabled = false)"
    )
    assert one(conn, "select count(*) from vigil.alert_rules where name = 'ping'") == 1
    assert "what it watches cannot change" in refused(
        dsn, "rules", "edit", "disk", "--series", "cpu"
    )
    assert "fires on a missed deadline (tune --no-data-after)" in refused(
        dsn, "rules", "edit", "ping", "--above", "5"
    )
    assert "nothing to change" in refused(dsn, "rules", "edit", "cpu-high", code=2)
    assert "a rule cannot depend on itself" in refused(
        dsn, "rules", "edit", "cpu-high", "--depends-on", "cpu-high"
    )
    assert "no rule named" in refused(dsn, "rules", "test", "nope")
    assert 'rule "ping" is built in' in refused(dsn, "rules", "test", "ping")

    assert refused(dsn, "silence", "add", "--rule", "nope", "--for", "1h", "--comment", "x") == (
        'vigil: no rule matches "nope" (see select name from vigil.alert_rules)'
    )
    assert "a silence must last longer than 0" in refused(
        dsn, "silence", "add", "--for", "0", "--comment", "x"
    )
    assert "--comment must be 1 to 500 characters" in refused(
        dsn, "silence", "add", "--for", "1h", "--comment", "  "
    )
    assert "is not an ISO 8601 time" in refused(
        dsn, "silence", "add", "--for", "1h", "--comment", "x", "--start", "tomorrow"
    )
    assert "'1' is not a duration" in refused(
        dsn, "silence", "add", "--for", "1", "--comment", "x", code=2
    )
    assert refused(dsn, "silence", "expire", "999") == (
        "vigil: no active or upcoming silence 999 (see `vigil silence list`)"
    )
    assert one(conn, "select count(*) from vigil.silences") == 0

    window = ("maintenance", "add", "w", "--from", "02:00", "--to", "04:00")
    assert refused(dsn, *window, "--tz", "Mars/Olympus") == (
        'vigil: unknown time zone "Mars/Olympus" (use an IANA name such as Europe/Berlin or UTC)'
    )
    assert "'funday' is not a day" in refused(dsn, *window, "--days", "mon,funday")
    assert "--to: '24:00' is not a time of day" in refused(
        dsn, "maintenance", "add", "w", "--from", "02:00", "--to", "24:00"
    )
    assert "--from and --to must differ" in refused(
        dsn, "maintenance", "add", "w", "--from", "02:00", "--to", "02:00"
    )
    assert one(conn, "select count(*) from vigil.maintenance_windows") == 0
    ok(dsn, *window)
    assert refused(dsn, *window) == 'vigil: a maintenance window named "w" exists already'
    assert refused(dsn, "alerts", "history", "--rule", "nope").startswith(
        'vigil: no rule named "nope"'
    )


def test_rules_test_evaluates_now_and_writes_nothing(dsn: str, conn: Conn) -> None:
    ok(dsn, "rules", "add", "cpu-high", "--series", "cpu", "--above", "90", "--repeat", "1m")
    point(conn, "cpu", 95, host="web-1")
    point(conn, "cpu", 50, host="web-2")

    def counts() -> tuple[object, ...]:
        row = conn.execute(
            "select (select count(*) from vigil.alert_events), (select count(*) from vigil.outbox),"
            " (select count(*) from vigil.alert_instances),"
            " (select max(updated_at) from vigil.alert_rules)"
        ).fetchone()
        assert row is not None
        return row

    before = counts()
    tested = as_json(dsn, "rules", "test", "cpu-high")
    assert counts() == before
    by_host = {t["instance"]["host"]: t for t in tested}
    assert by_host["web-1"]["state"] == "normal" and by_host["web-1"]["would_be"] == "firing"
    assert by_host["web-1"]["value"] == 95 and by_host["web-1"]["change"] is True
    assert "95 > 90" in by_host["web-1"]["reason"]
    assert (by_host["web-2"]["would_be"], by_host["web-2"]["change"]) == ("normal", False)
    assert by_host["web-1"]["instance_text"] == 'cpu{host="web-1"}'
    result = vigil(dsn, "rules", "test", "cpu-high")
    assert result.returncode == 0
    assert "firing (change)" in result.stdout and "nothing was written" in result.stderr
    assert counts() == before

    # once evaluated for real, the test agrees with the state and still writes nothing
    evaluate(conn)
    before = counts()
    tested = as_json(dsn, "rules", "test", "cpu-high")
    assert {(t["state"], t["would_be"]) for t in tested} == {
        ("firing", "firing"), ("normal", "normal"),
    }  # fmt: skip
    assert counts() == before


def test_end_to_end_series_alert_silenced_and_suppressed(dsn: str, conn: Conn) -> None:
    assert as_json(dsn, "alerts") == []
    assert ok(dsn, "alerts").strip() == "nothing is firing or pending"
    ok(dsn, "rules", "add", "cpu-high", "--series", "cpu", "--above", "90")
    ok(dsn, "rules", "add", "cpu-warm", "--series", "cpu", "--above", "80", "--for", "1h")
    point(conn, "cpu", 95, host="web-1")
    point(conn, "cpu", 50, host="web-2")
    evaluate(conn)

    alerts = as_json(dsn, "alerts")
    for alert in alerts:
        assert set(alert) >= ALERT_KEYS
    assert [(a["rule"], a["state"]) for a in alerts][:2] == [
        ("cpu-high", "firing"), ("cpu-warm", "pending"),
    ]  # fmt: skip
    firing = alerts[0]
    assert firing["instance"] == {"__name__": "cpu", "host": "web-1"}
    assert firing["value"] == 95 and firing["silenced"] is False
    assert firing["suppressed"] is False and firing["severity"] == "warning"
    since = datetime.fromisoformat(firing["since"])
    assert abs(datetime.now(UTC) - since) < timedelta(minutes=1)
    normal = [a for a in alerts if a["state"] == "normal"]  # changed in the last day: listed
    assert {a["instance"]["host"] for a in normal} == {"web-2"}
    human = ok(dsn, "alerts").splitlines()
    assert human[0].split()[:3] == ["state", "rule", "instance"]
    assert human[1].startswith("firing") and 'cpu{host="web-1"}' in human[1]

    # long normal instances only with --all
    conn.execute(
        "update vigil.alert_instances set since = now() - interval '2 days' where state = 'normal'"
    )
    assert [a for a in as_json(dsn, "alerts") if a["state"] == "normal"] == []
    assert len([a for a in as_json(dsn, "alerts", "--all") if a["state"] == "normal"]) == 2

    # a silence: the id is the last line; the alert shows silenced
    result = vigil(dsn, "silence", "add", "--rule", "cpu-high", "--for", "2h", "--comment",
                   "deploying")  # fmt: skip
    assert result.returncode == 0, result.stderr
    silence_id = int(result.stdout.strip().splitlines()[-1])
    assert result.stdout == f"{silence_id}\n"  # what it did goes to stderr, as token create's
    assert result.stderr == f"silence {silence_id}: rules 'cpu-high', for 2h\n"
    high = by_rule(as_json(dsn, "alerts"), "cpu-high")
    assert [a["silenced"] for a in high] == [True]
    assert high[0]["withheld"].startswith(f"silenced (silence {silence_id} by ")
    assert [a["silenced"] for a in by_rule(as_json(dsn, "alerts"), "cpu-warm")] == [False]
    assert "silenced" in next(line for line in ok(dsn, "alerts").splitlines() if "cpu-high" in line)
    silences = as_json(dsn, "silence", "list")
    assert [(s["id"], s["state"], s["rule"], s["comment"]) for s in silences] == [
        (silence_id, "active", "cpu-high", "deploying"),
    ]  # fmt: skip
    ends = datetime.fromisoformat(silences[0]["ends_at"])
    assert timedelta(hours=1, minutes=59) < ends - datetime.now(UTC) <= timedelta(hours=2)
    assert "expired" in ok(dsn, "silence", "expire", str(silence_id))
    assert "no active or upcoming silence" in refused(dsn, "silence", "expire", str(silence_id))
    assert [a["silenced"] for a in by_rule(as_json(dsn, "alerts"), "cpu-high")] == [False]
    assert as_json(dsn, "silence", "list") == []
    assert [s["state"] for s in as_json(dsn, "silence", "list", "--all")] == ["expired"]

    # a dependency: cpu-high is suppressed while its parent fires for the same host
    ok(dsn, "rules", "add", "web-down", "--series", "up", "--below", "1")
    point(conn, "up", 0, host="web-1")
    evaluate(conn)
    ok(dsn, "rules", "edit", "cpu-high", "--depends-on", "web-down")
    high = by_rule(as_json(dsn, "alerts"), "cpu-high")
    assert [(a["suppressed"], a["silenced"]) for a in high] == [(True, False)]

    # counts, instances and history
    rules = {r["name"]: r for r in as_json(dsn, "rules", "list")}
    assert (rules["cpu-high"]["firing"], rules["cpu-warm"]["pending"]) == (1, 1)
    shown = as_json(dsn, "rules", "show", "cpu-high")
    assert [(i["state"], i["instance"]["host"]) for i in shown["instances"]] == [
        ("firing", "web-1"), ("normal", "web-2"),
    ]  # fmt: skip
    assert "firing" in ok(dsn, "rules", "show", "cpu-high")
    history = as_json(dsn, "alerts", "history", "--rule", "cpu-high")
    assert [(h["from_state"], h["to_state"], h["kind"]) for h in history] == [
        ("normal", "firing", "change"),
    ]  # fmt: skip
    assert history[0]["message"] == 'Alert: cpu-high - cpu{host="web-1"} Value: 95'
    assert history[0]["message_status"] == "pending" and history[0]["value"] == 95
    assert len(as_json(dsn, "alerts", "history", "--limit", "1")) == 1
    assert {h["rule"] for h in as_json(dsn, "alerts", "history")} >= {"cpu-high", "web-down"}
    lines = ok(dsn, "alerts", "history").splitlines()
    assert lines[0].split()[:3] == ["at", "rule", "instance"]
    assert any("normal -> firing" in line and "cpu-high" in line for line in lines)


def test_silence_with_labels_start_and_author(dsn: str, conn: Conn) -> None:
    ok(dsn, "rules", "add", "cpu-high", "--series", "cpu", "--above", "90")
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    result = vigil(
        dsn, "silence", "add", "--rule", "cpu-*", "--label", "host=web-1", "--label", "dc=fra",
        "--for", "90m", "--comment", "kernel update", "--author", "ann", "--start",
        start.isoformat(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    upcoming = int(result.stdout.strip().splitlines()[-1])
    everything = int(ok(dsn, "silence", "add", "--for", "1h", "--comment", "all").splitlines()[-1])
    listed = {s["id"]: s for s in as_json(dsn, "silence", "list")}
    assert listed[upcoming]["state"] == "upcoming" and listed[everything]["state"] == "active"
    assert listed[upcoming]["labels"] == {"host": "web-1", "dc": "fra"}
    assert (listed[upcoming]["rule"], listed[upcoming]["author"]) == ("cpu-*", "ann")
    assert datetime.fromisoformat(listed[upcoming]["starts_at"]) == start
    assert datetime.fromisoformat(listed[upcoming]["ends_at"]) == start + timedelta(minutes=90)
    assert listed[everything]["rule"] is None and listed[everything]["author"]
    text = ok(dsn, "silence", "list").splitlines()
    assert text[0].split() == [
        "id", "state", "rule", "labels", "starts", "ends", "author", "comment",
    ]  # fmt: skip
    assert any("dc=fra,host=web-1" in line and "kernel update" in line for line in text)


def test_maintenance_windows(dsn: str, conn: Conn) -> None:
    out = ok(
        dsn, "maintenance", "add", "backups", "--from", "02:00", "--to", "04:00", "--days", "sun",
        "--tz", "Europe/Berlin", "--rule", "disk", "--label", "host=web-1", "--comment", "weekly",
    )  # fmt: skip
    assert out.strip() == (
        "maintenance window 'backups': sun 02:00-04:00 Europe/Berlin, rules 'disk' with host=web-1"
    )
    row = conn.execute(
        "select days, starts::text, ends::text, time_zone, rule_pattern, matchers, comment"
        " from vigil.maintenance_windows where name = 'backups'"
    ).fetchone()
    assert row == (
        [7],
        "02:00:00",
        "04:00:00",
        "Europe/Berlin",
        "disk",
        {"host": "web-1"},
        "weekly",
    )
    ok(dsn, "maintenance", "add", "weekdays", "--from", "22:00", "--to", "02:00", "--days",
       "mon-fri", "--rule", "disk")  # fmt: skip
    assert one(conn, "select days from vigil.maintenance_windows where name = 'weekdays'") == [
        1, 2, 3, 4, 5,
    ]  # fmt: skip
    # one open now: from an hour ago to an hour ahead, UTC (it may run past midnight)
    now = datetime.now(UTC)
    ok(dsn, "maintenance", "add", "now", "--from", f"{now - timedelta(hours=1):%H:%M}", "--to",
       f"{now + timedelta(hours=1):%H:%M}", "--rule", "cpu-*")  # fmt: skip
    windows = {w["name"]: w for w in as_json(dsn, "maintenance", "list")}
    assert set(windows) == {"backups", "weekdays", "now"}
    assert windows["now"]["open_now"] is True
    backups = windows["backups"]
    assert (backups["days"], backups["from"], backups["to"], backups["time_zone"]) == (
        ["sun"], "02:00", "04:00", "Europe/Berlin",
    )  # fmt: skip
    assert (backups["rule"], backups["labels"], backups["comment"]) == (
        "disk", {"host": "web-1"}, "weekly",
    )  # fmt: skip
    assert windows["weekdays"]["days"] == ["mon", "tue", "wed", "thu", "fri"]
    text = ok(dsn, "maintenance", "list").splitlines()
    assert "open now" in text[0]
    now_line = next(line for line in text if line.startswith("now "))
    assert now_line[text[0].index("open now") :].startswith("yes")

    # an open window withholds the notifications of the rules it matches: silenced
    ok(dsn, "rules", "add", "cpu-high", "--series", "cpu", "--above", "90")
    point(conn, "cpu", 95, host="web-1")
    evaluate(conn)
    assert [a["silenced"] for a in by_rule(as_json(dsn, "alerts"), "cpu-high")] == [True]
    assert "deleted" in ok(dsn, "maintenance", "delete", "now")
    assert refused(dsn, "maintenance", "delete", "now") == (
        'vigil: no maintenance window named "now"'
    )
    assert [a["silenced"] for a in by_rule(as_json(dsn, "alerts"), "cpu-high")] == [False]


def test_alerts_observe_redraws_until_ctrl_c(dsn: str, conn: Conn) -> None:
    ok(dsn, "rules", "add", "cpu-high", "--series", "cpu", "--above", "90")
    point(conn, "cpu", 95, host="web-1")
    point(conn, "cpu", 50, host="web-2")
    evaluate(conn)
    out = ok(dsn, "alerts", "observe", "--interval", "0.1", "--count", "2")
    frames = out.split("vigil alerts observe: every 0.1s")
    assert len(frames) == 3 and frames[0] == ""
    for frame in frames[1:]:
        assert "1 firing, 0 pending" in frame
        assert 'cpu{host="web-1"}' in frame and 'cpu{host="web-2"}' not in frame
    assert "\x1b[" not in out  # no screen clearing when not a terminal

    with subprocess.Popen(
        [VIGIL, "alerts", "observe", "--interval", "0.2"],
        env=vigil_env(dsn),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("vigil alerts observe: every 0.2s")
        time.sleep(0.5)  # a few redraws
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert stderr == ""
    assert stdout.count("vigil alerts observe:") >= 2

    # a database that does not answer is shown in the frame and tried again, not fatal
    gone = subprocess.run(
        [VIGIL, "alerts", "observe", "--interval", "0.1", "--count", "2"],
        env=vigil_env("postgresql://vigil@127.0.0.1:1/nothing"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.count("database unavailable (") == 2
    assert "trying again every 0.1s" in gone.stdout


def test_a_reader_that_goes_away_ends_the_command_quietly(dsn: str, conn: Conn) -> None:
    # `vigil alerts --json | head -1`: no traceback about a broken pipe
    with subprocess.Popen(
        [VIGIL, "rules", "list", "--json"],
        env=vigil_env(dsn),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # before the command has written anything
        stderr = proc.stderr.read()
        proc.wait(timeout=60)
    assert proc.returncode == 1
    assert stderr == ""


def test_json_lists_are_empty_lists(dsn: str) -> None:
    assert as_json(dsn, "silence", "list", "--all") == []
    assert as_json(dsn, "maintenance", "list") == []
    assert as_json(dsn, "alerts", "history") == []
    assert as_json(dsn, "alerts", "--all") == []
    assert ok(dsn, "silence", "list").strip() == "no active or upcoming silences"


@pytest.mark.parametrize(
    ("text", "seconds", "shown"),
    [
        ("0", 0, "0s"), ("30s", 30, "30s"), ("5m", 300, "5m"), ("2h", 7200, "2h"),
        ("1d", 86400, "1d"), ("1w", 604800, "7d"), ("1h30m", 5400, "1h30m"),
        ("500ms", 0.5, "500ms"), ("1.5s", 1.5, "1.5s"), ("90s", 90, "1m30s"),
        ("1d2h3m4.25s", 93784.25, "1d2h3m4.25s"),
    ],
)  # fmt: skip
def test_durations_read_as_typed_and_print_as_the_options_take_them(
    text: str, seconds: float, shown: str
) -> None:
    value = parse_duration(text)
    assert value == timedelta(seconds=seconds)
    assert format_duration(value) == shown
    assert parse_duration(shown) == value  # what is printed can be given back


@pytest.mark.parametrize("text", ["", "5", "-5m", "5 m", "5min", "1e3s", "m5", "1h 30m"])
def test_durations_without_a_unit_or_malformed_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_days_and_times_of_maintenance_windows() -> None:
    assert parse_days("sun") == [7]
    assert parse_days("mon-fri") == [1, 2, 3, 4, 5]
    assert parse_days("Saturday,sun,mon") == [1, 6, 7]
    assert parse_days("fri-mon") == [1, 5, 6, 7]  # a range across the week's end
    assert days_text([1, 2, 3, 4, 5, 6, 7]) == days_text(None) == "every day"
    assert parse_clock("2:05", "--from") == dt_time(2, 5)
    assert parse_clock("23:59:30", "--to") == dt_time(23, 59, 30)
    for bad in ("24:00", "12:60", "noon", "1200"):
        with pytest.raises(CliError, match="is not a time of day"):
            parse_clock(bad, "--to")
    with pytest.raises(CliError, match="'someday' is not a day"):
        parse_days("mon,someday")
