"""The alert-rule engine in SQL, with injected times, in both database lanes (``db``):
hysteresis, for, no data, reminders, silences, maintenance windows across DST,
dependencies, grouping, concurrent evaluators, and a threshold rule on a real series
checked against a direct query over the raw points."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.support.datasets import nab_series
from tests.support.sql import T0, detect, ingest

Conn = psycopg.Connection[tuple[object, ...]]


def secs(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


def add_rule(db: Conn, name: str, **cols: Any) -> int:
    values = {
        "source": "series",
        "match_name": name,
        "agg": "last",
        "op": ">",
        "threshold": 1000,
        "group_wait": timedelta(0),
        **cols,
    }
    values = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in values.items()}
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    row = db.execute(
        f"insert into vigil.alert_rules (name, {names}) values (%s, {marks}) returning id",  # noqa: S608
        (name, *values.values()),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def point(db: Conn, name: str, value: float, at: datetime, **labels: str) -> None:
    db.execute("select vigil.add_point(%s, %s, %s, %s)", (name, value, at, Jsonb(labels)))


def evaluate(db: Conn, at: datetime) -> int:
    row = db.execute("select vigil.evaluate_rules(%s)", (at,)).fetchone()
    assert row is not None
    return int(str(row[0]))


def texts(db: Conn) -> list[str]:
    return [str(r[0]) for r in db.execute("select text from vigil.outbox order by id")]


def changes(db: Conn, rule: str) -> list[tuple[object, ...]]:
    return db.execute(
        "select from_state, to_state, kind, withheld is not null from vigil.alert_history "
        "where rule = %s order by id",
        (rule,),
    ).fetchall()


def state(db: Conn, rule: str) -> str:
    rows = db.execute("select state from vigil.alerts where rule = %s", (rule,)).fetchall()
    assert len(rows) == 1, rows
    return str(rows[0][0])


def test_flapping_with_hysteresis_fires_once_and_never_resolves(db: Conn) -> None:
    # Grafana's example: fire above 1000, recover below 900.
    add_rule(db, "temp", recover_op="<", recover_threshold=900)
    for i, value in enumerate([980, 1010, 990, 1020]):
        point(db, "temp", value, secs(10 * i))
        evaluate(db, secs(10 * i + 1))
    assert changes(db, "temp") == [("normal", "firing", "change", False)]
    assert texts(db) == ["Alert: temp - temp Value: 1010"]
    assert state(db, "temp") == "firing"
    # Below the recovery threshold it resolves, with the series' default text.
    point(db, "temp", 850, secs(50))
    evaluate(db, secs(51))
    assert texts(db)[-1] == "OK again: temp - temp Value: 850"


def test_for_a_short_spike_does_not_fire(db: Conn) -> None:
    add_rule(db, "load", for_duration=timedelta(seconds=30), labels={})
    point(db, "load", 1500, secs(10))
    evaluate(db, secs(11))
    assert state(db, "load") == "pending"
    point(db, "load", 500, secs(20))
    evaluate(db, secs(21))
    assert state(db, "load") == "normal"
    assert texts(db) == []  # pending and back are history only
    assert changes(db, "load") == [
        ("normal", "pending", "change", True),
        ("pending", "normal", "change", True),
    ]
    # Held for 30 s it fires, once.
    for t in (30, 40, 50, 70):
        point(db, "load", 1500, secs(t))
        evaluate(db, secs(t + 1))
    assert [c[1] for c in changes(db, "load")][-2:] == ["pending", "firing"]
    assert texts(db) == ["Alert: load - load Value: 1500"]


@pytest.mark.parametrize(("no_data", "after_silence"), [("alert", "firing"), ("keep", "normal")])
def test_no_data_when_the_series_goes_silent(db: Conn, no_data: str, after_silence: str) -> None:
    add_rule(db, "beat", agg_window=timedelta(minutes=1), no_data=no_data)
    point(db, "beat", 5, secs(0))
    evaluate(db, secs(10))
    assert state(db, "beat") == "normal"
    evaluate(db, secs(61))  # nothing for a minute
    assert state(db, "beat") == after_silence
    if no_data == "alert":
        assert texts(db) == ["Alert: beat - beat Value: no data"]
        point(db, "beat", 6, secs(70))
        evaluate(db, secs(71))
        assert state(db, "beat") == "normal"
        assert texts(db)[-1] == "OK again: beat - beat Value: 6"
    else:
        assert texts(db) == []


def test_no_data_ok_resolves_a_firing_instance(db: Conn) -> None:
    add_rule(db, "gone", agg_window=timedelta(minutes=1), no_data="ok")
    point(db, "gone", 2000, secs(0))
    evaluate(db, secs(1))
    assert state(db, "gone") == "firing"
    evaluate(db, secs(90))
    assert state(db, "gone") == "normal"


def test_keep_firing_for_holds_a_recovery(db: Conn) -> None:
    add_rule(db, "hold", keep_firing_for=timedelta(seconds=30))
    point(db, "hold", 2000, secs(0))
    evaluate(db, secs(1))
    point(db, "hold", 10, secs(10))
    evaluate(db, secs(11))
    evaluate(db, secs(31))
    assert state(db, "hold") == "firing"
    evaluate(db, secs(41))
    assert state(db, "hold") == "normal"


def test_reminders_at_the_repeat_interval_none_after_recovery(db: Conn) -> None:
    add_rule(db, "hot", repeat_interval=timedelta(minutes=1), agg_window=timedelta(hours=1))
    point(db, "hot", 2000, secs(0))
    for t in range(1, 200, 10):
        evaluate(db, secs(t))
    reminders = [t for t in texts(db) if t.startswith("Reminder: ")]
    # Fired at 1 s; reminders at 61 s, 121 s and 181 s.
    assert len(reminders) == 3
    assert reminders[0] == (
        "Reminder: Alert: hot - hot Value: 2000 (firing since 2026-11-22 10:00:01 UTC)"
    )
    point(db, "hot", 10, secs(200))
    for t in range(201, 400, 10):
        evaluate(db, secs(t))
    assert len([t for t in texts(db) if t.startswith("Reminder: ")]) == 3
    assert texts(db)[-1] == "OK again: hot - hot Value: 10"


def test_silence_withholds_and_the_later_resolution_is_sent(db: Conn) -> None:
    add_rule(db, "cpu", agg_window=timedelta(hours=1))
    row = db.execute(
        "select vigil.silence_add('cpu', %s, '10 minutes', 'deploy', 'ops@example.com', %s)",
        (Jsonb({"host": "web-1"}), T0),
    ).fetchone()
    assert row is not None
    point(db, "cpu", 2000, secs(60), host="web-1")
    point(db, "cpu", 2000, secs(60), host="web-2")  # not matched by the silence
    evaluate(db, secs(61))
    assert texts(db) == ['Alert: cpu - cpu{host="web-2"} Value: 2000']
    withheld = db.execute(
        "select withheld from vigil.alert_history where instance ->> 'host' = 'web-1'"
    ).fetchone()
    assert withheld is not None and str(withheld[0]).startswith("silenced (silence")
    # Resolved after the silence ended: sent (Alertmanager #226).
    point(db, "cpu", 10, secs(700), host="web-1")
    evaluate(db, secs(701))
    assert texts(db)[-1] == 'OK again: cpu - cpu{host="web-1"} Value: 10'


def test_a_resolution_during_a_silence_is_withheld(db: Conn) -> None:
    add_rule(db, "mem", agg_window=timedelta(hours=1))
    point(db, "mem", 2000, secs(0))
    evaluate(db, secs(1))
    db.execute("select vigil.silence_add('mem', '{}', '1 hour', 'known', 'me', %s)", (secs(2),))
    point(db, "mem", 10, secs(10))
    evaluate(db, secs(11))
    assert texts(db) == ["Alert: mem - mem Value: 2000"]
    assert changes(db, "mem")[-1] == ("firing", "normal", "change", True)


def test_expired_silence_no_longer_withholds(db: Conn) -> None:
    add_rule(db, "io", agg_window=timedelta(hours=1))
    row = db.execute(
        "select vigil.silence_add(null, '{}', '1 hour', 'all', 'me', %s)", (T0,)
    ).fetchone()
    assert row is not None
    assert db.execute("select vigil.silence_expire(%s, %s)", (row[0], secs(5))).fetchone() == (
        True,
    )
    point(db, "io", 2000, secs(10))
    evaluate(db, secs(11))
    assert texts(db) == ["Alert: io - io Value: 2000"]


BERLIN_SUNDAY_NIGHTS = (
    "insert into vigil.maintenance_windows (name, days, starts, ends, time_zone) "
    "values ('sunday backups', '{7}', '02:00', '04:00', 'Europe/Berlin')"
)


@pytest.mark.parametrize(
    ("utc", "open_"),
    [
        # Winter (CET, UTC+1): 02:00-04:00 local = 01:00-03:00 UTC.
        ("2026-03-22 00:59", False),
        ("2026-03-22 01:30", True),
        ("2026-03-22 02:59", True),
        ("2026-03-22 03:00", False),
        # The night DST begins (02:00 -> 03:00): the window is 03:00-04:00 CEST.
        ("2026-03-29 00:30", False),
        ("2026-03-29 01:30", True),
        ("2026-03-29 02:00", False),
        # Summer (CEST, UTC+2): 02:00-04:00 local = 00:00-02:00 UTC.
        ("2026-07-05 00:30", True),
        ("2026-07-05 01:59", True),
        ("2026-07-05 02:30", False),
        # The night DST ends (03:00 -> 02:00): 02:00 CEST .. 04:00 CET, three hours.
        ("2026-10-25 00:30", True),
        ("2026-10-25 02:30", True),
        ("2026-10-25 03:00", False),
        # A Monday at the same local time: closed.
        ("2026-07-06 00:30", False),
    ],
)
def test_maintenance_window_follows_wall_clock_across_dst(db: Conn, utc: str, open_: bool) -> None:
    db.execute(BERLIN_SUNDAY_NIGHTS)
    at = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    row = db.execute(
        "select vigil.maintenance_active(w, %s) from vigil.maintenance_windows w", (at,)
    ).fetchone()
    assert row == (open_,)


def test_maintenance_window_withholds_notifications(db: Conn) -> None:
    db.execute(BERLIN_SUNDAY_NIGHTS)
    add_rule(db, "backup_load", agg_window=timedelta(days=1))
    at = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # inside, on the DST night
    point(db, "backup_load", 2000, at)
    evaluate(db, at + timedelta(seconds=1))
    assert texts(db) == []
    history = db.execute("select withheld from vigil.alert_history").fetchone()
    assert history == ('maintenance window "sunday backups"',)


def test_dependency_suppresses_children_of_a_down_host(db: Conn) -> None:
    # Every cpu alert of a host is withheld while the host's heartbeat (ping) is down.
    add_rule(db, "cpu_hot", match_name="cpu", depends_on="ping", agg_window=timedelta(hours=1))
    ingest(db, "web-1", "heartbeat", "ping", "5", secs(0))
    ingest(db, "web-2", "heartbeat", "ping", "5", secs(0))
    ingest(db, "web-2", "heartbeat", "ping", "5", secs(300))
    detect(db, secs(301))  # web-1 missed its 5-minute deadline
    assert texts(db) == ["Alert: web-1 - heartbeat Value: 5"]
    for host in ("web-1", "web-2"):
        point(db, "cpu", 2000, secs(302), host=host)
    evaluate(db, secs(303))
    assert texts(db)[1:] == ['Alert: cpu_hot - cpu{host="web-2"} Value: 2000']
    row = db.execute(
        "select suppressed, withheld from vigil.alerts where rule = 'cpu_hot' "
        "and instance ->> 'host' = 'web-1'"
    ).fetchone()
    assert row == (True, "suppressed: ping is firing for web-1 - heartbeat")


def test_grouping_writes_one_group_for_thirty_instances(db: Conn) -> None:
    add_rule(db, "disk_free", op="<", threshold=10, group_wait=timedelta(seconds=2))
    for i in range(30):
        point(db, "disk_free", 1, secs(0), host=f"h{i:02}")
    assert evaluate(db, secs(1)) == 30
    rows = db.execute(
        "select count(*), count(distinct instance_key), min(group_key), max(group_key), "
        "bool_and(next_attempt_at > created_at + interval '1.5 seconds') from vigil.outbox"
    ).fetchall()
    assert rows == [(30, 30, "alerts", "alerts", True)]


def test_heartbeat_rules_are_rows_with_their_texts(db: Conn) -> None:
    rules = db.execute(
        "select name, source, builtin, op, threshold, no_data, no_data_after "
        "from vigil.alert_rules where builtin order by name"
    ).fetchall()
    assert rules == [
        ("disk", "heartbeat", True, ">", 90.0, "keep", None),
        ("ping", "heartbeat", True, None, None, "alert", timedelta(minutes=5)),
        ("uptime", "uptime", True, None, None, "keep", None),
        ("vigil-jobs", "job", True, None, None, "alert", None),
    ]
    # Tuning the row changes ingest at once: disk with hysteresis, fire > 95, recover < 80.
    db.execute(
        "update vigil.alert_rules set threshold = 95, recover_op = '<', recover_threshold = 80 "
        "where name = 'disk'"
    )
    results = [
        ingest(db, "db-1", "/var", "disk", v, secs(i))
        for i, v in enumerate(["94", "96", "85", "96", "79"])
    ]
    assert results == ["ok", "alert", "alert", "alert", "ok"]
    assert texts(db) == ["Alert: db-1 - /var Value: 96", "OK again: db-1 - /var Value: 79"]
    # A built-in rule is tuned or disabled, never deleted.
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        db.execute("delete from vigil.alert_rules where name = 'disk'")


def test_builtin_rules_honour_silences_templates_and_reminders(db: Conn) -> None:
    db.execute(
        "update vigil.alert_rules set repeat_interval = '10 minutes', "
        "alert_template = 'DOWN {host}/{name} ({reason})' where name = 'ping'"
    )
    db.execute(
        "select vigil.silence_add('disk', %s, '1 hour', 'resizing', 'me', %s)",
        (Jsonb({"host": "db-1"}), T0),
    )
    ingest(db, "db-1", "/", "disk", "99", secs(0))
    ingest(db, "db-1", "cron", "ping", "1", secs(0))
    detect(db, secs(61))
    assert texts(db) == ["DOWN db-1/cron (no ping before its deadline)"]
    evaluate(db, secs(61 + 600))
    assert texts(db)[-1] == (
        "Reminder: DOWN db-1/cron (no ping before its deadline) "
        "(firing since 2026-11-22 10:01:01 UTC)"
    )
    # The disk alert was withheld, recorded with why; the metric itself is in alert.
    assert db.execute("select state from vigil.metrics where name = '/'").fetchone() == ("alert",)
    assert changes(db, "disk") == [("normal", "firing", "change", True)]


def test_uptime_down_is_an_instance_of_the_uptime_rule(db: Conn) -> None:
    row = db.execute(
        "select vigil.service_add('shop', 'https://shop.example/health', p_retries => 0)"
    ).fetchone()
    assert row is not None
    db.execute("select vigil.record_check(%s, %s, 503, 5, null)", (row[0], secs(0)))
    assert db.execute(
        "select rule, state, instance from vigil.alerts where source = 'uptime'"
    ).fetchall() == [("uptime", "firing", {"service": "shop", "host": "shop.example"})]
    assert texts(db) == ["Alert: shop - down (HTTP 503)"]


def test_rule_test_writes_nothing(db: Conn) -> None:
    add_rule(db, "probe", agg_window=timedelta(hours=1))
    point(db, "probe", 5000, secs(0))
    rows = db.execute(
        "select instance, value, state, would_be from vigil.rule_test('probe', %s)", (secs(1),)
    ).fetchall()
    assert rows == [({"__name__": "probe"}, 5000.0, "normal", "firing")]
    counts = db.execute(
        "select (select count(*) from vigil.alert_instances i join vigil.alert_rules r "
        "on r.id = i.rule_id where not r.builtin), (select count(*) from vigil.alert_events), "
        "(select count(*) from vigil.outbox)"
    ).fetchone()
    assert counts == (0, 0, 0)


def test_window_aggregates_and_rate(db: Conn) -> None:
    for t, v in [(0, 10), (60, 20), (120, 5), (180, 15)]:  # 20 -> 5 is a counter reset
        point(db, "req_total", v, secs(t))
    expected = {
        "avg": 12.5,
        "min": 5,
        "max": 20,
        "sum": 50,
        "count": 4,
        "last": 15,
        "rate": (10 + 5 + 10) / 180,
    }
    for agg in expected:
        add_rule(
            db, f"req_{agg}", match_name="req_total", agg=agg, agg_window=timedelta(minutes=10)
        )
    evaluate(db, secs(181))
    got = {
        str(r[0]): r[1]
        for r in db.execute("select rule, value from vigil.alerts where rule like 'req\\_%'")
    }
    assert got == pytest.approx({f"req_{k}": v for k, v in expected.items()})


def test_nab_series_fires_where_the_raw_points_say(db: Conn) -> None:
    # ec2 cpu utilisation, 5-minute points: "avg over 30 minutes > 95".
    points = nab_series("ec2_cpu_utilization_825cc2.csv")[:1500]
    series = db.execute(
        "select vigil.add_point('ec2_cpu', %s, %s, '{}')", (points[0][1], points[0][0])
    ).fetchone()
    assert series is not None
    db.execute(
        "insert into vigil.points (series_id, at, value) "
        "select %s, a, v from unnest(%s::timestamptz[], %s::float8[]) as u (a, v)",
        (series[0], [p[0] for p in points[1:]], [p[1] for p in points[1:]]),
    )
    add_rule(
        db,
        "ec2_hot",
        match_name="ec2_cpu",
        agg="avg",
        op=">",
        threshold=95,
        agg_window=timedelta(minutes=30),
    )
    ticks = [at + timedelta(seconds=1) for at, _ in points[::3]]
    for tick in ticks:
        db.execute("update vigil.alert_rules set next_eval_at = '-infinity' where name = 'ec2_hot'")
        evaluate(db, tick)
    # What a direct query over the raw points says, tick by tick.
    raw = db.execute(
        "select t, avg(p.value) > 95 from unnest(%s::timestamptz[]) t "
        "join vigil.points p on p.at > t - interval '30 minutes' and p.at <= t "
        "group by t order by t",
        (ticks,),
    ).fetchall()
    expected: list[tuple[object, str]] = []
    prev = False
    for t, hot in raw:
        if bool(hot) != prev:
            expected.append((t, "firing" if hot else "normal"))
            prev = bool(hot)
    got = db.execute(
        "select at, to_state from vigil.alert_history where rule = 'ec2_hot' order by id"
    ).fetchall()
    assert expected, "the slice must cross the threshold"
    assert got == expected


@pytest.mark.usefixtures("conn")
def test_four_concurrent_evaluators_make_each_transition_once(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as setup:
        for r in range(10):
            add_rule(
                setup,
                f"r{r}",
                match_name="shared",
                agg_window=timedelta(hours=1),
                eval_interval=timedelta(seconds=1),
            )
        for h in range(10):
            point(setup, "shared", 2000, secs(0), host=f"h{h}")
    errors: list[BaseException] = []

    def run(at: datetime) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                evaluate(c, at)
        except BaseException as e:
            errors.append(e)

    for at in (secs(1), secs(1.5), secs(3)):
        threads = [threading.Thread(target=run, args=(at,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    with psycopg.connect(dsn) as c:
        assert c.execute(
            "select count(*), count(distinct (rule_id, key)) from vigil.alert_events"
        ).fetchone() == (100, 100)
        assert c.execute("select count(*) from vigil.outbox").fetchone() == (100,)


def test_heartbeat_and_uptime_signals_make_their_rules_due_at_once(db: Conn) -> None:
    rules = {
        "backup_size": {
            "source": "heartbeat",
            "match_name": "backup*",
            "match_type": "disk",
            "op": "<",
            "threshold": 10,
        },
        "shop_slow": {
            "source": "uptime",
            "match_name": "shop",
            "agg": "max",
            "op": ">",
            "threshold": 500,
        },
    }
    for name, columns in rules.items():
        add_rule(db, name, **columns, eval_interval=timedelta(hours=1))
    assert evaluate(db, secs(0)) == 0  # evaluated: next due in an hour
    ingest(db, "nas", "backup-db", "disk", "5", secs(10))
    sid = db.execute("select vigil.service_add('shop', 'https://shop.example/')").fetchone()
    assert sid is not None
    db.execute("select vigil.record_check(%s, %s, 200, 900, null)", (sid[0], secs(20)))
    # Not an hour later: the report and the check made both rules due.
    assert evaluate(db, secs(21)) == 2
    assert texts(db) == [
        "Alert: backup_size - nas - backup-db Value: 5",
        "Alert: shop_slow - shop Value: 900",
    ]


def test_an_instance_no_longer_matched_is_resolved(db: Conn) -> None:
    add_rule(
        db,
        "cpu_web",
        match_name="cpu",
        match_labels={"host": "web-1"},
        agg_window=timedelta(hours=1),
    )
    point(db, "cpu", 2000, secs(0), host="web-1")
    point(db, "cpu", 2000, secs(0), host="web-2")
    evaluate(db, secs(1))
    assert state(db, "cpu_web") == "firing"
    # The matchers change to another host: web-1's alert is over, web-2's fires.
    db.execute(
        "update vigil.alert_rules set match_labels = %s, next_eval_at = '-infinity' "
        "where name = 'cpu_web'",
        (Jsonb({"host": "web-2"}),),
    )
    evaluate(db, secs(2))
    assert texts(db)[1:] == [
        'OK again: cpu_web - cpu{host="web-1"} Value: no data',
        'Alert: cpu_web - cpu{host="web-2"} Value: 2000',
    ]
    reasons = db.execute(
        "select reason from vigil.alert_history where to_state = 'normal'"
    ).fetchall()
    assert reasons == [("no longer matched by the rule",)]


def refresh_rollups(db: Conn, now: datetime) -> None:
    """What the rollup job (portable) or refresh policy (TimescaleDB) does up to `now`."""
    mode = db.execute("select mode from vigil.mode").fetchone()
    if mode == ("portable",):
        db.execute("select vigil.refresh_series_rollups(%s, '{}')", (now,))
    else:
        # Minutes are read from the raw points (points_minute is a view); hours are an aggregate.
        db.execute(
            "call refresh_continuous_aggregate('vigil.points_hour', null, "
            "date_trunc('hour', %s::timestamptz, 'UTC'))",
            (now,),
        )


def test_windows_read_through_the_rollup_equal_the_raw_points(db: Conn) -> None:
    # An hour of points every 10 s, rolled up; then a backfill into an already rolled-up
    # minute and fresh points after the rollup: the value still equals a direct aggregate.
    for i in range(360):
        point(db, "temp_room", 20 + (i % 17), secs(10 * i + 5), room="a")
    refresh_rollups(db, secs(3600))
    point(db, "temp_room", 500, secs(1805), room="a")  # backfill below the watermark
    point(db, "temp_room", 30, secs(3605), room="a")  # after it
    now = secs(3610)
    for agg in ("avg", "min", "max", "sum", "count"):
        add_rule(
            db, f"room_{agg}", match_name="temp_room", agg=agg, agg_window=timedelta(minutes=50)
        )
    raw = db.execute(
        "select avg(value), min(value), max(value), sum(value), count(*) from vigil.points "
        "where at > %s and at <= %s",
        (now - timedelta(minutes=50), now),
    ).fetchone()
    assert raw is not None
    evaluate(db, now)
    got = {
        str(r[0]): r[1]
        for r in db.execute("select rule, value from vigil.alerts where rule like 'room\\_%'")
    }
    assert got == pytest.approx(
        {
            f"room_{agg}": float(str(v))
            for agg, v in zip(("avg", "min", "max", "sum", "count"), raw, strict=True)
        }
    )


def test_alert_history_is_pruned_after_its_retention(db: Conn) -> None:
    add_rule(db, "old", agg_window=timedelta(hours=1))
    point(db, "old", 2000, secs(0))
    evaluate(db, secs(1))
    assert db.execute("select count(*) from vigil.alert_events").fetchone() == (1,)
    pruned = db.execute(
        'select vigil.prune_alert_events(%s, \'{"retention": "30 days"}\')',
        (secs(1) + timedelta(days=29),),
    ).fetchone()
    assert pruned == (0,)
    pruned = db.execute(
        "select vigil.prune_alert_events(%s, '{}')", (secs(1) + timedelta(days=181),)
    ).fetchone()
    assert pruned == (1,)
    assert state(db, "old") == "firing"  # the instance and its state stay
    jobs = db.execute(
        "select count(*) from vigil.jobs where job = 'prune_alert_events' "
        "or call = 'vigil.prune_alert_events_job'"
    ).fetchone()
    assert jobs == (1,)
