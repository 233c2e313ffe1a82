"""A metric's page in headless Chromium: the chart of its reports over 24 h / 7 d, the
reports newest first with the gap before each and missed pings marked, keyset paging, times
in the viewer's zone with UTC on hover, at desktop and phone width, light and dark.
Screenshots: /tmp/metric-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import ApiServer
from tests.support.login import login

Conn = psycopg.Connection[tuple[object, ...]]

pytestmark = pytest.mark.browser

# Hours before now of the backup's pings (value 60: each allows 60 minutes): a 4 h hole
# between 8 h and 4 h ago, and nothing since 2 h ago (the deadline passed 1 h ago).
PINGS = [10, 9, 8, 4, 3, 2]
UTC_TITLE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")


def ingest(conn: Conn, rows: list[tuple[str, str, str, str, str]]) -> None:
    """Reports (host, name, type, value, age as an interval before now), oldest first."""
    conn.execute(
        "select count(*) from vigil.ingest_metrics(%s, %s, %s, %s,"
        " array(select now() - a::interval from unnest(%s::text[]) a))",
        [list(col) for col in zip(*rows, strict=True)],
    )


def metric_id(conn: Conn, name: str) -> int:
    row = conn.execute("select id from vigil.metrics where name = %s", (name,)).fetchone()
    assert row is not None
    return int(str(row[0]))


def open_page(browser: Any, api: ApiServer, dsn: str, **context: Any) -> tuple[Any, Any, list[str]]:
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, api.url, dsn, "ann@example.com")
    return ctx, page, errors


@pytest.fixture
def backup(conn: Conn) -> Iterator[int]:
    ingest(conn, [("web-1", "backup", "ping", "60", f"{h} hours") for h in PINGS])
    ingest(
        conn,
        [
            ("db-1", "disk /", "disk", v, f"{h} hours")
            for v, h in (("40", 30), ("55", 20), ("97", 5), ("60", 1))
        ],
    )
    yield metric_id(conn, "backup")


def no_sideways_scroll(page: Any, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    box = page.locator("#metric-chart canvas").first.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width


def test_ping_reports_gaps_and_chart_on_desktop(
    browser: Any, api: ApiServer, dsn: str, conn: Conn, backup: int
) -> None:
    ctx, page, errors = open_page(
        browser, api, dsn, viewport={"width": 1280, "height": 900}, timezone_id="Asia/Kathmandu"
    )
    try:
        page.goto(f"{api.url}/metrics/{backup}")
        page.wait_for_selector("#metric-chart[data-drawn]")
        rows = page.locator("#reports-list tbody tr")
        assert rows.count() == len(PINGS) + 1  # the open gap on top
        texts = rows.all_inner_texts()
        assert "no report" in texts[0] and "MISSED" in texts[0]
        # Newest first; the 4 h hole is marked on the report that ended it; the oldest
        # report has no report before it.
        missed = [
            i
            for i, r in enumerate(page.locator("#reports-list tbody tr").all())
            if "missed" in (r.get_attribute("class") or "")
        ]
        assert missed == [0, 3]
        assert "4 h 0 min" in texts[3] and "MISSED" in texts[3]
        assert "60 min" in texts[1] and "MISSED" not in texts[1]
        assert texts[-1].split("\t")[-1].strip() == "-"
        # The viewer's zone (Kathmandu, +05:45), 24-hour; UTC and the exact time on hover.
        first = page.locator("#reports-list time").first
        assert "GMT+5:45" in first.inner_text()
        assert UTC_TITLE.match(str(first.get_attribute("title")))
        local = first.inner_text().split(" ")[1]
        utc = str(first.get_attribute("title")).split(" ")[1]
        assert (
            int(local[:2]) * 60 + int(local[3:5]) - int(utc[:2]) * 60 - int(utc[3:5])
        ) % 1440 == 345
        # The chart: every ping of the last 24 h, the deadline on the time axis.
        assert page.get_attribute("#metric-chart", "data-drawn") == str(len(PINGS))
        legend = page.inner_text("#metric-chart .u-legend")
        assert "gap (min)" in legend and "allowed (min)" in legend and "missed" in legend
        assert page.locator("#metric-chart canvas").count() == 1
        no_sideways_scroll(page, 1280)
        page.screenshot(path="/tmp/metric-ping-1280-light.png", full_page=True)
        # Alert history with delivery stays on the page.
        assert page.locator("#transitions").count() == 1
        assert errors == []
    finally:
        ctx.close()


def test_values_chart_ranges_and_phone_dark(
    browser: Any, api: ApiServer, dsn: str, conn: Conn, backup: int
) -> None:
    disk = metric_id(conn, "disk /")
    ctx, page, errors = open_page(
        browser,
        api,
        dsn,
        viewport={"width": 390, "height": 844},
        color_scheme="dark",
        is_mobile=True,
    )
    try:
        page.goto(f"{api.url}/metrics/{disk}")
        page.wait_for_selector("#metric-chart[data-drawn]")
        assert page.get_attribute("#metric-chart", "data-drawn") == "3"  # 30 h ago is out
        assert "value" in page.inner_text("#metric-chart .u-legend")
        assert page.locator("#reports-list tbody tr.missed").count() == 0  # no deadline
        no_sideways_scroll(page, 390)
        page.screenshot(path="/tmp/metric-disk-390-dark.png", full_page=True)
        page.click(".ranges a:has-text('7 days')")
        page.wait_for_selector("#metric-chart[data-drawn='4']")
        assert page.get_attribute(".ranges a[aria-current]", "href") == "?range=7d#history"
        no_sideways_scroll(page, 390)
        page.goto(f"{api.url}/metrics/{backup}")
        page.wait_for_selector("#metric-chart[data-drawn]")
        assert page.locator("#reports-list tbody tr.missed").count() == 2
        no_sideways_scroll(page, 390)
        page.screenshot(path="/tmp/metric-ping-390-dark.png", full_page=True)
        assert errors == []
    finally:
        ctx.close()


def test_paging_back_keeps_the_gaps_and_empty_chart(
    browser: Any, api: ApiServer, dsn: str, conn: Conn
) -> None:
    # 130 pings 10 minutes apart (each allowing 15), one late: 40 minutes before the 120th.
    ages = [f"{10 * i + (30 if i >= 120 else 0)} minutes" for i in range(130)][::-1]
    ingest(conn, [("web-2", "sync", "ping", "15", a) for a in ages])
    ingest(conn, [("web-3", "old", "disk", "5", "40 days")])
    sync = metric_id(conn, "sync")
    ctx, page, errors = open_page(
        browser, api, dsn, viewport={"width": 1280, "height": 900}, color_scheme="dark"
    )
    try:
        page.goto(f"{api.url}/metrics/{sync}")
        assert page.locator("#reports-list tbody tr").count() == 100
        assert page.locator("#reports-list tbody tr.missed").count() == 0
        # The oldest shown still has its gap (the report before it is read too).
        assert "10 min" in page.locator("#reports-list tbody tr").last.inner_text()
        page.click("#older")
        page.wait_for_url("**before=*")
        rows = page.locator("#reports-list tbody tr")
        assert rows.count() == 30
        missed = rows.filter(has=page.locator(".missed-tag"))
        assert missed.count() == 1 and "40 min" in missed.inner_text()
        page.screenshot(path="/tmp/metric-paged-1280-dark.png", full_page=True)
        # Unreadable range and keyset: the defaults, never an error page.
        response = page.goto(f"{api.url}/metrics/{sync}?range=1y&before=yesterday")
        assert response.status == 200
        assert page.get_attribute(".ranges a[aria-current]", "href") == "?range=24h#history"
        assert page.locator("#reports-list tbody tr").count() == 100
        page.goto(f"{api.url}/metrics/{metric_id(conn, 'old')}")
        assert "No reports in this range." in page.inner_text("#metric-chart-status")
        assert page.locator("#reports-list tbody tr").count() == 1  # listed all the same
        page.screenshot(path="/tmp/metric-empty-1280-dark.png", full_page=True)
        assert errors == []
    finally:
        ctx.close()
