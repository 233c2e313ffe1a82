"""Badges over HTTP from real states: SVG and Shields.io endpoint JSON, 404 for unknown
keys, brief caching, no internal details; the `vigil badge` commands."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import httpx
import jsonschema_rs
import psycopg
import pytest

from api.public.badge import Badge, percent, state_badge, svg, text_width, uptime_badge
from tests.conftest import ApiServer
from tests.public.scenario import API_URL, DB_URL, HOST, REASON, Scenario, seed
from vigil.cli.main import main

Conn = psycopg.Connection[tuple[object, ...]]

# The Shields.io endpoint badge schema (https://shields.io/badges/endpoint-badge).
SHIELDS_SCHEMA = {
    "type": "object",
    "required": ["schemaVersion", "label", "message"],
    "additionalProperties": False,
    "properties": {
        "schemaVersion": {"const": 1},
        "label": {"type": "string"},
        "message": {"type": "string", "minLength": 1},
        "color": {"type": "string"},
        "labelColor": {"type": "string"},
        "isError": {"type": "boolean"},
        "namedLogo": {"type": "string"},
        "logoSvg": {"type": "string"},
        "logoColor": {"type": "string"},
        "logoSize": {"type": "string"},
        "style": {"type": "string"},
        "cacheSeconds": {"type": "integer", "minimum": 0},
    },
}
SHIELDS = jsonschema_rs.validator_for(SHIELDS_SCHEMA)
SVG_NS = "{http://www.w3.org/2000/svg}"


def parse(text: str) -> ET.Element:
    """Parses a badge this server drew (well-formed or an error)."""
    return ET.fromstring(text)  # noqa: S314 (Vigil's own output, no entities)


def key_of(conn: Conn, service: str | None, heartbeat: str | None = None) -> str:
    row = conn.execute("select vigil.badge_key(%s, %s)", (service, heartbeat)).fetchone()
    assert row is not None
    return str(row[0])


def shields(api: ApiServer, key: str, kind: str) -> dict[str, Any]:
    r = httpx.get(f"{api.url}/badge/{key}/{kind}.json")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "public, max-age=60"
    body: dict[str, Any] = r.json()
    SHIELDS.validate(body)
    return body


def near(message: str, expected: float) -> bool:
    """A badge's percent within 0.05 of the expected value (seconds pass during the test)."""
    assert re.fullmatch(r"\d{1,3}\.\d\d%", message), message
    return abs(float(message[:-1]) - expected) < 0.05


@pytest.fixture
def world(conn: Conn) -> Scenario:
    return seed(conn)


def test_badge_values_from_real_states(api: ApiServer, conn: Conn, world: Scenario) -> None:
    api_key, db_key = key_of(conn, "api"), key_of(conn, "db")
    beat_key = key_of(conn, None, f"{HOST}/backup")
    assert re.fullmatch(r"[0-9a-f]{32}", api_key)
    assert len({api_key, db_key, beat_key}) == 3
    assert key_of(conn, "api") == api_key  # one badge per service, asked twice
    state = {"schemaVersion": 1, "label": "api", "message": "up", "color": "brightgreen"}
    assert shields(api, api_key, "state") == state
    assert shields(api, db_key, "state")["message"] == "down"
    assert shields(api, db_key, "state")["color"] == "red"
    # one hour down in the three days known: 71/72 = 98.61 %, over 7 d and 30 d
    assert shields(api, api_key, "uptime-7d") == {
        "schemaVersion": 1, "label": "uptime 7d", "message": "98.61%", "color": "yellow",
    }  # fmt: skip
    assert shields(api, api_key, "uptime-30d")["message"] == "98.61%"
    assert shields(api, api_key, "uptime-24h")["message"] == "100%"
    assert shields(api, api_key, "uptime") == shields(api, api_key, "uptime-24h")
    # down for the last 30 of the 60 minutes known (the clock moves on while the test runs)
    assert near(shields(api, db_key, "uptime-24h")["message"], 50)
    # the heartbeat: late since the detector ran, ok for the known time before it
    late = shields(api, beat_key, "state")
    assert late == {"schemaVersion": 1, "label": "backup", "message": "late", "color": "orange"}
    ok_secs = (world.late_at - (world.now - timedelta(hours=5))).total_seconds()
    assert near(shields(api, beat_key, "uptime-24h")["message"], 100 * ok_secs / (5 * 3600))
    # the SVG shows the same words, in the state's colour, well-formed and cached briefly
    r = httpx.get(f"{api.url}/badge/{db_key}/state.svg")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert r.headers["cache-control"] == "public, max-age=60"
    root = parse(r.text)
    assert root.findtext(f"{SVG_NS}title") == "db: down"
    assert "#e05d44" in r.text
    for body in (r.text, httpx.get(f"{api.url}/badge/{beat_key}/state.svg").text):
        for secret in (HOST, API_URL, DB_URL, "10.0.0.5", REASON):
            assert secret not in body
    # a paused service (not checked) says so, in grey
    conn.execute("update vigil.services set enabled = false where name = 'api'")
    assert shields(api, api_key, "state")["message"] == "paused"
    assert shields(api, api_key, "state")["color"] == "lightgrey"


def test_unknown_deleted_and_bad_kinds_are_404(api: ApiServer, conn: Conn, world: Scenario) -> None:
    key = key_of(conn, "api")
    for path in (
        f"/badge/{'0' * 32}/state.svg",
        f"/badge/{'0' * 32}/state.json",
        f"/badge/{key}/uptime-1y.svg",
        f"/badge/{key}/state.png",
    ):
        r = httpx.get(api.url + path)
        assert r.status_code == 404, path
        assert "no such" in r.text
    assert "state.svg" in httpx.get(f"{api.url}/badge/{key}/x.svg").text  # says what exists
    assert httpx.head(f"{api.url}/badge/{key}/state.svg").status_code == 200
    conn.execute("select vigil.badge_delete(%s)", (key,))
    assert httpx.get(f"{api.url}/badge/{key}/state.svg").status_code == 404
    # removing the service removes its badge
    db_key = key_of(conn, "db")
    conn.execute("select vigil.service_remove('db')")
    assert httpx.get(f"{api.url}/badge/{db_key}/state.json").status_code == 404


def test_unknown_targets_are_refused(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match='no service named "nope"'):
        key_of(conn, "nope")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match='no heartbeat "h/x"'):
        key_of(conn, None, "h/x")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="give a service or"):
        key_of(conn, "a", "h/x")


@pytest.mark.nodb
def test_svg_escapes_text_and_grows_with_it() -> None:
    hostile = Badge('<b>"x" & y</b>', "up", "brightgreen")
    text = svg(hostile)
    root = parse(text)  # well-formed: nothing unescaped
    assert root.findtext(f"{SVG_NS}title") == '<b>"x" & y</b>: up'
    assert "<b>" not in text
    short, long = svg(state_badge("a", "up")), svg(state_badge("a much longer name", "up"))
    width = int(parse(short).attrib["width"])
    assert int(parse(long).attrib["width"]) > width + 80
    assert width == round(text_width("a") + 10) + round(text_width("up") + 10)
    assert text_width("WWW") > text_width("iii")
    assert uptime_badge("7d", None).message == "no data"
    assert [percent(v) for v in (100, 99.999, 99.95, 50)] == ["100%", "99.99%", "99.95%", "50.00%"]
    assert [uptime_badge("7d", v).color for v in (99.95, 99.5, 97, 92, 80)] == [
        "brightgreen", "green", "yellow", "orange", "red",
    ]  # fmt: skip


def test_badge_cli(
    api: ApiServer, conn: Conn, world: Scenario, dsn: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("DATABASE_URL", dsn)
    monkeypatch.setenv("VIGIL_PUBLIC_URL", api.url)
    args = ["badge", "url", "--service", "api", "--kind", "uptime", "--format", "shields"]
    assert main([*args, "--window", "7d"]) == 0
    url = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(re.escape(api.url) + r"/badge/[0-9a-f]{32}/uptime-7d\.json", url)
    assert httpx.get(url).json()["message"] == "98.61%"
    assert main(["badge", "add", "heartbeat", HOST, "backup"]) == 0
    urls = capsys.readouterr().out.strip().splitlines()[1:]
    assert len(urls) == 8  # state and three uptimes, each as SVG and JSON
    assert httpx.get(urls[0]).text.count("late") >= 1
    assert main(["badge", "list"]) == 0
    listing = capsys.readouterr().out
    assert "service    api" in listing and f"heartbeat  {HOST}/backup" in listing
    key = urls[0].split("/")[-2]
    assert main(["badge", "delete", key]) == 0
    assert httpx.get(urls[0]).status_code == 404
    assert main(["badge", "delete", key]) == 1
    assert main(["badge", "url", "--service", "nope"]) == 1
    assert 'no service named "nope"' in capsys.readouterr().err
