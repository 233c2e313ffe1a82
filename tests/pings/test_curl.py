"""Pings sent by curl exactly as Healthchecks' docs write them, Uptime Kuma pushes, and
`vigil check`, against a running `vigil api` process on a real database."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from api.pings.formats.healthchecks import secret_hash
from tests.conftest import TEMPLATE, ApiServer, free_port, new_database, venv_bin
from tests.support.processes import vigil_env, vigil_process, wait_http
from vigil.cluster import Cluster

Conn = psycopg.Connection[tuple[object, ...]]
CURL = ["curl", "-fsS", "-m", "10", "--retry", "5", "-o", "/dev/null"]  # Healthchecks' line


@dataclass
class Vigil:
    url: str
    env: dict[str, str]
    conn: Conn

    def check(self, name: str, *options: str) -> str:
        """`vigil check add NAME ...`: the ping URL it prints as its last line."""
        out = self.cli("check", "add", name, *options)
        assert out.returncode == 0, out.stderr
        url = out.stdout.strip().splitlines()[-1]
        assert url.startswith(self.url + "/ping/")
        return url

    def add(self, name: str, period: str = "1 day", grace: str = "1 hour") -> str:
        """A check made in SQL, as `vigil check add` makes it (quicker than the CLI): its URL."""
        secret = str(uuid.uuid4())
        self.conn.execute(
            "select vigil.push_check_add(%s, %s, %s::interval, %s::interval)",
            (name, secret_hash(secret), period, grace),
        )
        return f"{self.url}/ping/{secret}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [venv_bin("vigil"), *args], env=self.env, capture_output=True, text=True, timeout=60
        )

    def texts(self) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("select text from vigil.outbox order by id")]


@pytest.fixture(scope="module")
def vigil(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vigil]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("pings") / "api.log"
    with new_database(pg_cluster, TEMPLATE) as dsn:
        env = vigil_env(dsn, VIGIL_PORT=str(port), VIGIL_PUBLIC_URL=url)
        with vigil_process("api", env, log), psycopg.connect(dsn, autocommit=True) as conn:
            wait_http(url + "/health")
            yield Vigil(url, env, conn)


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CURL, *args], capture_output=True, text=True, timeout=60)


def curl_reply(*args: str) -> subprocess.CompletedProcess[str]:
    """One curl call without retries (`curl -sS -m 10 ARGS`), for what the server answered."""
    return subprocess.run(
        ["curl", "-sS", "-m", "10", *args], capture_output=True, text=True, timeout=30
    )


def post_headers(url: str, data: str) -> subprocess.CompletedProcess[str]:
    """POSTs `data` (`@FILE`: a file's bytes) with curl -f; stdout holds the reply's headers."""
    return curl_reply("-f", "-D", "-", "-o", "/dev/null", "--data-binary", data, url)


def pings(conn: Conn, name: str) -> list[tuple[object, ...]]:
    return conn.execute(
        "select p.kind, p.exit_status, p.duration, p.method, length(p.body), p.response_ms "
        "from vigil.push_pings p join vigil.push_checks c on c.id = p.check_id "
        "where c.name = %s order by p.n",
        (name,),
    ).fetchall()


def test_start_then_success_records_the_duration(vigil: Vigil) -> None:
    url = vigil.check("backup", "--period", "1d", "--grace", "1h")
    assert curl(url + "/start").returncode == 0
    assert curl(url).returncode == 0
    rows = pings(vigil.conn, "backup")
    assert [r[0] for r in rows] == ["start", "success"]
    duration = rows[1][2]
    assert isinstance(duration, timedelta) and timedelta(0) < duration < timedelta(seconds=30)
    row = vigil.conn.execute(
        "select last_duration, due_at - last_ping_at from vigil.push_checks where name = 'backup'"
    ).fetchone()
    assert row == (duration, timedelta(days=1, hours=1))


def test_exit_status_1_alerts_and_0_recovers(vigil: Vigil) -> None:
    url = vigil.add("dump")
    assert curl(url + "/1").returncode == 0
    assert "Alert: dump - failed (exit status 1)" in vigil.texts()
    assert curl("-X", "POST", "--data-binary", "all good", url + "/0").returncode == 0
    assert vigil.texts()[-1] == "OK again: dump"
    assert [r[:2] for r in pings(vigil.conn, "dump")] == [("fail", 1), ("success", 0)]


def test_fail_log_head_and_run_ids(vigil: Vigil) -> None:
    url = vigil.add("sync")
    rid = str(uuid.uuid4())
    assert curl(f"{url}/start?rid={rid}").returncode == 0
    assert curl("-I", url + "/log").returncode == 0  # HEAD
    assert curl(f"{url}/fail?rid={rid}").returncode == 0
    rows = pings(vigil.conn, "sync")
    assert [(r[0], r[3]) for r in rows] == [("start", "GET"), ("log", "HEAD"), ("fail", "GET")]
    assert isinstance(rows[2][2], timedelta)  # the failed run's duration, paired by rid
    assert "Alert: sync - failed" in vigil.texts()
    bad = curl_reply(f"{url}?rid=nope", "-w", " %{http_code}")
    assert bad.stdout == "invalid uuid format 400"


def test_body_is_kept_up_to_the_announced_limit(vigil: Vigil, tmp_path: Path) -> None:
    url = vigil.add("logs")
    body = tmp_path / "out.txt"
    body.write_bytes(b"line of job output\n" * 700)  # 13,300 bytes
    out = post_headers(url, f"@{body}")
    assert out.returncode == 0
    assert "ping-body-limit: 10000" in out.stdout.lower()
    assert pings(vigil.conn, "logs")[0][4] == 10_000
    stored = vigil.conn.execute(
        "select body from vigil.push_pings p join vigil.push_checks c on c.id = p.check_id "
        "where c.name = 'logs'"
    ).fetchone()
    assert stored is not None and str(stored[0]).startswith("line of job output\n")


def test_unknown_secret_is_404_not_found(vigil: Vigil) -> None:
    url = f"{vigil.url}/ping/{uuid.uuid4()}"
    assert curl(url).returncode == 22  # -f: curl fails (and does not retry a 404)
    out = curl_reply("-w", " %{http_code}", url)
    assert out.stdout == "not found 404"


def test_slug_urls_with_a_ping_key_and_create(vigil: Vigil) -> None:
    out = vigil.cli("check", "key")
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip().splitlines()[-1]
    slug_url = f"{vigil.url}/ping/{key}/web-01"
    assert curl(slug_url).returncode == 22  # no such check, and no ?create=1
    created = curl_reply("-f", "-w", " %{http_code}", slug_url + "/start?create=1")
    assert created.stdout == "Created 201"
    assert curl(slug_url + "?create=1").returncode == 0  # exists now: 200 OK
    assert [r[0] for r in pings(vigil.conn, "web-01")] == ["start", "success"]
    assert curl(f"{vigil.url}/ping/wrong-key/web-01?create=1").returncode == 22
    listed = json.loads(vigil.cli("check", "list", "--json").stdout)
    web = next(c for c in listed if c["name"] == "web-01")
    assert (web["status"], web["period"], web["grace"]) == ("up", "1d", "1h")


def test_uptime_kuma_push_up_and_down(vigil: Vigil) -> None:
    secret = vigil.add("kuma", "1 minute", "30 seconds").rsplit("/", 1)[1]
    push = f"{vigil.url}/api/push/{secret}"
    down = curl_reply("-f", f"{push}?status=down&msg=disk%20full&ping=")
    assert json.loads(down.stdout) == {"ok": True}
    assert "Alert: kuma - down: disk full" in vigil.texts()
    up = curl_reply("-f", "-X", "POST", f"{push}?status=up&msg=OK&ping=42.5")
    assert json.loads(up.stdout) == {"ok": True}
    assert vigil.texts()[-1] == "OK again: kuma"
    assert [(r[0], r[5]) for r in pings(vigil.conn, "kuma")] == [("fail", None), ("success", 42.5)]
    unknown = curl_reply(f"{vigil.url}/api/push/nope?status=up")
    assert json.loads(unknown.stdout) == {"ok": False, "msg": "Monitor not found or not active."}


def test_cli_add_list_delete(vigil: Vigil) -> None:
    url = vigil.check("nightly", "--cron", "0 3 * * *", "--tz", "Europe/Berlin", "--grace", "20m")
    listed = json.loads(vigil.cli("check", "list", "--json").stdout)
    nightly = next(c for c in listed if c["name"] == "nightly")
    assert (nightly["status"], nightly["cron"], nightly["tz"]) == (
        "new",
        "0 3 * * *",
        "Europe/Berlin",
    )
    assert "nightly" in vigil.cli("check", "list").stdout
    assert curl(url).returncode == 0
    due = vigil.conn.execute(
        "select due_at at time zone 'Europe/Berlin', due_at - last_ping_at from vigil.push_checks "
        "where name = 'nightly'"
    ).fetchone()
    assert due is not None and isinstance(due[0], datetime) and isinstance(due[1], timedelta)
    assert (due[0].hour, due[0].minute) == (3, 20)  # the next 03:00 in Berlin + grace
    assert timedelta(minutes=20) < due[1] <= timedelta(days=1, minutes=20)
    # A cron expression written by hand that cannot be evaluated: the period applies.
    vigil.conn.execute("update vigil.push_checks set cron = '61 * * * *' where name = 'nightly'")
    assert curl(url).returncode == 0
    due = vigil.conn.execute(
        "select due_at - last_ping_at from vigil.push_checks where name = 'nightly'"
    ).fetchone()
    assert due == (timedelta(days=1, minutes=20),)
    again = vigil.cli("check", "add", "nightly")
    assert again.returncode == 1 and 'a check named "nightly" exists' in again.stderr
    bad = vigil.cli("check", "add", "x", "--cron", "0 3 * *")
    assert bad.returncode == 2 and "5 fields" in bad.stderr
    assert vigil.cli("check", "delete", "nightly").returncode == 0
    assert vigil.cli("check", "delete", "nightly").returncode == 1


@pytest.fixture
def api_env() -> dict[str, str]:
    return {"VIGIL_PING_BODY_LIMIT": "100"}


def test_body_limit_is_a_setting(api: ApiServer, conn: Conn) -> None:
    secret = str(uuid.uuid4())
    conn.execute("select vigil.push_check_add('tiny', %s)", (secret_hash(secret),))
    out = post_headers(f"{api.url}/ping/{secret}/log", "x" * 300)
    assert out.returncode == 0 and "ping-body-limit: 100\n" in out.stdout.lower()
    assert pings(conn, "tiny") == [("log", None, None, "POST", 100, None)]
