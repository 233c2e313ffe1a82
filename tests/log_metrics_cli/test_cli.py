"""`vigil metrics create|list|get|meta|delete|refresh` and `vigil alerts get|meta` on a real
database with real request records (the access log) and journal lines (loghub's sshd log):
the values printed equal direct counts over the raw rows, the JSON shapes scripts rely on,
and one-line refusals (exit 1: refused, 2: usage)."""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.log_metrics_cli.conftest import (
    NOW,
    Conn,
    Vigil,
    openssh_lines,
    real_access_lines,
    refused,
    restamp_access,
    store_journal,
    store_requests,
)
from tests.support.processes import VIGIL, vigil_env

METRIC_KEYS = {
    "id", "source", "stat", "field", "value_regex", "props", "period", "refresh_rate",
    "filters", "description", "is_default", "created_by", "created_at", "refreshed_at",
    "next_refresh_at", "last_duration", "last_error",
}  # fmt: skip
DEFAULTS = {"log_lines", "log_errors", "totaltraffic", "http_5xx", "sshd_auth_failures"}


@pytest.fixture(scope="module")
def data(lm_conn: Conn) -> dict[str, int]:
    """400 real access lines over the 4 minutes before NOW (host web-1) and 400 real sshd
    lines over the 3 minutes before NOW (host bastion)."""
    requests = store_requests(lm_conn, restamp_access(real_access_lines(400), NOW, 240))
    ssh = openssh_lines(NOW, 180, "bastion")
    store_journal(lm_conn, ssh)
    return {"requests": requests, "journal": len(ssh)}


def minute(at: datetime) -> str:
    return at.astimezone(UTC).replace(second=0, microsecond=0).isoformat()


def direct(conn: Conn, query: str, *params: object) -> Counter[tuple[str, ...]]:
    """{(minute ISO, group values...): value} of a direct GROUP BY over the raw rows."""
    return Counter(
        {(minute(r[0]), *(str(v) for v in r[1:-1])): r[-1] for r in conn.execute(query, params)}
    )


def observed(rows: list[dict[str, Any]], props: tuple[str, ...]) -> Counter[tuple[str, ...]]:
    """The same shape from `vigil metrics get --json`."""
    return Counter(
        {
            (
                datetime.fromisoformat(r["time"]).isoformat(),
                *(str(r["groups"][p]) for p in props),
            ): r["value"]
            for r in rows
        }
    )


def test_create_list_get_meta_refresh_delete(vigil: Vigil, lm_conn: Conn, data: Any) -> None:
    """The log collector's example (`-id magic -s count --prop '*' --period 60
    --refresh_rate 60`) over the journal: every verb, and values equal to a direct count."""
    created = vigil(
        "metrics", "create", "-id", "magic", "-s", "count", "--prop", "*",
        "--period", "60", "--refresh_rate", "60", "--description", "lines per minute",
    )  # fmt: skip
    assert created.code == 0, created.err
    assert "'magic' created: count of journal lines per 1m" in created.out

    (row,) = [m for m in vigil("metrics", "list", "--json").json() if m["id"] == "magic"]
    assert set(row) >= METRIC_KEYS
    assert (row["source"], row["stat"], row["props"], row["period"], row["refresh_rate"]) == (
        "journal", "count", [], "1m", "1m"
    )  # fmt: skip
    assert (row["filters"], row["description"], row["is_default"]) == (
        {}, "lines per minute", False
    )  # fmt: skip
    assert "magic" in vigil("metrics", "list").out

    refreshed = vigil("metrics", "refresh", "magic")
    assert refreshed.code == 0, refreshed.err
    assert "refreshed" in refreshed.out

    rows = vigil("metrics", "get", "magic", "--json", "--limit", "100").json()
    assert rows, "no observations after a refresh"
    assert all(set(r) == {"time", "groups", "value"} and r["groups"] == {} for r in rows)
    times = [r["time"] for r in rows]
    assert times == sorted(times, reverse=True)  # newest first
    want = direct(
        lm_conn, "select date_trunc('minute', at), count(*)::float8 from vigil.journal group by 1"
    )
    assert observed(rows, ()) == want
    assert sum(r["value"] for r in rows) == data["journal"]
    assert len(vigil("metrics", "get", "magic", "--json", "--limit", "2").json()) == 2
    text = vigil("metrics", "get", "magic").out.splitlines()
    assert text[0].split() == ["time", "groups", "value"] and len(text) == 1 + len(rows)

    meta = vigil("metrics", "meta", "magic", "--json").json()
    assert isinstance(meta, dict)
    blob = str(meta)
    assert "magic" in blob and "vigil.journal" in blob.replace("journal_lines", "journal")
    assert meta.get("rules") == []
    assert "the SQL it runs" in vigil("metrics", "meta", "magic").out or "sql" not in meta

    deleted = vigil("metrics", "delete", "magic")
    assert (deleted.code, deleted.out.strip()) == (0, "log metric 'magic' deleted, with its series")
    assert "magic" not in [m["id"] for m in vigil("metrics", "list", "--json").json()]
    assert refused(vigil("metrics", "get", "magic")) == (
        'vigil: no log metric named "magic" (see `vigil metrics list`)'
    )


def test_request_metrics_with_filters_group_by_and_stat(
    vigil: Vigil, lm_conn: Conn, data: Any
) -> None:
    """Request metrics: the source follows from the options (a status filter, a request
    field), filters and props reach the row as api17 names them, and the values are exact."""
    assert data["requests"] == 400
    ok = vigil("metrics", "create", "-id", "not_ok", "-s", "count", "--status", "4xx",
               "--prop", "status", "--period", "1m")  # fmt: skip
    assert ok.code == 0, ok.err
    share = vigil("metrics", "create", "--id", "big_bytes", "--stat", "max", "--of", "bytes",
                  "--prop", "method,status", "--refresh-rate", "30s", "--ip", "0.0.0.0/0",
                  "--method", "GET", "--path-prefix", "/", "--json")  # fmt: skip
    row = share.json()
    assert (row["id"], row["source"], row["stat"], row["field"], row["props"]) == (
        "big_bytes", "requests", "max", "bytes", ["method", "status"]
    )  # fmt: skip
    assert row["refresh_rate"] == "30s"
    assert row["filters"] == {"ip": "0.0.0.0/0", "method": "GET", "path_prefix": "/"}
    listed = {m["id"]: m for m in vigil("metrics", "list", "--json").json()}
    assert listed["not_ok"]["source"] == "requests"
    assert listed["not_ok"]["filters"] == {"status": "4xx"}
    codes = vigil("metrics", "create", "-id", "denied", "-s", "count", "--status", "401,403")
    assert codes.code == 0, codes.err
    assert {m["id"]: m for m in vigil("metrics", "list", "--json").json()}["denied"]["filters"] == {
        "status": [401, 403]
    }

    for metric in ("not_ok", "big_bytes"):
        assert vigil("metrics", "refresh", metric).code == 0
    got = vigil("metrics", "get", "not_ok", "--json", "--limit", "1000").json()
    assert observed(got, ("status",)) == direct(
        lm_conn,
        "select date_trunc('minute', at), status, count(*)::float8 from vigil.requests"
        " where status between 400 and 499 group by 1, 2",
    )
    got = vigil("metrics", "get", "big_bytes", "--json", "--limit", "1000").json()
    assert got and observed(got, ("method", "status")) == direct(
        lm_conn,
        "select date_trunc('minute', at), method, status, max(bytes)::float8 from vigil.requests"
        " where method = 'GET' and bytes is not null group by 1, 2, 3",
    )


def test_journal_filters_and_a_captured_number(vigil: Vigil, lm_conn: Conn, data: Any) -> None:
    """--identifier, --unit (glob), --priority, --contains and a number captured by
    --value-regex reach the metric and give the values of a direct query."""
    created = vigil(
        "metrics", "create", "-id", "ssh_ports", "-s", "max", "--of", "captured",
        "--value-regex", "port ([0-9]+)", "--identifier", "sshd", "--unit", "ssh*",
        "--priority", "info", "--contains", "port", "--prop", "host", "--json",
    )  # fmt: skip
    row = created.json()
    assert (row["source"], row["value_regex"], row["props"]) == (
        "journal",
        "port ([0-9]+)",
        ["host"],
    )
    assert row["filters"] == {
        "identifier": "sshd",
        "unit": "ssh*",
        "priority": 6,
        "contains": "port",
    }
    assert vigil("metrics", "refresh", "ssh_ports").code == 0
    got = vigil("metrics", "get", "ssh_ports", "--json", "--limit", "100").json()
    assert got and observed(got, ("host",)) == direct(
        lm_conn,
        "select date_trunc('minute', at), host,"
        " max(substring(message from 'port ([0-9]+)')::float8) from vigil.journal"
        " where message ~ 'port ([0-9]+)' and priority <= 6 group by 1, 2",
    )


def test_defaults_rule_on_a_log_metric_and_alerts_get_meta(
    vigil: Vigil, lm_conn: Conn, data: Any
) -> None:
    """`create --default` (idempotent), the totaltraffic rule seen by `vigil alerts meta`,
    and a rule on a log metric ("sshd authentication failure > 10 per minute per host")
    firing in `vigil alerts --json` and `vigil alerts get`."""
    first = vigil("metrics", "create", "--default", "--json").json()
    assert set(first["created"]) == DEFAULTS
    again = vigil("metrics", "create", "--default")
    assert (again.code, again.out.strip()) == (0, "the default log metrics exist already")
    listed = {m["id"]: m for m in vigil("metrics", "list", "--json").json()}
    assert set(listed) >= DEFAULTS and all(listed[i]["is_default"] for i in DEFAULTS)
    assert (listed["totaltraffic"]["source"], listed["totaltraffic"]["props"]) == ("requests", [])

    meta = vigil("alerts", "meta", "totaltraffic", "--json").json()
    assert (meta["name"], meta["source"], meta["match_name"], meta["agg"], meta["window"]) == (
        "totaltraffic", "series", "totaltraffic", "max", "2m"
    )  # fmt: skip
    assert (meta["op"], meta["threshold"]) == (">", 1000)
    assert "series totaltraffic" in vigil("alerts", "meta", "totaltraffic").out
    assert vigil("alerts", "get", "totaltraffic", "--json").json() == []
    assert "no instances yet" in vigil("alerts", "get", "totaltraffic").out

    assert vigil("metrics", "refresh", "sshd_auth_failures").code == 0
    failures = vigil("metrics", "get", "sshd_auth_failures", "--json", "--limit", "100").json()
    assert observed(failures, ("host",)) == direct(
        lm_conn,
        "select date_trunc('minute', at), host, count(*)::float8 from vigil.journal"
        " where message like '%%authentication failure%%' group by 1, 2",
    )
    peak = max(r["value"] for r in failures)
    assert peak > 10, "the real sshd log has more than 10 failures in some minute"
    added = vigil("rules", "add", "ssh_brute", "--series", "sshd_auth_failures",
                  "--agg", "max", "--window", "10m", "--above", "10")  # fmt: skip
    assert added.code == 0, added.err
    lm_conn.execute("select vigil.evaluate_rules(now())")
    firing = [a for a in vigil("alerts", "--json").json() if a["rule"] == "ssh_brute"]
    assert [(a["state"], a["instance"]["host"], a["value"]) for a in firing] == [
        ("firing", "bastion", peak)
    ]
    (one,) = vigil("alerts", "get", "ssh_brute", "--json").json()
    assert (one["state"], one["value"], one["instance"]) == ("firing", peak, firing[0]["instance"])
    table = vigil("alerts", "get", "ssh_brute").out
    assert table.splitlines()[0].split()[:4] == ["state", "instance", "value", "since"]
    assert "firing" in table and 'sshd_auth_failures{host="bastion"}' in table
    assert vigil("metrics", "meta", "sshd_auth_failures", "--json").json()["rules"] == ["ssh_brute"]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("metrics", "create", "-id", "x1", "-s", "median_ish"), 1, "median_ish"),
        (("metrics", "create", "-id", "Bad-Id", "-s", "count"), 1, "Bad-Id"),
        (("metrics", "create", "-id", "x2", "-s", "avg"), 1, ""),  # avg of what?
        (("metrics", "get", "nosuch"), 1, 'no log metric named "nosuch"'),
        (("metrics", "meta", "nosuch"), 1, 'no log metric named "nosuch"'),
        (("metrics", "delete", "nosuch"), 1, 'no log metric named "nosuch"'),
        (("metrics", "refresh", "nosuch"), 1, 'no log metric named "nosuch"'),
        (("alerts", "get", "nosuch"), 1, 'no rule named "nosuch"'),
        (("alerts", "meta", "nosuch"), 1, 'no rule named "nosuch"'),
        (("metrics", "create", "-id", "x3", "-s", "count", "--period", "soon"), 2, "--period"),
        (("metrics", "create", "-id", "x4", "-s", "count", "--source", "x"), 2, "--source"),
        (("metrics", "create", "-id", "x5", "-s", "count", "--status", "7xx"), 2, "--status"),
        (("metrics", "create", "-id", "x6", "-s", "count", "--priority", "11"), 2, "--priority"),
        (("metrics", "create", "--default", "-id", "x8"), 2, "--default"),
        (("metrics", "create", "-s", "count"), 2, "-id"),
        (("metrics", "get", "x", "--limit", "0"), 2, "--limit"),
    ],
)
def test_refusals_are_one_line(vigil: Vigil, args: tuple[str, ...], code: int, says: str) -> None:
    line = refused(vigil(*args), code)
    assert says in line


def test_an_unknown_flag_or_verb_is_a_usage_error(vigil: Vigil) -> None:
    """Reported by the top-level parser (vigil/cli/main.py): its usage, then the reason."""
    result = vigil("metrics", "create", "-id", "x7", "-s", "count", "--nope")
    assert result.code == 2
    assert result.err.strip().splitlines()[-1] == "vigil: error: unrecognized arguments: --nope"
    verb = vigil("metrics", "frobnicate")
    assert verb.code == 2 and "invalid choice: 'frobnicate'" in verb.err


def test_an_id_taken_is_refused(vigil: Vigil, lm_conn: Conn) -> None:
    assert vigil("metrics", "create", "-id", "twice", "-s", "count").code == 0
    assert "twice" in refused(vigil("metrics", "create", "-id", "twice", "-s", "count"))
    assert vigil("metrics", "delete", "twice").code == 0
    # the name of an ordinary series: its points would mix with the metric's
    lm_conn.execute("select vigil.add_point('cpu_busy', 1.0, now(), '{}'::jsonb)")
    assert "cpu_busy" in refused(vigil("metrics", "create", "-id", "cpu_busy", "-s", "count"))


def test_nothing_observed_is_an_empty_list(vigil: Vigil, data: Any) -> None:
    assert (
        vigil("metrics", "create", "-id", "nowhere", "-s", "count", "--host", "nowhere").code == 0
    )
    assert vigil("metrics", "refresh", "nowhere").code == 0
    assert vigil("metrics", "get", "nowhere", "--json").json() == []
    assert "no observations of 'nowhere' yet" in vigil("metrics", "get", "nowhere").out


def test_console_script(lm_dsn: str) -> None:
    """The installed `vigil` (a subprocess): a refusal, one line and exit code 1."""
    run = subprocess.run(
        [VIGIL, "metrics", "get", "nothing_here", "--json"],
        env=vigil_env(lm_dsn),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (run.returncode, run.stderr.strip()) == (
        1, 'vigil: no log metric named "nothing_here" (see `vigil metrics list`)'
    )  # fmt: skip


def test_create_help_names_the_flags(vigil: Vigil) -> None:
    helps = vigil("metrics", "create", "--help")
    assert helps.code == 0
    for flag in ("-id", "--stat", "--prop", "--period", "--refresh_rate", "--status", "--ip"):
        assert flag in helps.out


def test_durations_seconds_or_units() -> None:
    from vigil.cli.metrics import props_of, seconds_or_duration, status_arg

    assert seconds_or_duration("60") == timedelta(minutes=1)
    assert seconds_or_duration("1m") == seconds_or_duration("60s") == timedelta(minutes=1)
    assert seconds_or_duration("1h30m") == timedelta(minutes=90)
    assert status_arg("5XX") == "5xx" and status_arg("401, 403") == [401, 403]
    assert status_arg("404,5xx") == [404, "5xx"]
    assert props_of(["*"]) == [] and props_of(["host,unit", "unit", "route"]) == [
        "host",
        "unit",
        "route",
    ]
