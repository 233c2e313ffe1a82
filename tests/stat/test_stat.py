"""`vigil stat`: the overview and the host view on a real database (portable mode), their
sparklines (raw points and the minute rollup alike), --json, an unknown host, exit codes,
colours, and one statement per view."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import TEMPLATE, new_database
from tests.stat.data import HALF, NOW, reading, seed
from vigil.cli import stat
from vigil.cli.main import main
from vigil.cluster import Cluster

Conn = psycopg.Connection[Any]
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def seeded(pg_cluster: Cluster) -> Iterator[str]:
    """One database seeded once for the module (the tests only read it)."""
    with new_database(pg_cluster, TEMPLATE) as url:
        with psycopg.connect(url, autocommit=True) as c:
            seed(c)
        yield url


@pytest.fixture
def db(seeded: str) -> Iterator[Conn]:
    with stat.connect(seeded) as c:  # as the command connects: without JIT
        yield c


def test_host_view(db: Conn) -> None:
    doc = stat.host_view(db, "web-1", NOW)
    assert doc["known"] is True
    states = {m["name"]: (m["kind"], m["state"], m["value"]) for m in doc["metrics"]}
    assert states == {
        "/": ("threshold", "alert", "95%"),
        "home": ("threshold", "ok", "42"),
        "backup": ("deadline", "ok", "60"),
        "nightly": ("deadline", "alert", "5"),
    }
    labels = [r.label for r in stat.readings(doc["series"])]
    assert labels == ["cpu", "cpu user", "mem", "load1", "disk /"]  # cpu0, http_things left out
    assert reading(doc, "cpu").value == pytest.approx(70.0)
    assert reading(doc, "mem").value == pytest.approx(61.5)
    assert reading(doc, "disk /").value == pytest.approx(71.2)
    assert doc["requests"]["n"] == 20 and doc["requests"]["e5xx"] == 2
    assert doc["journal"]["n"] == 10 and doc["journal"]["errors"] == 1
    assert sorted(a["rule"] for a in doc["alerts"]) == ["disk", "ping"]

    text = stat.render_host(doc, stat.Style(False))
    assert "\x1b[" not in text
    lines = text.splitlines()
    assert lines[0].startswith("web-1  at ")

    def line(start: str) -> str:
        return next(x for x in lines if x.strip().startswith(start))

    assert re.search(r"nightly\s+ALERT\s+seen 3h 0m ago\s+since 1m 0s", line("nightly"))
    assert re.search(r"backup\s+ok\s+seen 2m 0s ago", line("backup"))
    assert re.search(r"/\s+ALERT\s+95\.0 %\s+\(alert > 90\.0\)", line("/ "))
    assert re.search(r"cpu\s+70\.0 %\s+1m 0s ago\s+cpu_usage_idle", line("cpu "))
    assert re.search(r"load1\s+0\.52\s", line("load1"))
    assert re.search(r"4\.0/min\s+5xx 10\.0 %\s+4xx 20\.0 %\s+last 10s ago", line("4.0/min"))
    assert re.search(r"2\.0 lines/min\s+errors 1", line("2.0 lines/min"))
    assert "firing alerts (2)" in text


def test_node_exporter_and_collectd_hosts(db: Conn) -> None:
    doc = stat.host_view(db, "db-1", NOW)  # instance db-1:9100
    assert [r.label for r in stat.readings(doc["series"])] == ["mem", "load1", "disk /"]
    assert reading(doc, "mem").value == pytest.approx(75.0)  # 1 - 25 / 100
    assert reading(doc, "disk /").value == pytest.approx(75.0)  # tmpfs /run left out
    doc = stat.host_view(db, "c-1", NOW)
    assert reading(doc, "disk root").value == pytest.approx(33.0)
    assert reading(doc, "load1").value == pytest.approx(0.25)


def test_history_sparklines(db: Conn) -> None:
    doc = stat.host_view(db, "web-1", NOW, DAY)
    assert doc["granularity"] == "minute" and doc["buckets"] == 40
    cpu = reading(doc, "cpu")
    assert cpu.history is not None and len(cpu.history) == 40
    assert cpu.history[0] == pytest.approx(10.0) and cpu.history[-1] == pytest.approx(70.0)
    assert stat.sparkline(cpu.history) == HALF
    user = reading(doc, "cpu user")
    assert stat.sparkline(user.history or []) == HALF
    requests = doc["requests"]["history"]
    assert sum(requests["n"]) == 380 and requests["n"][5] == 360 and requests["n"][-1] == 20
    assert requests["e5xx"][-1] == 2
    home = next(m for m in doc["metrics"] if m["name"] == "home")
    assert stat.sparkline(stat._history(home["history"]) or []) == HALF
    text = stat.render_host(doc, stat.Style(False))
    assert re.search(r"cpu\s+70\.0 %\s+1m 0s ago\s+" + HALF + r"\s+10\.0\.\.70\.0", text)
    assert re.search(r"req/min\s+" + re.escape("▁" * 5 + "█" + "▁" * 33) + r"\S\s+0\.\.10\.0", text)
    # 7 days: hourly buckets of the rollup; the day of points fills the last 6 or 7 of 40.
    week = stat.host_view(db, "web-1", NOW, 7 * DAY)
    assert week["granularity"] == "hour"
    history = reading(week, "cpu").history or []
    assert history[:33] == [None] * 33 and history[-1] == pytest.approx(70.0)


def test_history_from_the_minute_rollup(pg_cluster: Cluster) -> None:
    """After the portable rollup job ran (buckets read from vigil.points_minute, not from the
    raw points), the sparklines are the same."""
    with new_database(pg_cluster, TEMPLATE) as url, stat.connect(url) as c:
        seed(c)
        before = stat.host_view(c, "web-1", NOW, DAY)
        c.execute("select vigil.refresh_series_rollups(%s, '{}')", (NOW,))
        c.execute("delete from vigil.points where at < %s - interval '1 hour'", (NOW,))
        after = stat.host_view(c, "web-1", NOW, DAY)
        assert stat.sparkline(reading(after, "cpu").history or []) == HALF
        assert after["series"] == before["series"]


def test_overview(db: Conn) -> None:
    doc = stat.overview(db, NOW)
    hosts = {h["host"]: h for h in doc["hosts"]}
    assert list(hosts) == ["c-1", "db-1", "j-1", "web-1"]
    assert hosts["web-1"]["alerts"] == 2 and hosts["db-1"]["alerts"] == 0
    assert hosts["web-1"]["requests"]["n"] == 20
    text = stat.render_overview(doc, stat.Style(False))
    lines = {x.split()[0]: x for x in text.splitlines()}
    assert lines["HOST"].split() == [
        "HOST", "HEARTBEATS", "DISK", "CPU", "MEM", "LOAD", "REQ/MIN", "5XX", "ALERTS",
    ]  # fmt: skip
    assert re.fullmatch(
        r"web-1\s+1 ok, 1 ALERT\s+95\.0 % /\s+70\.0 %\s+61\.5 %\s+0\.52\s+4\.0\s+10\.0 %\s+2",
        lines["web-1"],
    )
    assert re.fullmatch(r"db-1\s+-\s+75\.0 % /\s+-\s+75\.0 %\s+1\.50\s+-\s+-\s+0", lines["db-1"])
    assert re.fullmatch(r"j-1(\s+-){7}\s+0", lines["j-1"])
    week = stat.overview(db, NOW, DAY)
    counts = {h["host"]: h["requests"]["history"] for h in week["hosts"]}
    assert counts["web-1"][5] == 360 and sum(counts["db-1"]) == 0


def test_one_statement_per_view(seeded: str) -> None:
    executed: list[str] = []

    class Counting(psycopg.Cursor[Any]):
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            executed.append(str(query))
            return super().execute(query, *args, **kwargs)

    with psycopg.connect(
        seeded, autocommit=True, cursor_factory=Counting, options=stat.NO_JIT
    ) as c:
        stat.overview(c, NOW, DAY)
        assert len(executed) == 1
        stat.host_view(c, "web-1", NOW, DAY)
        assert len(executed) == 2
        stat.host_view(c, "nope", NOW)
        assert len(executed) == 3


def test_cli(
    seeded: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", seeded)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert main(["stat"]) == 0
    out = capsys.readouterr().out
    assert "web-1" in out and "\x1b[" not in out  # not a terminal: no colours
    assert main(["stat", "web-1", "--history", "24h"]) == 0
    out = capsys.readouterr().out
    assert "firing alerts (2)" in out and re.search(r"cpu\s+70\.0 %.*[▁▂▃▄▅▆▇█]{30}", out)
    assert main(["stat", "web-1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["host"] == "web-1" and doc["known"] is True
    assert {r["label"]: r["value"] for r in doc["readings"]}["mem"] == pytest.approx(61.5)
    assert main(["stat", "--json", "--history", "1h"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [h["host"] for h in doc["hosts"]] == ["c-1", "db-1", "j-1", "web-1"]
    assert len(doc["hosts"][0]["requests"]["history"]) == 40
    # An unknown host: said, exit status 0 (the contract).
    assert main(["stat", "nope", "--history", "24h"]) == 0
    assert capsys.readouterr().out.strip() == "no data for nope"
    assert main(["stat", "nope", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["known"] is False
    # Usage errors: 2, one line.
    assert main(["stat", "--history", "yesterday"]) == 2
    assert main(["stat", "--history", "1000d"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(x.startswith("vigil: --history") for x in err)


def test_database_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import free_port

    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@127.0.0.1:{free_port()}/x")
    assert main(["stat", "web-1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vigil: database error: ") and err.count("\n") == 1


def test_colours(db: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    style = stat.Style.for_stream(Tty())
    assert style.on
    text = stat.render_host(stat.host_view(db, "web-1", NOW), style)
    assert "\x1b[31mALERT\x1b[0m" in text and "\x1b[32mok\x1b[0m" in text
    plain = stat.ANSI.sub("", text)
    assert plain == stat.render_host(stat.host_view(db, "web-1", NOW), stat.Style(False))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not stat.Style.for_stream(Tty()).on


def test_empty_database(dsn: str) -> None:
    with stat.connect(dsn) as conn:
        doc = stat.overview(conn, NOW, DAY)
        assert doc["hosts"] == []
        assert stat.render_overview(doc, stat.Style(False)).startswith("no hosts known yet")
        assert stat.render_host(stat.host_view(conn, "web-1", NOW, DAY), stat.Style(False)) == (
            "no data for web-1"
        )


def test_sparkline_plan_and_numbers() -> None:
    assert stat.sparkline([None, 0.0, 5.0, 10.0]) == " ▁▅█"
    assert stat.sparkline([3.0, None, 3.0]) == "▄ ▄" and stat.sparkline([0.0, 0.0]) == "▁▁"
    assert stat.sparkline([2.0, 4.0], lo=0.0) == "▅█" and stat.sparkline([None, None]) == "  "
    assert stat.history_plan(timedelta(minutes=10)) == (10, "minute")
    assert stat.history_plan(DAY) == (40, "minute")
    assert stat.history_plan(7 * DAY) == (40, "hour")
    assert stat.history_plan(60 * DAY) == (40, "day")
    assert [stat.metric_number(v) for v in ("95%", " 71.5 % ", "abc", None)] == [
        95.0, 71.5, None, None,
    ]  # fmt: skip
