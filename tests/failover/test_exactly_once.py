"""Several APIs, notifiers and probers on one database: every outbox message is delivered
once. Claims are leases taken with FOR UPDATE SKIP LOCKED (outbox and due services), so
processes share the work without ever taking the same message or check twice."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx
import psycopg

from tests.conftest import free_port
from tests.failover.conftest import one, record_figures
from tests.support.fake_telegram import FakeTelegram
from tests.support.processes import vigil_env, vigil_process, wait_http
from tests.support.targets import Target
from tests.support.uptime import add
from vigil.supervisor import stop_processes

APIS, NOTIFIERS, PROBERS = 2, 3, 2
REPORTS, SERVICES = 300, 20


def test_every_message_is_delivered_exactly_once(
    dsn: str, token: str, telegram: FakeTelegram, tmp_path: Path
) -> None:
    telegram.delay = 0.01  # a send takes a while, so the notifiers overlap
    env = vigil_env(
        dsn,
        **telegram.env(),
        VIGIL_PROBER_TICK_SECONDS="0.2",
    )
    ports = [free_port() for _ in range(APIS)]
    with ExitStack() as stack:
        target = stack.enter_context(Target())
        processes = [
            stack.enter_context(
                vigil_process("api", {**env, "VIGIL_PORT": str(port)}, tmp_path / f"api{i}.log")
            )
            for i, port in enumerate(ports)
        ]
        processes += [
            stack.enter_context(vigil_process(role, env, tmp_path / f"{role}{i}.log"))
            for role, count in (("notifier", NOTIFIERS), ("prober", PROBERS))
            for i in range(count)
        ]
        for port in ports:
            wait_http(f"http://127.0.0.1:{port}/health", timeout=60)
        started = time.monotonic()

        with psycopg.connect(dsn, autocommit=True) as conn:
            for i in range(SERVICES):
                add(conn, f"svc-{i}", target.base + "/fail", interval=3600, timeout=10)

        def report(i: int) -> int:
            url = f"http://127.0.0.1:{ports[i % APIS]}/t/{token}/metric"
            body = {"host": f"host-{i % 10}", "name": f"disk-{i}", "type": "disk", "value": "95"}
            return client.post(url, json=body).status_code

        # One client (its connections kept alive) for every thread: a new httpx.Client per
        # request costs more CPU than the request itself.
        client = stack.enter_context(httpx.Client(timeout=15))
        with ThreadPoolExecutor(8) as senders:
            assert set(senders.map(report, range(REPORTS))) == {200}

        expected = [f"Alert: host-{i % 10} - disk-{i} Value: 95" for i in range(REPORTS)]
        expected += [f"Alert: svc-{i} - down (HTTP 500)" for i in range(SERVICES)]
        telegram.wait_for(len(expected), timeout=30)
        all_delivered = time.monotonic()
        # A poll period more: a message two notifiers had both claimed would be sent now
        # (and have attempts = 2 below). Redelivery after a lease needs a notifier killed
        # mid-send, which this test does not do.
        time.sleep(1.2)
        assert all(p.poll() is None for p in processes)
        stop_processes(processes, grace=15)  # all at once: vigil_process then finds them gone

    texts = Counter(telegram.texts())
    assert [t for t, n in texts.items() if n > 1] == []  # no duplicate
    assert sorted(texts) == sorted(expected)  # none lost, nothing else
    assert len(telegram.received) == len(expected)  # not even a failed second attempt

    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "select status, attempts, count(*) from vigil.outbox group by 1, 2"
        ).fetchall()
        assert rows == [("delivered", 1, len(expected))]
        workers = Counter(
            str(w).split(":")[1] for (w,) in conn.execute("select claimed_by from vigil.outbox")
        )
        # One check per service although two probers claim: none was checked twice.
        assert one(dsn, "select count(*) from vigil.checks") == SERVICES
    assert len(workers) >= 2, f"one notifier did all the work: {workers}"
    record_figures(
        "exactly_once",
        {
            "apis": APIS,
            "notifiers": NOTIFIERS,
            "probers": PROBERS,
            "messages": len(expected),
            "delivered": sum(texts.values()),
            "duplicates": 0,
            "per_notifier": sorted(workers.values(), reverse=True),
            "seconds_to_deliver_all": round(all_delivered - started, 2),
        },
    )
