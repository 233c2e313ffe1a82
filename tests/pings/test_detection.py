"""Push check lateness, failures and run durations in SQL (vigil.push_ping, vigil.detect with
an injected p_now), in both lanes: portable PostgreSQL and TimescaleDB."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
import pytest

from api.pings.schedule import next_cron
from tests.support.sql import T0, Conn, db_now, detect, outbox_texts, run_scheduled_detector

RID_A = "11111111-1111-4111-8111-111111111111"
RID_B = "22222222-2222-4222-8222-222222222222"


def add(
    db: Conn,
    name: str,
    period: timedelta = timedelta(hours=1),
    grace: timedelta = timedelta(minutes=5),
    cron: str | None = None,
    tz: str = "UTC",
    now: datetime = T0,
) -> int:
    row = db.execute(
        "select vigil.push_check_add(%s, sha256(convert_to(%s, 'UTF8')), %s, %s, %s, %s, %s)",
        (name, name, period, grace, cron, tz, now),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def ping(
    db: Conn,
    check: int,
    kind: str | None,
    at: datetime,
    exit_status: int | None = None,
    rid: str | None = None,
    next_due: datetime | None = None,
) -> tuple[str, timedelta | None]:
    row = db.execute(
        "select state, duration from vigil.push_ping(%s, %s, p_exit_status => %s, "
        "p_rid => %s::uuid, p_next_cron => %s, p_now => %s)",
        (check, kind, exit_status, rid, next_due, at),
    ).fetchone()
    assert row is not None
    duration = row[1]
    assert duration is None or isinstance(duration, timedelta)
    return str(row[0]), duration


def status(db: Conn, name: str) -> str:
    row = db.execute(
        "select status from vigil.push_check_overview where name = %s", (name,)
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_period_lateness_alerts_and_a_ping_recovers(db: Conn) -> None:
    check = add(db, "backup")
    assert detect(db, T0 + timedelta(days=30)) == 0  # new: never pinged, never late
    assert status(db, "backup") == "new"
    assert ping(db, check, "success", T0) == ("ok", None)
    assert status(db, "backup") == "up"
    due = T0 + timedelta(hours=1, minutes=5)
    assert detect(db, due - timedelta(seconds=1)) == 0
    assert detect(db, due) == 1
    assert status(db, "backup") == "down"
    assert ping(db, check, "success", due + timedelta(minutes=1)) == ("ok", None)
    assert outbox_texts(db) == [
        "Alert: backup - late: no ping since 2026-11-22 10:00:00 UTC",
        "OK again: backup",
    ]


def test_exit_status_and_fail_alert_at_once(db: Conn) -> None:
    check = add(db, "job")
    assert ping(db, check, None, T0, exit_status=1)[0] == "alert"
    assert ping(db, check, "fail", T0 + timedelta(minutes=1))[0] == "alert"  # no second message
    assert ping(db, check, "log", T0 + timedelta(minutes=2))[0] == "alert"  # a log changes nothing
    assert ping(db, check, None, T0 + timedelta(minutes=3), exit_status=0)[0] == "ok"
    assert ping(db, check, "fail", T0 + timedelta(minutes=4))[0] == "alert"
    assert outbox_texts(db) == [
        "Alert: job - failed (exit status 1)",
        "OK again: job",
        "Alert: job - failed",
    ]
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        ping(db, check, None, T0, exit_status=256)


def test_started_run_must_finish_within_grace(db: Conn) -> None:
    check = add(db, "etl", period=timedelta(days=1), grace=timedelta(minutes=10))
    ping(db, check, "success", T0)
    ping(db, check, "start", T0 + timedelta(hours=2))
    assert status(db, "etl") == "started"
    assert detect(db, T0 + timedelta(hours=2, minutes=9)) == 0
    assert detect(db, T0 + timedelta(hours=2, minutes=10)) == 1
    assert outbox_texts(db) == [
        "Alert: etl - started 2026-11-22 12:00:00 UTC, not finished within 10m"
    ]
    state, duration = ping(db, check, "success", T0 + timedelta(hours=2, minutes=30))
    assert (state, duration) == ("ok", timedelta(minutes=30))
    assert outbox_texts(db)[-1] == "OK again: etl"


def test_run_ids_pair_each_start_with_its_end(db: Conn) -> None:
    check = add(db, "multi", grace=timedelta(hours=1))
    ping(db, check, "start", T0, rid=RID_A)
    ping(db, check, "start", T0 + timedelta(minutes=1), rid=RID_B)
    # A ends after 5 minutes although B started later; B is still running.
    assert ping(db, check, "success", T0 + timedelta(minutes=5), rid=RID_A)[1] == timedelta(
        minutes=5
    )
    assert status(db, "multi") == "started"
    assert ping(db, check, "success", T0 + timedelta(minutes=7), rid=RID_B)[1] == timedelta(
        minutes=6
    )
    assert status(db, "multi") == "up"
    assert ping(db, check, "success", T0 + timedelta(minutes=8))[1] is None  # no start to pair
    rows = db.execute(
        "select kind, rid::text, duration from vigil.push_pings where check_id = %s order by n",
        (check,),
    ).fetchall()
    assert rows == [
        ("start", RID_A, None),
        ("start", RID_B, None),
        ("success", RID_A, timedelta(minutes=5)),
        ("success", RID_B, timedelta(minutes=6)),
        ("success", None, None),
    ]
    last = db.execute(
        "select last_duration from vigil.push_checks where id = %s", (check,)
    ).fetchone()
    assert last == (timedelta(minutes=6),)


@pytest.mark.parametrize(
    ("pinged", "due"),
    [
        # Spring: 09:00 Berlin is 08:00 UTC on Saturday and 07:00 UTC on Sunday.
        (datetime.fromisoformat("2026-03-28T08:00:30+00:00"), "2026-03-29T07:10:00+00:00"),
        # Autumn: 09:00 Berlin is 07:00 UTC on Saturday and 08:00 UTC on Sunday.
        (datetime.fromisoformat("2026-10-24T07:00:30+00:00"), "2026-10-25T08:10:00+00:00"),
    ],
)
def test_cron_schedule_in_a_time_zone_across_dst(db: Conn, pinged: datetime, due: str) -> None:
    check = add(db, "daily", grace=timedelta(minutes=10), cron="0 9 * * *", tz="Europe/Berlin")
    # What the API does: the next cron time after the ping, in the check's zone.
    ping(db, check, "success", pinged, next_due=next_cron("0 9 * * *", "Europe/Berlin", pinged))
    deadline = datetime.fromisoformat(due)
    assert detect(db, deadline - timedelta(seconds=1)) == 0
    assert detect(db, deadline) == 1
    assert outbox_texts(db) == [
        f"Alert: daily - late: no ping since {pinged:%Y-%m-%d %H:%M:%S} UTC"
    ]


def test_changing_the_schedule_in_sql_takes_effect(db: Conn) -> None:
    check = add(db, "tuned", period=timedelta(hours=1), grace=timedelta(minutes=5))
    ping(db, check, "success", T0)
    db.execute(
        "update vigil.push_checks set period = '10 minutes', grace = '0' where id = %s", (check,)
    )
    assert detect(db, T0 + timedelta(minutes=9)) == 0
    assert detect(db, T0 + timedelta(minutes=10)) == 1
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        db.execute("update vigil.push_checks set tz = 'Mars/Olympus' where id = %s", (check,))


def test_scheduled_detector_alerts_a_late_check(db: Conn, mode: str) -> None:
    check = add(db, "sched", period=timedelta(minutes=30), grace=timedelta(0))
    ping(db, check, "success", db_now(db) - timedelta(hours=1))
    run_scheduled_detector(db, mode)
    assert status(db, "sched") == "down"
    assert outbox_texts(db)[0].startswith("Alert: sched - late: no ping since ")


def test_a_check_is_a_ping_metric_only_its_pings_move(db: Conn) -> None:
    check = add(db, "guarded")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="is a push check"):
        db.execute("select vigil.ingest_metric('check', 'guarded', 'ping', '5', %s, %s)", (T0, T0))
    with pytest.raises(psycopg.errors.UniqueViolation):
        add(db, "guarded")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        add(db, "Not A Slug")
    db.execute("update vigil.push_checks set keep_pings = 3 where id = %s", (check,))
    for minute in range(5):
        ping(db, check, "log", T0 + timedelta(minutes=minute))
    kept = db.execute("select n from vigil.push_pings where check_id = %s order by n", (check,))
    assert [r[0] for r in kept] == [3, 4, 5]
    assert db.execute("select vigil.push_check_delete('guarded')").fetchone() == (True,)
    left = db.execute(
        "select (select count(*) from vigil.metrics where host = 'check'), "
        "(select count(*) from vigil.push_pings)"
    ).fetchone()
    assert left == (0, 0)


def test_slug_lookup_and_auto_create(db: Conn) -> None:
    key = "k3y_abcdefghijklmnopqr"
    lookup = (
        "select id, created from vigil.push_check_by_slug(sha256(convert_to(%s, 'UTF8')), %s, %s)"
    )
    assert db.execute(lookup, (key, "web", True)).fetchall() == []  # no ping key yet
    db.execute("select vigil.ping_key_set(sha256(convert_to(%s, 'UTF8')))", (key,))
    assert db.execute(lookup, (key, "web", False)).fetchall() == []
    created = db.execute(lookup, (key, "web", True)).fetchall()
    assert len(created) == 1 and created[0][1] is True
    assert db.execute(lookup, (key, "web", True)).fetchall() == [(created[0][0], False)]
    assert db.execute(lookup, (key, "Bad Slug", True)).fetchall() == []
    row = db.execute("select period, grace from vigil.push_checks where name = 'web'").fetchone()
    assert row == (timedelta(days=1), timedelta(hours=1))  # Healthchecks' defaults
