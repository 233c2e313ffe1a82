"""The alert pages (/alerts, /rules, /silences) through a real API server with a signed-in
operator: they render the engine's state, the forms create, edit, preview, enable, disable
and delete rules and add and expire silences, refusals are 4xx with a readable message,
CSRF and login are enforced, and hostile text is escaped. Then in headless Chromium at
desktop and phone width, light and dark, with screenshots in test-artifacts/."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from api.alerts.pages import (
    FormError,
    condition_text,
    format_duration,
    parse_duration,
    parse_labels,
    silence_link,
)
from tests.conftest import ApiServer, screenshot
from tests.support.browser import assert_fits, views
from tests.support.login import csrf_token, login, login_client

Conn = psycopg.Connection[tuple[object, ...]]
EMAIL = "ann@example.com"


def add_rule(conn: Conn, name: str, series: str, **cols: Any) -> None:
    values: dict[str, Any] = {
        "source": "series", "match_name": series, "agg": "last", "op": ">", "threshold": 5,
    } | cols  # fmt: skip
    query = sql.SQL("insert into vigil.alert_rules (name, {}) values (%s, {})").format(
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join([sql.Placeholder()] * len(values)),
    )
    conn.execute(query, (name, *values.values()))


def point(conn: Conn, series: str, value: float, ago: str, labels: str) -> None:
    conn.execute(
        "select vigil.add_point(%s, %s, now() - %s::interval, %s::jsonb)",
        (series, value, ago, labels),
    )


def seed(conn: Conn) -> None:
    """load: fired 19 min ago and is normal again; cpu-high firing (web-1) and normal
    (web-2); mem-high pending (for 10m) and silenced; http-errors firing but suppressed by
    cpu-high on the same host, with hostile text in its description, template and labels."""
    add_rule(conn, "load", "load")
    point(conn, "load", 10, "20 minutes", '{"host": "web-3"}')
    conn.execute("select vigil.evaluate_rules(now() - interval '19 minutes')")
    point(conn, "load", 1, "1 minute", '{"host": "web-3"}')
    add_rule(
        conn, "cpu-high", "cpu", agg="avg", threshold=90, recover_op="<", recover_threshold=80,
        severity="critical", description="CPU busy",
    )  # fmt: skip
    add_rule(conn, "mem-high", "mem", threshold=80, for_duration="10 minutes")
    add_rule(
        conn, "http-errors", "http_errors", depends_on="cpu-high",
        description="errors <script>alert(1)</script>",
        alert_template="Alert <img src=x onerror=alert(2)> {instance}",
    )  # fmt: skip
    point(conn, "cpu", 95, "30 seconds", '{"host": "web-1"}')
    point(conn, "cpu", 50, "30 seconds", '{"host": "web-2"}')
    point(conn, "mem", 91, "30 seconds", '{"host": "web-1"}')
    point(conn, "http_errors", 12, "30 seconds", '{"host": "web-1", "path": "/<b>x</b>"}')
    conn.execute("select vigil.evaluate_rules(now())")
    conn.execute(
        "select vigil.silence_add('mem-*', '{\"host\": \"web-1\"}', '2 hours', 'kernel "
        "upgrade <i>now</i>', 'bob@example.com')"
    )


def rule_form(**fields: str) -> dict[str, str]:
    """The fields the rule form sends for a new rule (as its defaults), with changes."""
    return {
        "name": "temp-high", "description": "", "source": "series", "match_host": "",
        "match_name": "temp", "match_type": "", "match_labels": "", "agg": "avg",
        "agg_window": "5m", "op": ">", "threshold": "70", "recover_op": "<",
        "recover_threshold": "60", "for_duration": "0s", "keep_firing_for": "0s",
        "no_data": "keep", "no_data_after": "", "severity": "warning", "labels": "",
        "repeat_interval": "0s", "group_wait": "2s", "alert_template": "", "ok_template": "",
        "depends_on": "", "depends_on_labels": "host", "rule_group": "default",
        "eval_interval": "10s", "enabled": "on",
    } | fields  # fmt: skip


def one(conn: Conn, sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


# Pure helpers --------------------------------------------------------------------------------


def test_durations_labels_and_conditions_read_and_write_back() -> None:
    assert parse_duration("90", "x").total_seconds() == 90
    assert parse_duration("1h30m", "x").total_seconds() == 5400
    assert parse_duration(" 2 d ", "x").total_seconds() == 172800
    assert parse_duration("500ms", "x").total_seconds() == 0.5
    for bad in ("", "5 parsecs", "-5m", "1e400", "99999999d"):
        with pytest.raises(FormError, match="Window"):
            parse_duration(bad, "Window")
    for text in ("0s", "45s", "5m", "1h30m", "2d", "1d2h", "500ms"):
        assert format_duration(parse_duration(text, "x")) == text
    assert parse_labels('host=web-1\n\n# note\n env = "prod" ', "L") == {
        "host": "web-1",
        "env": "prod",
    }
    with pytest.raises(FormError, match="line 2: write key=value"):
        parse_labels("a=1\nnonsense", "L")
    with pytest.raises(FormError, match="a is given twice"):
        parse_labels("a=1\na=2", "L")
    rule = {
        "builtin": False, "source": "series", "agg": "avg", "agg_window": parse_duration("5m", ""),
        "op": ">", "threshold": 90.0, "recover_op": "<", "recover_threshold": 80.0,
        "no_data": "alert", "no_data_after": None,
    }  # fmt: skip
    assert condition_text(rule) == "avg 5m > 90, recover < 80, no data 5m: alert"
    link = urlsplit(silence_link("cpu-high", {"host": "web-1", "__name__": "cpu", "n": 3}))
    assert link.path == "/silences" and link.fragment == "add-silence"
    assert parse_qs(link.query) == {"rule": ["cpu-high"], "matchers": ["host=web-1\n__name__=cpu"]}


# Pages over HTTP -----------------------------------------------------------------------------


def test_pages_need_a_signed_in_operator(api: ApiServer) -> None:
    with httpx.Client(base_url=api.url, timeout=10) as client:
        for path in ("/alerts", "/rules", "/rules/new", "/rules/ping/edit", "/silences"):
            r = client.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/login?next="), path
        for path in ("/rules/new", "/rules/ping/disable", "/silences", "/silences/1/expire"):
            r = client.post(path, data={"name": "x"})
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), path


def test_alerts_page_shows_states_marks_history_and_filters(
    api: ApiServer, dsn: str, conn: Conn
) -> None:
    seed(conn)
    with login_client(api.url, dsn, EMAIL) as client:
        r = client.get("/alerts")
        assert r.status_code == 200
        page = r.text
        assert '<a href="/alerts" aria-current="page">Alerts</a>' in page  # main nav
        assert "2 firing</span>" in page and "1 pending</span>" in page
        open_part = page.split('id="open-alerts"')[1].split("</table>")[0]
        rows = open_part.split("<tr class=")[1:]
        # firing first (critical before warning), then pending
        assert [row.split('data-rule="')[1].split('"')[0] for row in rows] == [
            "cpu-high", "http-errors", "mem-high",
        ]  # fmt: skip
        assert [row.split('"', 2)[1].split()[0] for row in rows] == ["firing", "firing", "pending"]
        assert "critical" in rows[0] and "cpu{host=&#34;web-1&#34;}" in rows[0]
        assert "avg of" in rows[0] and ">95<" in rows[0]
        assert " UTC</time>" in rows[0] and " ago</span>" in rows[0]  # absolute and relative
        http = rows[1]
        assert 'class="mark suppressed"' in http
        assert "suppressed: cpu-high is firing for cpu{host=&#34;web-1&#34;}" in http
        mem = rows[2]
        assert 'class="mark silenced"' in mem
        assert "silenced (silence" in mem and "kernel upgrade &lt;i&gt;now&lt;/i&gt;" in mem
        link = html.unescape(mem.split('class="button small" href="')[1].split('"')[0])
        query = parse_qs(urlsplit(link).query)
        assert query == {"rule": ["mem-high"], "matchers": ["host=web-1\n__name__=mem"]}
        normal = page.split('id="normal-alerts"')[1].split("</table>")[0]
        assert "load{host=&#34;web-3&#34;}" in normal and "cpu{host=&#34;web-2&#34;}" in normal
        history = page.split('id="alert-history"')[1].split("</table>")[0]
        assert history.count("<tr ") == 5  # load fired and recovered; 3 changes now
        assert 'firing</span> → <span class="state ok">normal' in history
        assert "pending changes are not announced" in history
        assert "message pending" in history

        r = client.get("/alerts", params={"state": "pending"})
        open_part = r.text.split('id="open-alerts"')[1].split("</table>")[0]
        assert "mem-high" in open_part and "cpu-high" not in open_part
        assert 'id="normal-alerts"' not in r.text
        r = client.get("/alerts", params={"rule": "cpu-high", "state": "bogus"})
        open_part = r.text.split('id="open-alerts"')[1].split("</table>")[0]
        assert "cpu-high" in open_part and "mem-high" not in open_part
        assert "<option selected>cpu-high</option>" in r.text
        r = client.get("/alerts", params={"rule": "no-such-rule"})
        assert r.status_code == 200 and "Nothing firing or pending matches this filter" in r.text

        r = client.get("/silences", params={"rule": "mem-high", "matchers": "host=web-1"})
        assert 'value="mem-high"' in r.text and ">host=web-1</textarea>" in r.text

        # A disabled rule watches nothing: its instances go (its history stays).
        conn.execute("update vigil.alert_rules set enabled = false where name = 'mem-high'")
        r = client.get("/alerts")
        assert (
            "mem-high"
            not in r.text.split('id="alert-filters"')[1]
            .split('id="alert-history"')[0]
            .split("</form>", 1)[1]
        )
        assert "mem-high" in r.text.split('id="alert-history"')[1]


def test_rules_list_and_rule_form_create_preview_edit_toggle_delete(
    api: ApiServer, dsn: str, conn: Conn
) -> None:
    seed(conn)
    point(conn, "temp", 75, "1 minute", '{"room": "a"}')
    point(conn, "temp", 20, "1 minute", '{"room": "b"}')
    with login_client(api.url, dsn, EMAIL) as client:
        r = client.get("/rules")
        assert r.status_code == 200
        listing = r.text.split('id="rules"')[1]
        cpu = listing.split('id="rule-cpu-high"')[1].split("</tr>")[0]
        assert "avg 5m &gt; 90, recover &lt; 80" in cpu and "1 firing" in cpu
        assert "/rules/cpu-high/delete" in cpu and "critical" in cpu
        mem = listing.split('id="rule-mem-high"')[1].split("</tr>")[0]
        assert "1 pending" in mem and ">10m<" in mem
        ping = listing.split('id="rule-ping"')[1].split("</tr>")[0]
        assert "built-in" in ping and "/rules/ping/delete" not in ping and "Disable" in ping

        r = client.get("/rules/new")
        assert r.status_code == 200 and 'action="/rules/new"' in r.text

        # Preview of an unsaved rule: inserted, tested and rolled back.
        r = client.post("/rules/new", data=rule_form(action="preview"))
        assert r.status_code == 200, r.text
        preview = r.text.split('id="preview-table"')[1].split("</table>")[0]
        assert "temp{room=&#34;a&#34;}" in preview and ">75<" in preview
        assert preview.count('<span class="state alert">firing</span>') == 1
        assert "avg 5m &gt; 70, recover &lt; 60" in r.text
        assert 'value="temp-high"' in r.text  # the form keeps what was typed
        assert one(conn, "select count(*) from vigil.alert_rules where name = 'temp-high'") == 0
        assert one(conn, "select count(*) from vigil.alert_instances i join vigil.alert_rules "
                   "r on r.id = i.rule_id where r.name = 'temp-high'") == 0  # fmt: skip

        r = client.post(
            "/rules/new",
            data=rule_form(match_labels="room=a", labels="team=ops", repeat_interval="1h",
                           no_data="alert", no_data_after="15m", depends_on="cpu-high",
                           depends_on_labels="host, room", alert_template="Hot: {instance}"),
        )  # fmt: skip
        assert r.status_code == 303 and r.headers["location"] == "/rules?done=saved&name=temp-high"
        row = one(
            conn,
            "select source, match_name, match_labels, agg, agg_window, op, threshold, recover_op,"
            " recover_threshold, no_data, no_data_after, labels, repeat_interval, depends_on,"
            " depends_on_labels, alert_template, enabled, created_by, builtin"
            " from vigil.alert_rules where name = 'temp-high'",
        )
        assert row[:4] == ("series", "temp", {"room": "a"}, "avg")
        assert row[4].total_seconds() == 300 and row[5:9] == (">", 70, "<", 60)
        assert row[9] == "alert" and row[10].total_seconds() == 900 and row[11] == {"team": "ops"}
        assert row[12].total_seconds() == 3600 and row[13:] == (
            "cpu-high", ["host", "room"], "Hot: {instance}", True, EMAIL, False,
        )  # fmt: skip
        assert "Rule “temp-high” saved" in client.get(r.headers["location"]).text

        r = client.get("/rules/temp-high/edit")
        assert r.status_code == 200
        assert 'value="1h"' in r.text and ">room=a</textarea>" in r.text
        assert 'value="host, room"' in r.text
        preview = r.text.split('id="preview-table"')[1].split("</table>")[0]
        assert "temp{room=&#34;a&#34;}" in preview and "temp{room=&#34;b&#34;}" not in preview

        # Preview of unsaved changes, then saving them (and a rename).
        r = client.post(
            "/rules/temp-high/edit",
            data=rule_form(match_labels="", threshold="10", recover_op="", recover_threshold="",
                           action="preview"),
        )  # fmt: skip
        assert r.status_code == 200
        preview = r.text.split('id="preview-table"')[1].split("</table>")[0]
        assert preview.count('<span class="state alert">firing</span>') == 2
        assert one(conn, "select threshold from vigil.alert_rules where name = 'temp-high'") == 70
        r = client.post("/rules/temp-high/edit", data=rule_form(name="temp-hot", threshold="10"))
        assert r.status_code == 303
        assert one(conn, "select threshold from vigil.alert_rules where name = 'temp-hot'") == 10

        r = client.post("/rules/temp-hot/disable")
        assert r.status_code == 303
        assert one(conn, "select enabled from vigil.alert_rules where name = 'temp-hot'") is False
        assert (
            "Enable" in client.get("/rules").text.split('id="rule-temp-hot"')[1].split("</tr>")[0]
        )
        assert client.post("/rules/temp-hot/enable").status_code == 303
        assert one(conn, "select enabled from vigil.alert_rules where name = 'temp-hot'") is True
        assert client.post("/rules/nope/enable").status_code == 404

        r = client.post("/rules/temp-hot/delete")
        assert r.status_code == 303
        assert one(conn, "select count(*) from vigil.alert_rules where name = 'temp-hot'") == 0
        r = client.post("/rules/temp-hot/delete")
        assert r.status_code == 404 and "There is no rule named" in r.text
        r = client.post("/rules/ping/delete")
        assert r.status_code == 403 and "is built in and cannot be deleted" in r.text
        assert one(conn, "select count(*) from vigil.alert_rules where name = 'ping'") == 1
        assert client.get("/rules/nope/edit").status_code == 404

        # A built-in rule is tuned, not rewired: its source and matchers stay.
        r = client.get("/rules/disk/edit")
        assert r.status_code == 200 and 'value="disk" placeholder="ping" disabled>' in r.text
        assert "Delete rule" not in r.text
        r = client.post(
            "/rules/disk/edit",
            data=rule_form(name="renamed", source="series", match_name="x", threshold="95",
                           recover_op="", recover_threshold="", severity="critical",
                           repeat_interval="4h"),
        )  # fmt: skip
        assert r.status_code == 303, r.text
        row = one(
            conn,
            "select name, source, match_name, match_type, metric_type, op, threshold, severity,"
            " repeat_interval from vigil.alert_rules where builtin and metric_type = 'disk'",
        )
        assert row[:8] == ("disk", "heartbeat", None, "disk", "disk", ">", 95, "critical")
        assert row[8].total_seconds() == 4 * 3600


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"name": ""}, 400, "Name: required."),
        ({"name": "bad name!"}, 400, "Name: 1 to 100 letters, digits"),
        ({"name": "cpu-high"}, 409, "A rule with this name exists already."),
        ({"agg_window": "5 parsecs"}, 400, "Window: &#39;5 parsecs&#39; is not a duration"),
        ({"agg_window": "40d"}, 400, "Window: between 1 second and 31 days."),
        ({"threshold": ""}, 400, "A rule needs a condition: an operator and a threshold."),
        ({"threshold": "nan"}, 400, "Threshold: &#39;nan&#39; is not a finite number."),
        ({"threshold": "ninety"}, 400, "Threshold: &#39;ninety&#39; is not a number."),
        ({"recover_threshold": ""}, 400, "Recovery: give both an operator and a threshold"),
        ({"op": "=~"}, 400, "Condition operator: choose one of"),
        ({"source": "job"}, 400, "Source: choose one of series, heartbeat, uptime, log."),
        ({"source": "log"}, 400, "A log rule counts lines: choose the aggregate count."),
        ({"source": "uptime", "agg": "sum"}, 400, "An uptime rule aggregates with last"),
        ({"match_name": ""}, 400, "A series rule needs the series name"),
        ({"group_wait": "20m"}, 400, "group wait is at most 10 minutes"),
        ({"eval_interval": "2d"}, 400, "Evaluate every: between 1 second and 1 day."),
        ({"no_data_after": "0s"}, 400, "no data after is longer than 0"),
        ({"match_labels": "host"}, 400, "Label matchers, line 1: write key=value"),
        ({"depends_on": "ghost"}, 400, "Depends on: there is no rule named &#39;ghost&#39;."),
        ({"severity": "panic"}, 400, "Severity: choose one of info, warning, critical."),
        ({"description": "nul \x00 byte"}, 400, "NUL"),
    ],
)  # fmt: skip
def test_rule_form_refusals_rerender_the_form_with_a_4xx(
    api: ApiServer, dsn: str, conn: Conn, fields: dict[str, str], status: int, message: str
) -> None:
    add_rule(conn, "cpu-high", "cpu")
    with login_client(api.url, dsn, EMAIL) as client:
        for action in ("save", "preview"):
            r = client.post("/rules/new", data=rule_form(action=action, **fields))
            assert r.status_code == status, (action, r.text[:3000])
            assert message in r.text, (action, r.text.split("<main>")[1][:1500])
            assert 'id="form-error"' in r.text and 'id="rule-form"' in r.text
        if fields.get("name") != "cpu-high":  # the same refusal when editing a rule
            r = client.post(
                "/rules/cpu-high/edit", data=rule_form(**({"name": "cpu-high"} | fields))
            )
            assert r.status_code == status and message in r.text
    assert one(conn, "select count(*) from vigil.alert_rules where not builtin") == 1


def test_silences_add_list_expire_and_refusals(api: ApiServer, dsn: str, conn: Conn) -> None:
    seed(conn)
    with login_client(api.url, dsn, EMAIL) as client:
        r = client.post(
            "/silences",
            data={"rule": "cpu-high", "matchers": "host=web-1", "duration": "90m",
                  "until": "", "comment": "reboot <script>x</script>"},
        )  # fmt: skip
        assert r.status_code == 303 and r.headers["location"] == "/silences?done=added"
        sid, pattern, matchers, minutes, author = one(
            conn,
            "select id, rule_pattern, matchers, extract(epoch from ends_at - starts_at) / 60,"
            " author from vigil.silences where comment like 'reboot%'",
        )
        assert (pattern, matchers, round(minutes), author) == (
            "cpu-high",
            {"host": "web-1"},
            90,
            EMAIL,
        )
        r = client.post(
            "/silences",
            data={"rule": "", "matchers": "", "duration": "", "until": "2999-01-01T10:00",
                  "comment": "until the end of time"},
        )  # fmt: skip
        assert r.status_code == 303
        assert (
            one(conn, "select ends_at from vigil.silences where comment = 'until the end of time'")
            .isoformat()
            .startswith("2999-01-01T10:00:00+00:00")
        )

        page = client.get("/silences?done=added").text
        active = page.split('id="active-silences"')[1].split("</table>")[0]
        mine = active.split(f'id="silence-{sid}"')[1].split("</tr>")[0]
        assert "reboot &lt;script&gt;x&lt;/script&gt;" in mine and "<script>x" not in page
        assert "host=web-1" in mine and f"by {EMAIL}" in mine and "1 instance<" in mine
        assert "every rule" in active and "Silence added" in page
        assert f'action="/silences/{sid}/expire"' in mine
        # the cpu-high firing instance on web-1 is now silenced, and marked so
        alerts = client.get("/alerts", params={"rule": "cpu-high", "state": "firing"}).text
        assert 'class="mark silenced"' in alerts

        refusals = [
            ({"comment": ""}, "Comment: say why"),
            ({"duration": "forever"}, "Duration: &#39;forever&#39; is not a duration"),
            ({"duration": ""}, "Give a duration (e.g. 2h) or an end time."),
            ({"until": "yesterday"}, "Until: &#39;yesterday&#39; is not a time"),
            ({"until": "2001-01-01T00:00"}, "a silence must last longer than 0"),
            ({"rule": "nothing-*"}, "no rule matches &#34;nothing-*&#34;"),
            ({"matchers": "host web-1"}, "Label matchers, line 1: write key=value"),
            ({"comment": "x" * 501}, "Comment: say why, in 1 to 500 characters."),
        ]
        for change, message in refusals:
            data = {"rule": "cpu-high", "matchers": "", "duration": "1h", "until": "",
                    "comment": "why"} | change  # fmt: skip
            r = client.post("/silences", data=data)
            assert r.status_code == 400, (change, r.text[:2000])
            assert message in r.text, (change, message)
            assert 'id="form-error"' in r.text
        assert one(conn, "select count(*) from vigil.silences") == 3

        assert client.post(f"/silences/{sid}/expire").status_code == 303
        assert one(conn, "select ends_at <= now() from vigil.silences where id = %s", (sid,))
        page = client.get("/silences").text
        assert f'id="silence-{sid}"' in page.split('id="expired-silences"')[1]
        r = client.post(f"/silences/{sid}/expire")
        assert r.status_code == 404 and "is not active or upcoming" in r.text
        assert client.post("/silences/abc/expire").status_code in (400, 404)


def test_every_form_needs_the_csrf_token(api: ApiServer, dsn: str, conn: Conn) -> None:
    add_rule(conn, "cpu-high", "cpu")
    sid = one(conn, "select vigil.silence_add(null, '{}', '1 hour', 'x', 'bob')")
    before = one(conn, "select count(*) from vigil.alert_rules")
    posts = [
        ("/rules/new", rule_form()),
        ("/rules/new", rule_form(action="preview")),
        ("/rules/cpu-high/edit", rule_form(name="cpu-high", threshold="1")),
        ("/rules/cpu-high/disable", {}),
        ("/rules/cpu-high/delete", {}),
        ("/silences", {"rule": "", "matchers": "", "duration": "1h", "comment": "x"}),
        (f"/silences/{sid}/expire", {}),
    ]
    with login_client(api.url, dsn, EMAIL) as client:
        token = csrf_token(client)
        del client.headers["X-CSRF-Token"]
        for path, data in posts:
            r = client.post(path, data=data)
            assert r.status_code == 403, path
            r = client.post(path, data=data | {"csrf_token": "wrong"})
            assert r.status_code == 403, path
        assert one(conn, "select count(*) from vigil.alert_rules") == before
        row = one(conn, "select threshold, enabled from vigil.alert_rules where name = 'cpu-high'")
        assert row == (5, True)
        assert one(conn, "select count(*) from vigil.silences where ends_at > now()") == 1
        # the form field works as well as the header
        r = client.post("/rules/cpu-high/disable", data={"csrf_token": token})
        assert r.status_code == 303


def test_hostile_text_is_escaped_everywhere(api: ApiServer, dsn: str, conn: Conn) -> None:
    seed(conn)
    add_rule(
        conn, 'x', "x", labels='{"team": "<svg onload=alert(3)>"}',
        ok_template="\"><script>alert(4)</script>", match_labels='{"k": "<b>v</b>"}',
    )  # fmt: skip
    with login_client(api.url, dsn, EMAIL) as client:
        pages = {path: client.get(path).text for path in (
            "/alerts", "/rules", "/rules/http-errors/edit", "/rules/x/edit", "/silences",
        )}  # fmt: skip
    for path, text in pages.items():
        for raw in ("<script>alert", "<img src=x", "<svg onload", "<b>", "<i>now"):
            assert raw not in text, (path, raw)
    assert "errors &lt;script&gt;alert(1)&lt;/script&gt;" in pages["/rules"]
    assert "path=&#34;/&lt;b&gt;x&lt;/b&gt;&#34;" in pages["/alerts"]
    assert "Alert &lt;img src=x onerror=alert(2)&gt; {instance}" in pages["/rules/http-errors/edit"]
    assert "&#34;&gt;&lt;script&gt;alert(4)&lt;/script&gt;" in pages["/rules/x/edit"]
    assert "team=&lt;svg onload=alert(3)&gt;" in pages["/rules/x/edit"]
    assert "k=&lt;b&gt;v&lt;/b&gt;" in pages["/rules"]
    assert "kernel upgrade &lt;i&gt;now&lt;/i&gt;" in pages["/silences"]


# Headless Chromium ---------------------------------------------------------------------------

PAGES = {"alerts": "/alerts", "rules": "/rules", "rule-new": "/rules/new", "silences": "/silences"}


@pytest.mark.browser
def test_pages_in_chromium_at_desktop_and_phone_width_light_and_dark(
    browser: Any, api: ApiServer, dsn: str, conn: Conn
) -> None:
    from playwright.sync_api import expect

    seed(conn)
    for width, scheme, page, errors in views(browser, desktop=1280):
        login(page, api.url, dsn, EMAIL)
        for name, path in PAGES.items():
            page.goto(api.url + path)
            expect(page.locator("nav[aria-label=main] a[aria-current=page]")).to_have_text("Alerts")
            assert_fits(page, width, scheme, name)
            screenshot(page, f"alerts-{name}-{width}-{scheme}")
        assert errors == []  # e.g. no CSP violations


@pytest.mark.browser
def test_silence_this_then_a_rule_with_preview_in_chromium(
    page: Any, api: ApiServer, dsn: str, conn: Conn
) -> None:
    from playwright.sync_api import expect

    seed(conn)
    point(conn, "temp", 75, "1 minute", '{"room": "a"}')
    login(page, api.url, dsn, EMAIL)
    page.goto(api.url + "/alerts")
    cpu = page.locator('#open-alerts tr[data-rule="cpu-high"]')
    expect(cpu.locator(".state")).to_have_text("firing")
    cpu.get_by_role("link", name="Silence…").click()
    expect(page.locator("#s-rule")).to_have_value("cpu-high")
    expect(page.locator("#s-matchers")).to_have_value("host=web-1\n__name__=cpu")
    page.fill("#s-comment", "replacing the fan")
    page.click("#add-silence button[type=submit]")
    expect(page.locator(".notice.success")).to_contain_text("Silence added")
    expect(page.locator("#active-silences")).to_contain_text("replacing the fan")
    page.goto(api.url + "/alerts")
    expect(cpu.locator(".mark.silenced")).to_be_visible()
    assert "replacing the fan" in (cpu.locator(".mark.silenced").get_attribute("title") or "")

    page.goto(api.url + "/rules")
    page.click("#new-rule")
    page.fill("#f-name", "temp-high")
    page.fill("#f-match_name", "temp")
    page.select_option("#f-agg", "last")
    page.fill("#f-threshold", "70")
    page.click("#preview-button")
    expect(page.locator("#preview-table")).to_contain_text('temp{room="a"}')
    expect(page.locator("#preview-table .state.alert").first).to_have_text("firing")
    expect(page.locator("#preview-condition")).to_have_text("last 5m > 70")
    screenshot(page, "alerts-rule-preview")
    page.fill("#f-group_wait", "20m")
    page.click("#save-button")
    expect(page.locator("#form-error")).to_contain_text("group wait is at most 10 minutes")
    page.fill("#f-group_wait", "2s")
    page.click("#save-button")
    expect(page.locator(".notice.success")).to_contain_text("Rule “temp-high” saved")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#rule-temp-high").get_by_role("button", name="Delete").click()
    expect(page.locator(".notice.success")).to_contain_text("deleted")
    expect(page.locator("#rule-temp-high")).to_have_count(0)
