"""Failover: the primary's postmaster is killed (SIGKILL) while senders write, the standby
is promoted, and Vigil's processes (API, notifier, prober) carry on through the
multi-host DATABASE_URL.

One scenario, every process running (one failover is cheaper than three), checked for:
- every write the API acknowledged (2xx) is on the new primary: a commit is acknowledged
  only once the synchronous standby has flushed it;
- during the switch the API answers 503 (never another 5xx) and stays up;
- the notifier and the prober reconnect by themselves and deliver what happens after.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import psycopg

from tests.conftest import free_port
from tests.failover.conftest import Pair, one, record_figures
from tests.failover.load import HOST, POINTS, SERIES, Outcome, Senders, missing_writes
from tests.support.fake_telegram import FakeTelegram
from tests.support.processes import vigil_env, vigil_process, wait_http, wait_until
from tests.support.targets import Target
from tests.support.uptime import add
from vigil.supervisor import stop_processes

DETECTION_SECONDS = float(os.environ.get("FAILOVER_DETECTION_SECONDS", "1"))
"""Between the crash and the promotion: a failover manager takes a while to decide (Patroni:
up to its ttl, 30 s by default); meanwhile there is no writable member at all. Set
FAILOVER_DETECTION_SECONDS to measure a longer gap (0: promote at once)."""


def test_failover_under_load(
    pair: Pair, dsn: str, token: str, telegram: FakeTelegram, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = vigil_env(
        dsn,
        VIGIL_PORT=str(port),
        **telegram.env(),
        VIGIL_PROBER_TICK_SECONDS="0.2",
    )
    with (
        Target() as target,
        vigil_process("api", env, tmp_path / "api.log") as api,
        vigil_process("notifier", env, tmp_path / "notifier.log") as notifier,
        vigil_process("prober", env, tmp_path / "prober.log") as prober,
        psycopg.connect(pair.primary.dsn(), autocommit=True) as conn,
    ):
        processes = [api, notifier, prober]
        # Before: an alert delivered, a service checked and up.
        add(conn, "web", target.base + "/switch", interval=1, timeout=1)
        conn.execute("select vigil.ingest_metric('db-1', '/', 'disk', '95', now(), now())")
        wait_http(url + "/health", proc=api, log=tmp_path / "api.log")
        with Senders(url, token) as senders:
            assert telegram.wait_for(1) == ["Alert: db-1 - / Value: 95"]
            wait_until(
                lambda: one(pair.primary.dsn(), "select state from vigil.services") == "up",
                10,
                "the prober's first check",
            )
            wait_until(
                lambda: sum(o.acknowledged for o in senders.snapshot()) >= 300,
                15,
                "the senders to get going",
            )
            time.sleep(1.0)

            killed_at = time.monotonic()
            pair.kill_primary()
            time.sleep(DETECTION_SECONDS)
            pair.promote()
            promoted_at = time.monotonic()
            new_primary = pair.standby.dsn()

            # After the promotion: a heartbeat transition written on the new primary, and a
            # service that goes down (the prober records it and its message there).
            target.switch_ok = False
            one(new_primary, "select vigil.ingest_metric('db-1', '/', 'disk', '40', now(), now())")
            wait_until(
                lambda: senders.first_ack_after(promoted_at) is not None,
                60,
                "a 2xx from the new primary",
            )
            texts = telegram.wait_for(3, timeout=30)
            delivered_at = time.monotonic()
            time.sleep(max(0.0, 1.5 - (delivered_at - promoted_at)))  # senders keep going
            assert [p.poll() for p in processes] == [None, None, None], "a process died"
        assert sorted(texts[1:]) == [
            "Alert: web - down (HTTP 500)",
            "OK again: db-1 - / Value: 40",
        ]
        wait_until(
            lambda: (
                one(new_primary, "select count(*) from vigil.outbox where status = 'delivered'")
                == 3
            ),
            10,
            "the deliveries to be recorded",
        )
        assert [p.poll() for p in processes] == [None, None, None], "a process died"
        stop_processes(processes, grace=15)  # all at once: vigil_process then finds them gone

    logs = {role: (tmp_path / f"{role}.log").read_text() for role in ("api", "notifier", "prober")}
    check_api(senders.snapshot(), senders.bodies, logs["api"], killed_at)
    # The notifier lost its connections and came back on its own; the prober's pool replaces
    # broken connections itself (it may log nothing): its recovery is the service message
    # recorded and delivered after the promotion, checked above.
    assert "database error" in logs["notifier"]

    outcomes = senders.snapshot()
    with psycopg.connect(new_primary, autocommit=True) as conn:
        assert conn.execute("select pg_is_in_recovery()").fetchone() == (False,)
        assert missing_writes(conn, outcomes) == []  # no acknowledged write lost
    stored_heartbeats = int(
        str(one(new_primary, "select count(*) from vigil.metrics where host = %s", HOST))
    )
    stored_points = int(
        str(
            one(
                new_primary,
                "select count(*) from vigil.points p join vigil.series s on s.id = p.series_id "
                "where s.name = %s",
                SERIES,
            )
        )
    )
    # The new primary has no synchronous standby to wait for: writes go on there.
    first_ack = senders.first_ack_after(promoted_at)
    assert first_ack is not None
    acked = [o for o in outcomes if o.acknowledged]
    acked_heartbeats = sum(o.kind == "heartbeat" for o in acked)
    acked_points = sum(o.kind == "batch" for o in acked) * POINTS
    assert stored_heartbeats >= acked_heartbeats and stored_points >= acked_points
    assert sum(o.answered > first_ack for o in acked) > 50, "writes did not go on"
    statuses = Counter(o.status for o in outcomes)
    steady = [o for o in outcomes if o.answered < killed_at]
    record_figures(
        "failover_under_load",
        {
            "senders": senders.threads,
            "requests": len(outcomes),
            "acknowledged": len(acked),
            "acknowledged_heartbeats": acked_heartbeats,
            "acknowledged_points": acked_points,
            "lost_acknowledged": 0,
            "status_503": statuses.get(503, 0),
            "rps_before_kill": round(len(steady) / (killed_at - min(o.sent for o in outcomes))),
            "no_primary_seconds_before_promote": DETECTION_SECONDS,
            "kill_to_promoted_seconds": round(promoted_at - killed_at, 2),
            "first_2xx_after_promotion_seconds": round(first_ack - promoted_at, 2),
            "kill_to_first_2xx_seconds": round(first_ack - killed_at, 2),
            "promotion_to_notifier_and_prober_messages_delivered_seconds": round(
                delivered_at - promoted_at, 2
            ),
            "stored_not_acknowledged_heartbeats": stored_heartbeats - acked_heartbeats,
            "stored_not_acknowledged_points": stored_points - acked_points,
            "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
        },
    )


def check_api(
    outcomes: list[Outcome], bodies: dict[int | str, str], log: str, killed_at: float
) -> None:
    """Only 2xx and 503 (no other 5xx, no transport error: the API stayed up), and only
    2xx before the crash."""
    statuses = Counter(o.status for o in outcomes)
    unexpected = {
        s: n for s, n in statuses.items() if not (isinstance(s, int) and (s < 300 or s == 503))
    }
    assert not unexpected, f"{unexpected}: {bodies}\n{log[-3000:]}"
    before = [o for o in outcomes if o.answered < killed_at]
    assert before, "no request was answered before the crash"
    assert all(o.acknowledged for o in before), Counter(o.status for o in before)
    assert "Traceback" not in log
