"""End to end with real processes: HTTP ingest -> SQL detection -> outbox -> notifier
-> the fake Telegram; and a notifier killed after claiming."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from tests.conftest import free_port
from tests.support.fake_telegram import FakeTelegram
from tests.support.processes import vigil_env, vigil_process, wait_http, wait_until
from tests.support.sql import T0, ingest
from vigil import tokens


def test_ingest_to_telegram(dsn: str, telegram: FakeTelegram, tmp_path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        token = tokens.create(conn, "e2e")
    port = free_port()
    env = vigil_env(
        dsn,
        VIGIL_PORT=str(port),
        **telegram.env(),
    )
    url = f"http://127.0.0.1:{port}"
    with (
        vigil_process("api", env, tmp_path / "api.log"),
        vigil_process("notifier", env, tmp_path / "notifier.log"),
    ):
        wait_http(url + "/health")

        def post(body: str) -> None:
            r = httpx.post(f"{url}/t/{token}/metric", content=body.encode())
            assert (r.status_code, r.text) == (200, "ok")

        # A one-minute ping sent 58 s ago: its deadline passes in about 2 s.
        sent = (datetime.now(UTC) - timedelta(seconds=58)).isoformat()
        post(
            f'{{"host":"web-1","name":"cron","type":"ping","timestamp":"{sent}",'
            f'"value":"1","state":"ok","Id":0}}'
        )
        assert telegram.texts() == []
        assert telegram.wait_for(1) == ["Alert: web-1 - cron Value: 1"]
        post('{"host":"web-1","name":"cron","type":"ping","value":"1"}')
        assert telegram.wait_for(2)[1] == "OK again: web-1 - cron Value: 1"
        post('{"host":"web-1","name":"/","type":"disk","value":"91"}')
        post('{"host":"web-1","name":"/","type":"disk","value":"93"}')
        post('{"host":"web-1","name":"/","type":"disk","value":"90"}')
        assert telegram.wait_for(4)[2:] == [
            "Alert: web-1 - / Value: 91",
            "OK again: web-1 - / Value: 90",
        ]
    assert len(telegram.delivered) == 4
    logs = (tmp_path / "api.log").read_text() + (tmp_path / "notifier.log").read_text()
    assert token not in logs and telegram.token not in logs


def test_notifier_killed_after_claiming(dsn: str, telegram: FakeTelegram, tmp_path: Path) -> None:
    env = vigil_env(
        dsn,
        **telegram.env(),
        VIGIL_LEASE_SECONDS="2",
    )
    telegram.delay = 30  # the first notifier hangs in the HTTP call, after its claim
    with psycopg.connect(dsn, autocommit=True) as conn:
        ingest(conn, "h", "d", "disk", "95", T0)
        with vigil_process("notifier", env, tmp_path / "n1.log") as first:
            wait_until(lambda: len(telegram.received) == 1, what="the first send")
            claimed = conn.execute("select claimed_by, attempts from vigil.outbox").fetchone()
            assert claimed is not None and claimed[1] == 1
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
        telegram.delay = 0
        with vigil_process("notifier", env, tmp_path / "n2.log") as second:
            wait_until(
                lambda: (
                    conn.execute("select status from vigil.outbox").fetchone() == ("delivered",)
                ),
                what="redelivery",
            )
            row = conn.execute(
                "select claimed_by, attempts, delivered_at - created_at from vigil.outbox"
            ).fetchone()
            assert row is not None
            assert f":{second.pid}:" in str(row[0])
            assert row[1] == 2
    assert "Alert: h - d Value: 95" in telegram.texts()


def test_notifier_without_telegram_marks_not_configured(dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        ingest(conn, "h", "d", "disk", "95", T0)
        with vigil_process("notifier", vigil_env(dsn), tmp_path / "n.log"):
            wait_until(
                lambda: (
                    conn.execute("select status from vigil.outbox").fetchone() == ("unconfigured",)
                ),
                what="unconfigured",
            )
    assert "Telegram not configured" in (tmp_path / "n.log").read_text()


def test_slow_maintenance_job_does_not_delay_alerts(dsn: str, tmp_path: Path) -> None:
    """Portable mode: a long job (think index build) runs on the maintenance connection
    while the alert loop still detects a passed deadline on time."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "create function public.slow_job(p_now timestamptz, p_config jsonb) returns integer "
            "language sql as $$ select 0 from pg_sleep(8) $$"
        )
        conn.execute(
            "insert into vigil.portable_jobs (job, call, schedule_interval) "
            "values ('slow', 'public.slow_job', interval '1 hour')"
        )
        with vigil_process("notifier", vigil_env(dsn), tmp_path / "n.log"):
            wait_until(
                lambda: (
                    conn.execute(
                        "select count(*) from pg_stat_activity where wait_event = 'PgSleep'"
                    ).fetchone()
                    == (1,)
                ),
                what="the slow job to start",
            )
            due = datetime.now(UTC) + timedelta(seconds=1)
            ingest(
                conn, "h", "cron", "ping", "1", due - timedelta(minutes=1), now=datetime.now(UTC)
            )
            wait_until(
                lambda: conn.execute("select count(*) from vigil.outbox").fetchone() == (1,),
                timeout=4,
                what="the alert while the slow job runs",
            )
            still_running = conn.execute(
                "select count(*) from pg_stat_activity where wait_event = 'PgSleep'"
            ).fetchone()
            assert still_running == (1,)


def test_slow_telegram_does_not_delay_detection(
    dsn: str, telegram: FakeTelegram, tmp_path: Path
) -> None:
    """Delivery and detection are separate loops: while a send hangs, a passed deadline
    is still detected on time (the message waits for delivery, the state does not)."""
    env = vigil_env(
        dsn,
        **telegram.env(),
        VIGIL_TELEGRAM_TIMEOUT="20",
    )
    telegram.delay = 8
    with psycopg.connect(dsn, autocommit=True) as conn:
        ingest(conn, "h", "d", "disk", "95", T0)
        with vigil_process("notifier", env, tmp_path / "n.log"):
            wait_until(lambda: len(telegram.received) == 1, what="the first (slow) send")
            due = datetime.now(UTC) + timedelta(seconds=1)
            ingest(
                conn, "h", "cron", "ping", "1", due - timedelta(minutes=1), now=datetime.now(UTC)
            )
            wait_until(
                lambda: (
                    conn.execute("select state from vigil.metrics where name = 'cron'").fetchone()
                    == ("alert",)
                ),
                timeout=4,
                what="detection while Telegram hangs",
            )
            assert len(telegram.delivered) == 0  # the first send is still hanging
