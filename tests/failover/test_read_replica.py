"""Operator pages read from the standby (VIGIL_READ_DATABASE_URL) while writes go to the
primary (DATABASE_URL).

The observable: replay is paused on the standby, a report is then written through the
API (acknowledged: synchronous_commit=on waits for the standby's flush, not its replay).
The dashboard does not show it while replay is paused, and does once replay resumes: its
reads come from the standby. The API's connections to the standby are in the standby's
pg_stat_activity as well.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.failover.conftest import DBNAME, Pair, one
from tests.support.login import login_client
from tests.support.processes import vigil_env, vigil_process, wait_http
from vigil.cluster import multi_host_dsn
from vigil.settings import Settings

READ_URL_SUPPORTED = "read_database_url" in {f.name for f in fields(Settings)}

CLIENTS = (
    "select count(*) from pg_stat_activity "
    "where datname = %s and backend_type = 'client backend' and pid <> pg_backend_pid()"
)


@pytest.mark.xfail(
    not READ_URL_SUPPORTED,
    reason="pending: VIGIL_READ_DATABASE_URL (Settings.read_database_url) is not in "
    "vigil/settings.py yet, so page reads still go to the primary",
    strict=True,
)
def test_dashboard_reads_come_from_the_standby(
    pair: Pair, dsn: str, token: str, tmp_path: Path
) -> None:
    # Pages read from the standby while it is up, from the primary otherwise.
    read_url = multi_host_dsn([pair.standby, pair.primary], DBNAME, "prefer-standby")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = vigil_env(dsn, VIGIL_PORT=str(port), VIGIL_READ_DATABASE_URL=read_url)
    with vigil_process("api", env, tmp_path / "api.log") as api:
        wait_http(url + "/health")

        def report(name: str) -> None:
            body = {"host": "read-1", "name": name, "type": "disk", "value": "10"}
            r = httpx.post(f"{url}/t/{token}/metric", json=body, timeout=10)
            assert (r.status_code, r.text) == (200, "ok")

        report("disk-before-pause")
        # The login link is written with remote_apply: visible on the standby before the
        # API reads it (page reads may come from there).
        applied = dsn + "&options=-c%20synchronous_commit%3Dremote_apply"
        with login_client(url, applied, "ann@example.com") as client:
            pair.wait_replayed()  # the session and the first report are on the standby
            assert client.get("/").status_code == 200
            assert int(str(one(pair.standby.dsn(), CLIENTS, DBNAME))) >= 1

            one(pair.standby.dsn(), "select pg_wal_replay_pause()")
            try:
                report("disk-after-pause")  # acknowledged: flushed on the standby
                assert (
                    one(
                        pair.primary.dsn(),
                        "select count(*) from vigil.metrics where host = 'read-1'",
                    )
                    == 2
                )
                page = client.get("/")
                assert page.status_code == 200
                assert "disk-before-pause" in page.text
                assert "disk-after-pause" not in page.text, "the page was read from the primary"
            finally:
                one(pair.standby.dsn(), "select pg_wal_replay_resume()")
            pair.wait_replayed()
            page = client.get("/")
            assert page.status_code == 200 and "disk-after-pause" in page.text
        assert api.poll() is None
