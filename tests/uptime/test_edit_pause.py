"""Editing, pausing and resuming a service, in both database modes (SQL), and through
`vigil service edit|pause|resume` (the real CLI against real PostgreSQL), with the refusal
of internal URLs at creation and edit."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import psycopg
import pytest

from tests.support.processes import vigil_in_process
from tests.support.uptime import Conn, add, events, outbox_texts


def settings(db: Conn, name: str) -> tuple[object, ...] | None:
    return db.execute(
        "select url, extract(epoch from check_interval)::int, expected_status, body_contains, "
        "retries, allow_internal, enabled, state from vigil.services where name = %s",
        (name,),
    ).fetchone()


def test_edit_in_both_modes(db: Conn) -> None:
    sid = add(db, "web", "https://web.example/")
    assert db.execute(
        "select vigil.service_edit(%s, 'site', 'https://site.example/ok', '30 s', '5 s', false, "
        "204, 'ready', 4)",
        (sid,),
    ).fetchone() == (True,)
    assert settings(db, "site") == ("https://site.example/ok", 30, 204, "ready", 4, False, True,
                                    "unknown")  # fmt: skip
    # Empty body: not checked; an unknown id: false.
    db.execute(
        "select vigil.service_edit(%s, 'site', 'https://site.example/', '30 s', '5 s', false, "
        "null, '', 0)",
        (sid,),
    )
    assert settings(db, "site")[2:4] == (None, None)  # type: ignore[index]
    assert db.execute(
        "select vigil.service_edit(999, 'x', 'https://x.example/', '30 s', '5 s', false, "
        "null, null, 2)"
    ).fetchone() == (False,)
    for bad, hint in (
        ("'ftp://x/', '30 s', '5 s', false, null, null, 2", "give a URL like"),
        ("'https://x/', '30 s', '5 s', false, 700, null, 2", "use 100 to 599"),
        ("'https://x/', '30 s', '5 s', false, null, null, 11", "use 0 to 10"),
        ("'https://x/', '2 days', '5 s', false, null, null, 2", "use 1 second to 1 day"),
    ):
        with pytest.raises(psycopg.errors.InvalidParameterValue) as err:
            db.execute(f"select vigil.service_edit({sid}, 'site', {bad})")
        assert hint in (err.value.diag.message_hint or "")
    add(db, "other", "https://other.example/")
    with pytest.raises(psycopg.errors.UniqueViolation, match='"other" exists already'):
        db.execute(
            "select vigil.service_edit(%s, 'other', 'https://a.example/', '30 s', '5 s', "
            "false, null, null, 2)",
            (sid,),
        )


def test_paused_is_not_probed_nor_alerted(db: Conn) -> None:
    sid = add(db, "web", "https://web.example/", retries=0)
    db.execute(
        "select vigil.record_check(%s, now() - interval '2 hours', 500, 5.0, null, null)", (sid,)
    )
    assert outbox_texts(db) == ["Alert: web - down (HTTP 500)"]
    # Reminders every minute, were the alert left firing.
    db.execute("update vigil.alert_rules set repeat_interval = '1 minute' where name = 'uptime'")
    assert db.execute("select vigil.service_pause('web', true)").fetchone() == (True,)
    assert db.execute(
        "select i.state, e.withheld from vigil.alert_instances i "
        "join vigil.alert_rules r on r.id = i.rule_id and r.name = 'uptime' "
        "join vigil.alert_events e on e.rule_id = i.rule_id and e.key = i.key "
        "where i.key = %s order by e.id desc limit 1",
        (f"service:{sid}",),
    ).fetchone() == ("normal", "service paused")
    db.execute("select vigil.evaluate_rules(now() + interval '1 hour')")
    assert outbox_texts(db) == ["Alert: web - down (HTTP 500)"]  # no reminder, no "OK again"
    assert settings(db, "web")[6:] == (False, "unknown")  # type: ignore[index]
    # The current event ends at the pause: paused time counts neither way.
    assert events(db, "web") == [("downtime", False)]
    db.execute("update vigil.services set next_check_at = now() - interval '1 minute'")
    assert db.execute("select count(*) from vigil.claim_checks(10)").fetchone() == (0,)
    assert db.execute("select vigil.check_lag() = interval '0'").fetchone() == (True,)
    assert db.execute("select vigil.service_pause('nope', true)").fetchone() == (False,)
    # Resume: due at once; the first good check opens an uptime event.
    assert db.execute("select vigil.service_pause('web', false)").fetchone() == (True,)
    claimed = db.execute("select id from vigil.claim_checks(10)").fetchall()
    assert claimed == [(sid,)]
    db.execute("select vigil.record_check(%s, now(), 200, 5.0, null, null)", (sid,))
    assert events(db, "web") == [("downtime", False), ("uptime", True)]
    uptime = db.execute("select vigil.service_uptime(%s, %s)", (sid, timedelta(days=1))).fetchone()
    assert uptime is not None and isinstance(uptime[0], float)
    assert uptime[0] < 0.01  # the paused 2 h count neither way


def vigil(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return vigil_in_process(dsn, "service", *args)


def test_cli_edit_pause_resume_and_internal_refusal(dsn: str, conn: Conn) -> None:
    refused = vigil(dsn, "add", "db", "http://127.0.0.1:8080/health")
    assert refused.returncode == 1
    assert "127.0.0.1 is a loopback address; add --allow-internal" in refused.stderr
    refused = vigil(dsn, "add", "lh", "http://localhost/")
    assert refused.returncode == 1 and "localhost resolves to" in refused.stderr
    refused = vigil(dsn, "add", "meta", "http://169.254.169.254/", "--allow-internal")
    assert refused.returncode == 1 and "never probed" in refused.stderr
    assert conn.execute("select count(*) from vigil.services").fetchone() == (0,)

    ok = vigil(dsn, "add", "db", "http://127.0.0.1:8080/health", "--allow-internal")
    assert ok.returncode == 0, ok.stderr
    ok = vigil(dsn, "edit", "db", "--expect-status", "204", "--body-contains", "ok",
               "--retries", "5", "--interval", "60")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert settings(conn, "db") == ("http://127.0.0.1:8080/health", 60, 204, "ok", 5, True,
                                    True, "unknown")  # fmt: skip
    # Dropping "internal" on an internal URL is refused with the reason; nothing changes.
    refused = vigil(dsn, "edit", "db", "--no-allow-internal")
    assert refused.returncode == 1 and "loopback address" in refused.stderr
    bad = vigil(dsn, "edit", "db", "--expect-status", "700")
    assert bad.returncode == 1 and "use 100 to 599" in bad.stderr
    ok = vigil(dsn, "edit", "db", "--name", "database", "--expect-status", "any",
               "--body-contains", "")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert settings(conn, "database")[:5] == ("http://127.0.0.1:8080/health", 60, None, None, 5)  # type: ignore[index]
    assert vigil(dsn, "edit", "nope", "--retries", "1").returncode == 1

    paused = vigil(dsn, "pause", "database")
    assert paused.returncode == 0 and "paused" in paused.stdout
    listed = vigil(dsn, "list")
    assert "[paused]" in listed.stdout
    assert settings(conn, "database")[6] is False  # type: ignore[index]
    resumed = vigil(dsn, "resume", "database")
    assert resumed.returncode == 0 and "resumed" in resumed.stdout
    assert settings(conn, "database")[6] is True  # type: ignore[index]
    missing = vigil(dsn, "pause", "nope")
    assert missing.returncode == 1 and "no service named 'nope'" in missing.stderr
