"""Status pages over HTTP without a login, from real states: items, 90 daily bars, incidents,
no internal details unless chosen; `vigil status-page add|list|delete`."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import httpx
import psycopg
import pytest

from tests.conftest import ApiServer
from tests.public.scenario import API_URL, DB_URL, HOST, REASON, Scenario, seed
from vigil.cli.main import main

Conn = psycopg.Connection[tuple[object, ...]]
SECRETS = (HOST, API_URL, DB_URL, "api.internal.example", "10.0.0.5", REASON)


@pytest.fixture
def world(conn: Conn) -> Scenario:
    return seed(conn)


@pytest.fixture
def cli_env(api: ApiServer, dsn: str, monkeypatch: pytest.MonkeyPatch) -> ApiServer:
    monkeypatch.setenv("DATABASE_URL", dsn)
    monkeypatch.setenv("VIGIL_PUBLIC_URL", api.url)
    return api


def add_page(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["status-page", "add", *args]) == 0, capsys.readouterr().err
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_public_page_shows_states_bars_incidents_and_no_details(
    cli_env: ApiServer, world: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    api = cli_env
    url = add_page(
        capsys, "acme", "--title", "Acme <Status>", "--service", "api", "--service", "db",
        "--heartbeat", f"{HOST}/backup",
    )  # fmt: skip
    assert url == f"{api.url}/status/acme"
    r = httpx.get(url)  # no cookie, no token
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=60"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    html = r.text
    assert "<h1>Acme &lt;Status&gt;</h1>" in html
    assert "Some systems are down" in html
    labels = re.findall(r"<h2>([^<]*)</h2>\s*<span class=\"state state-(\w+)\">", html)
    assert labels == [("api", "up"), ("db", "down"), ("backup", "late")]
    assert html.count('class="bar bar-') == 3 * 90
    # api: the day of its hour down is 23/24 = 95.83 % (or split over two UTC days)
    assert "98.61%" in html  # 7 d and 30 d of api
    assert 'class="bar bar-major"' in html
    incidents = re.findall(
        r'<li>\s*<span class="state state-(\w+)">\w+</span>\s*<strong>(\w+)', html
    )
    assert sorted(incidents) == [("down", "api"), ("down", "db"), ("late", "backup")]
    assert "1h 0m" in html  # api's downtime, with start and end
    assert html.count("ongoing") == 2  # db and the heartbeat
    for secret in SECRETS:
        assert secret not in html
    # chosen details: URLs and hosts and reasons, only on a page that asks for them
    detailed = add_page(
        capsys, "internal", "--title", "Ops", "--service", "db", "--heartbeat",
        f"{HOST}/backup", "--show-details",
    )  # fmt: skip
    html = httpx.get(detailed).text
    assert DB_URL in html and HOST in html and REASON in html
    assert "api" not in re.findall(r"<h2>([^<]*)</h2>", html)
    assert main(["status-page", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"{api.url}/status/acme  Acme <Status>: api, db, backup" in listing
    assert main(["status-page", "delete", "acme"]) == 0
    assert httpx.get(url).status_code == 404
    assert main(["status-page", "delete", "acme"]) == 1


def test_unknown_slugs_and_bad_input(
    cli_env: ApiServer, world: Scenario, capsys: pytest.CaptureFixture[str]
) -> None:
    r = httpx.get(cli_env.url + "/status/nope")
    assert r.status_code == 404
    assert "no such status page" in r.text
    assert httpx.get(cli_env.url + "/status/..%2F..").status_code == 404
    cases = [
        (["Bad Slug", "--title", "T", "--service", "api"], 'slug "Bad Slug" is not valid'),
        (["s", "--title", "T"], "needs at least one service or heartbeat"),
        (["s", "--title", "T", "--service", "nope"], 'no service named "nope"'),
        (["s", "--title", "T", "--heartbeat", "nope"], 'no heartbeat "nope"'),
    ]
    for args, message in cases:
        assert main(["status-page", "add", *args]) == 1
        assert message in capsys.readouterr().err
    add_page(capsys, "s", "--title", "T", "--service", "api")
    assert main(["status-page", "add", "s", "--title", "T", "--service", "api"]) == 1
    assert "exists already" in capsys.readouterr().err
    # nothing half-made: the refused pages do not exist
    assert httpx.get(cli_env.url + "/status/bad-slug").status_code == 404


def overlap(a: datetime, b: datetime, c: datetime, d: datetime) -> float:
    return max(0.0, (min(b, d) - max(a, c)).total_seconds())


def test_daily_bars_follow_the_events(conn: Conn, world: Scenario) -> None:
    """Each UTC day's bar is its own uptime: api was known from three days ago and down for
    one hour two days ago; every other day is unknown."""
    conn.execute("select vigil.status_page_add('p', 'P', array['api', 'db'])")
    rows = conn.execute(
        "select item, day, uptime from vigil.status_page_days('p', 90) order by item, day"
    ).fetchall()
    api_days = [(day, up) for item, day, up in rows if item == 1]
    assert len(api_days) == 90
    assert api_days[-1][0] == world.now.date()
    start, now = world.now - timedelta(days=3), world.now
    down = (world.now - timedelta(days=2), world.now - timedelta(days=2, hours=-1))
    for day, up in api_days:
        assert isinstance(day, date)
        d0 = datetime(day.year, day.month, day.day, tzinfo=UTC)
        known = overlap(d0, d0 + timedelta(days=1), start, now)
        if known < 60:  # nothing known, or the first seconds of today
            assert up is None or known > 0, day
            continue
        lost = overlap(d0, d0 + timedelta(days=1), *down)
        assert up == pytest.approx(100 * (known - lost) / known, abs=0.05), day
    assert any(up is not None and float(str(up)) < 99 for _, up in api_days)
