"""`vigil stat` in TimescaleDB mode: the sparklines read the continuous aggregates (partly
materialized, the newest buckets real-time) and the hypertables give the same view as the
portable lane (tests/stat/test_stat.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.stat.data import HALF, NOW, reading, seed
from vigil.cli import stat

pytestmark = pytest.mark.timescale


def test_views_on_timescale(ts_dsn: str) -> None:
    with stat.connect(ts_dsn) as c:
        seed(c)
        # What the refresh policies do, up to two hours ago: the rest is real-time.
        for tier in ("hour", "day"):  # minutes are read from the raw points
            c.execute(
                f"call refresh_continuous_aggregate('vigil.points_{tier}', null,"
                f" date_trunc('{tier}', %s::timestamptz - interval '2 hours', 'UTC'))",
                (NOW,),
            )
        doc = stat.host_view(c, "web-1", NOW, timedelta(days=1))
        assert doc["known"] is True
        cpu = reading(doc, "cpu")
        assert cpu.value == pytest.approx(70.0)
        assert stat.sparkline(cpu.history or []) == HALF
        assert reading(doc, "disk /").value == pytest.approx(71.2)
        assert doc["requests"]["n"] == 20 and doc["requests"]["history"]["n"][5] == 360
        assert sorted(a["rule"] for a in doc["alerts"]) == ["disk", "ping"]
        week = stat.host_view(c, "web-1", NOW, timedelta(days=7))
        assert (reading(week, "cpu").history or [])[-1] == pytest.approx(70.0)
        hosts = {h["host"]: h for h in stat.overview(c, NOW)["hosts"]}
        assert list(hosts) == ["c-1", "db-1", "j-1", "web-1"]
        text = stat.render_host(stat.host_view(c, "db-1", NOW), stat.Style(False))
        assert "mem" in text and "75.0 %" in text
        assert stat.host_view(c, "nope", NOW)["known"] is False
