"""The charts page in headless Chromium: behind the login, search, presets, the uPlot chart
with its min-max band, exact values on hover, dark mode. Screenshots in test-artifacts/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import expect

from tests.conftest import ApiServer, screenshot
from tests.series import cases
from tests.support.login import login, login_client

Conn = psycopg.Connection[Any]

pytestmark = pytest.mark.browser


@pytest.fixture
def nab(conn: Conn) -> Iterator[Conn]:
    """Two real NAB series under one name, ending now, rollups refreshed."""
    now = conn.execute("select now()").fetchone()[0]  # type: ignore[index]
    rds = cases.shifted(cases.nab_series("rds_cpu_utilization_cc0c53.csv"), now)
    ec2 = cases.shifted(cases.nab_series("ec2_cpu_utilization_825cc2.csv"), now)
    cases.insert_points(conn, "cpu", {"host": "db-1"}, rds)
    cases.insert_points(conn, "cpu", {"host": "web-1"}, ec2)
    cases.insert_points(conn, "taxi_passengers", {"city": "nyc"}, cases.shifted(
        cases.nab_series("nyc_taxi.csv"), now - timedelta(minutes=5)))  # fmt: skip
    conn.execute("select vigil.refresh_series_rollups(now(), '{}')")
    yield conn


def test_charts_need_login(api: ApiServer) -> None:
    r = httpx.get(api.url + "/charts", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = httpx.get(api.url + "/charts/data?name=cpu&granularity=hour", follow_redirects=False)
    assert r.status_code in (303, 401)


def test_chart_data_endpoint(api: ApiServer, dsn: str, nab: Conn) -> None:
    with login_client(api.url, dsn, "ann@example.com") as client:
        found = client.get("/charts/series", params={"q": "web-1"}).json()
        assert [(s["name"], s["labels"]) for s in found] == [("cpu", {"host": "web-1"})]
        now = nab.execute("select now()").fetchone()[0]  # type: ignore[index]
        params = {
            "name": "cpu",
            "labels": json.dumps({"host": "db-1"}),
            "granularity": "hour",
            "from": (now - timedelta(days=3)).isoformat(),
            "to": now.isoformat(),
        }
        data = client.get("/charts/data", params=params).json()
        want = cases.reference(nab, "cpu", {"host": "db-1"}, "hour", now - timedelta(days=3), now)
        want.reverse()
        assert data["t"] == [r[0].timestamp() for r in want]
        assert data["avg"] == pytest.approx([r[1] for r in want], rel=1e-12)
        assert data["min"] == [r[2] for r in want] and data["max"] == [r[3] for r in want]
        params["granularity"] = "minute"
        params["from"] = (now - timedelta(days=30)).isoformat()
        r = client.get("/charts/data", params=params)
        assert r.status_code == 400 and "coarser granularity" in r.json()["message"]


def _open_chart(page: Any, api: ApiServer, query: str) -> None:
    page.goto(api.url + "/charts?" + query)
    page.wait_for_selector("#chart canvas")
    expect(page.locator("#chart-status")).to_contain_text("buckets")


def test_charts_page_in_the_browser(page: Any, api: ApiServer, dsn: str, nab: Conn) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    login(page, api.url, dsn, "ann@example.com")
    page.goto(api.url + "/charts")
    page.fill("#series-q", "host=web")  # matches the label text
    page.fill("#series-q", "web-1")
    page.locator("#series option").nth(1).wait_for(state="attached")
    page.select_option("#series", label="cpu {host=web-1}")
    page.wait_for_selector("#chart canvas")
    page.click("button.preset[data-range='7d']")
    expect(page.locator("#chart-status")).to_contain_text("hour buckets")
    assert "range=7d" in page.url and "web-1" in page.url
    screenshot(page, "charts-light")
    # Hover: the legend shows the exact average of the bucket under the cursor.
    box = page.locator("#chart .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    legend = page.locator("#chart .u-legend .u-series").nth(1).locator(".u-value")
    value = legend.inner_text()
    assert value not in ("", "\u2013", "--")
    when = page.locator("#chart .u-legend .u-series").nth(0).locator(".u-value").inner_text()
    bucket = nab.execute(
        "select avg from vigil.series_averages('cpu', '{\"host\": \"web-1\"}', 'hour',"
        " %s::timestamptz, %s::timestamptz + interval '1 hour')",
        (when, when),
    ).fetchone()
    assert bucket is not None and float(value) == pytest.approx(bucket[0], rel=1e-11)
    screenshot(page, "charts-hover")
    assert errors == []


def test_charts_dark_mode_all_label_sets(browser: Any, api: ApiServer, dsn: str, nab: Conn) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 800}, color_scheme="dark")
    try:
        page = context.new_page()
        login(page, api.url, dsn, "ann@example.com")
        _open_chart(page, api, "name=cpu&range=30d&g=day")
        status = page.inner_text("#chart-status")
        assert "day buckets" in status
        bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert bg == "rgb(17, 20, 24)"
        screenshot(page, "charts-dark")
    finally:
        context.close()
