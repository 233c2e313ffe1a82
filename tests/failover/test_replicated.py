"""Vigil on a primary with a synchronous hot standby: migrations, ingest and reads through
a real API process whose DATABASE_URL lists both servers."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from tests.conftest import free_port
from tests.failover.conftest import STANDBY_NAME, Pair, one
from tests.support.processes import vigil_env, vigil_process, wait_http

CLIENTS = (
    "select count(*) from pg_stat_activity "
    "where datname = 'vigil' and backend_type = 'client backend' and pid <> pg_backend_pid()"
)


def test_vigil_on_a_primary_with_a_hot_standby(
    pair: Pair, dsn: str, token: str, tmp_path: Path
) -> None:
    # `dsn` migrated the database through the multi-host URL (query-parameter spelling):
    # Alembic reached the primary, and the schema is on the standby, which stays read-only.
    pair.wait_replayed()
    version = one(pair.primary.dsn(), "select version_num from alembic_version")
    assert version is not None
    assert one(pair.standby.dsn(), "select version_num from alembic_version") == version
    assert one(pair.standby.dsn(), "select pg_is_in_recovery()") is True
    assert one(pair.primary.dsn(), "select pg_is_in_recovery()") is False
    assert pair.sync_state() == "sync"
    assert one(pair.primary.dsn(), "show synchronous_commit") == "on"
    assert one(pair.primary.dsn(), "show synchronous_standby_names") == STANDBY_NAME

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The API gets the other spelling of the list: postgresql://vigil@h:p1,h:p2/vigil?...
    assert dsn == pair.url and "," in dsn.split("@")[1].split("/")[0]
    with vigil_process("api", vigil_env(dsn, VIGIL_PORT=str(port)), tmp_path / "api.log") as api:
        wait_http(url + "/health")
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=auth, timeout=10) as client:
            for i in range(3):
                r = client.post(
                    "/metric",
                    content=f'{{"host":"web-1","name":"disk-{i}","type":"disk",'
                    f'"value":"{40 + i}"}}',
                )
                assert (r.status_code, r.text) == (200, "ok")
            now = datetime.now(UTC)
            points = [  # two times: points of one series at one time are one point
                {
                    "name": "replicated",
                    "value": v,
                    "labels": {"host": "web-1"},
                    "timestamp": (now - timedelta(milliseconds=v)).isoformat(),
                }
                for v in (1, 3)
            ]
            r = client.post("/v1/metrics/batch", json=points)
            assert r.status_code == 200 and r.json()["accepted"] == 2

            # Reads through the API: the series API and the health endpoint.
            assert "replicated" in client.get("/v1/metrics").json()
            today = datetime.now(UTC).date().isoformat()
            r = client.get(f"/v1/metrics/replicated/day/{today}/{today}")
            assert r.status_code == 200
            assert [row["avg"] for row in r.json()["data"]] == [2.0]
            health = client.get("/health")
            assert health.status_code == 200 and health.json()["mode"] == "portable"

        # Every connection of the API went to the writable member; the standby has them all
        # (a commit was acknowledged only after the standby flushed it).
        assert int(str(one(pair.primary.dsn(), CLIENTS))) >= 1
        assert one(pair.standby.dsn(), CLIENTS) == 0
        pair.wait_replayed()
        assert one(pair.standby.dsn(), "select count(*) from vigil.metrics") == 3
        assert one(pair.standby.dsn(), "select count(*) from vigil.points") == 2
        assert api.poll() is None

    # A member that accepts TCP connections but never answers (a hung host) costs
    # connect_timeout (psycopg's default: 130 s), then the next member is tried.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        hung = silent.getsockname()[1]
        members = f"127.0.0.1:{hung},127.0.0.1:{pair.primary.port},127.0.0.1:{pair.standby.port}"
        started = time.monotonic()
        with psycopg.connect(
            f"postgresql://vigil@{members}/vigil?target_session_attrs=read-write&connect_timeout=2"
        ) as conn:
            assert conn.info.port == pair.primary.port
        assert 1.5 < time.monotonic() - started < 10
