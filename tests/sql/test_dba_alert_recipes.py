"""The alert-rule recipes of docs/dba.md ("Alert rules": list, tune, add, what is firing
and why, history, rule_test, silences, maintenance windows) run as the guide prints them,
in both modes (``db``), and do what the guide says."""

from __future__ import annotations

from datetime import timedelta

from psycopg.types.json import Jsonb

from tests.support import guide
from tests.support.sql import Conn

SECTION = "## Alert rules"


def recipe(*words: str) -> str:
    return guide.recipe(SECTION, *words)


def rule(db: Conn, name: str, *columns: str) -> tuple[object, ...]:
    row = db.execute(
        f"select {', '.join(columns)} from vigil.alert_rules where name = %s",  # noqa: S608
        (name,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_tuning_recipes_change_the_rules(db: Conn) -> None:
    listed = db.execute(recipe("select name, source, builtin")).fetchall()
    assert [r[0] for r in listed] == ["disk", "ping", "uptime", "vigil-jobs"]
    db.execute(recipe("no_data_after = interval '10 minutes'"))
    db.execute(recipe("threshold = 95, recover_op"))
    db.execute(recipe("repeat_interval = interval '1 hour'"))
    db.execute(recipe("depends_on = 'ping'"))
    assert rule(db, "ping", "no_data_after") == (timedelta(minutes=10),)
    assert rule(db, "disk", "threshold", "recover_op", "recover_threshold") == (95.0, "<", 80.0)
    assert rule(db, "uptime", "repeat_interval", "depends_on") == (timedelta(hours=1), "ping")
    # The old table of heartbeat types is a view that still takes updates.
    assert db.execute("select * from vigil.rules where type = 'ping'").fetchone() == (
        "ping",
        "deadline",
        10,
        None,
    )
    db.execute("update vigil.rules set threshold = 97 where type = 'disk'")
    assert rule(db, "disk", "threshold") == (97.0,)


def test_a_rule_added_as_printed_fires_and_is_explained(db: Conn) -> None:
    db.execute(recipe("insert into vigil.alert_rules", "cpu_busy"))
    db.execute(recipe("rule_group = 'slow'"))  # matches no rule here: changes nothing
    for seconds in range(0, 300, 10):
        db.execute(
            "select vigil.add_point('cpu_usage', 97, now() - make_interval(secs => %s), %s)",
            (seconds, Jsonb({"host": "web-1"})),
        )
    tested = db.execute(recipe("vigil.rule_test('cpu_busy')")).fetchall()
    assert [(r[0], r[4]) for r in tested] == [
        ({"__name__": "cpu_usage", "host": "web-1"}, "pending")
    ]
    assert db.execute("select vigil.evaluate_rules()").fetchone() == (1,)
    firing = db.execute(recipe("from vigil.alerts")).fetchall()
    assert [(r[0], r[1], r[2], r[4]) for r in firing] == [
        ("cpu_busy", 'cpu_usage{host="web-1"}', "pending", 97.0)
    ]
    history = db.execute(recipe("from vigil.alert_history")).fetchall()
    assert [(r[1], r[4], r[5], r[8]) for r in history] == [
        ("cpu_busy", "normal", "pending", "pending changes are not announced")
    ]


def test_silence_and_maintenance_recipes(db: Conn) -> None:
    added = db.execute(recipe("vigil.silence_add(")).fetchone()
    assert added is not None
    active = db.execute(recipe("from vigil.silences")).fetchall()
    assert [(r[0], r[1], r[2], r[6]) for r in active] == [
        (added[0], "disk", {"host": "db-1"}, "resizing /var")
    ]
    expire = recipe("vigil.silence_expire(")
    assert db.execute(expire.replace("(1)", f"({added[0]})")).fetchone() == (True,)
    assert db.execute(recipe("from vigil.silences")).fetchall() == []
    db.execute(recipe("insert into vigil.maintenance_windows"))
    windows = db.execute(recipe("maintenance_active(w, now())")).fetchall()
    assert len(windows) == 1 and windows[0][0] == "sunday backups"
    assert isinstance(windows[0][1], bool)
