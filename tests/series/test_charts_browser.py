"""The charts page in headless Chromium: behind the login; label sets of a name overlaid (at
most 8, with a note); rounded values with units; the viewer's zone (Asia/Kathmandu, +05:45)
in the inputs, axis and legend, UTC and the exact values on hover; touch hints on phones; the
empty states. At 1366 and 390 px, light and dark; screenshots in /tmp/charts-*.png."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from playwright.sync_api import expect

from tests.conftest import ApiServer
from tests.series import cases
from tests.support.login import login, login_client

KTM = ZoneInfo("Asia/Kathmandu")
HOVER = re.compile(
    r"^(\d{4}-\d\d-\d\d) (\d\d):(\d\d)([\s\u202f][AP]M)? GMT\+5:45"
    r" = (\d{4}-\d\d-\d\d) (\d\d):(\d\d):00Z UTC · (.*)$"
)

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


def open_page(browser: Any, api: ApiServer, dsn: str, **context: Any) -> tuple[Any, Any, list[str]]:
    ctx = browser.new_context(timezone_id="Asia/Kathmandu", **context)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page, api.url, dsn, "ann@example.com")
    return ctx, page, errors


def no_sideways_scroll(page: Any, width: int) -> None:
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter((e) =>"
        " e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)"
        ".map((e) => e.tagName + '#' + e.id + '.' + e.className).slice(0, 5)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width, wide
    for canvas in page.locator("#chart canvas").all():
        box = canvas.bounding_box()
        assert box is not None and box["x"] + box["width"] <= width


def hover_parts(text: str) -> tuple[datetime, datetime, str]:
    """The readout under the chart -> (local wall time, UTC time, the values text); the two
    times must be the same instant in Kathmandu."""
    m = HOVER.match(text)
    assert m, text
    hour = int(m[2])
    if m[4]:  # 12-hour locale
        hour = hour % 12 + (12 if m[4].strip().upper() == "PM" else 0)
    local = datetime.fromisoformat(f"{m[1]}T{hour:02d}:{m[3]}")
    utc = datetime.fromisoformat(f"{m[5]}T{m[6]}:{m[7]}:00+00:00")
    assert utc.astimezone(KTM).replace(tzinfo=None) == local  # +05:45
    return local, utc, m[8]


def bucket_avg(conn: Conn, name: str, labels: dict[str, str], g: str, at: datetime) -> float:
    row = conn.execute(
        "select avg from vigil.series_averages(%s, %s, %s, %s, %s + %s::interval)",
        (name, json.dumps(labels), g, at, at, "1 " + g),
    ).fetchone()
    assert row is not None
    return float(row[0])


def test_label_sets_overlaid_in_the_viewers_zone(
    browser: Any, api: ApiServer, dsn: str, nab: Conn
) -> None:
    ctx, page, errors = open_page(
        browser, api, dsn, viewport={"width": 1366, "height": 900}, locale="en-GB"
    )
    try:
        page.goto(api.url + "/charts?name=cpu&range=7d")
        page.wait_for_selector("#chart[data-series='2'] canvas")
        status = page.inner_text("#chart-status")
        assert "cpu, 2 label sets" in status and "hour buckets" in status
        assert "Drag across the chart to zoom" in status
        legend = page.locator("#chart .u-legend .u-series")
        assert legend.nth(1).locator(".u-label").inner_text() == "host=db-1"
        assert legend.nth(2).locator(".u-label").inner_text() == "host=web-1"
        assert page.is_hidden("#chart-note") and page.is_hidden("#chart-empty")
        # From/To in the viewer's zone, named next to the inputs.
        assert page.inner_text("label:has(#from)").startswith("From (GMT+5:45)")
        now = datetime.now(UTC)
        want = {
            (now - timedelta(days=7, minutes=m)).astimezone(KTM).strftime("%Y-%m-%dT%H:%M")
            for m in (0, 1)
        }
        assert page.input_value("#from") in want
        # Hover: local 24-hour time in the legend and the readout, UTC and exact values below.
        box = page.locator("#chart .u-over").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
        expect(page.locator("#chart-hover")).to_contain_text("UTC")
        _, utc, values = hover_parts(page.inner_text("#chart-hover"))
        assert "GMT+5:45" in legend.nth(0).locator(".u-value").inner_text()
        exact = dict(v.rsplit(" ", 1) for v in values.split(" · "))
        for k, host in ((1, "db-1"), (2, "web-1")):
            want_avg = bucket_avg(nab, "cpu", {"host": host}, "hour", utc)
            assert float(exact["host=" + host]) == pytest.approx(want_avg, rel=1e-11)
            shown = legend.nth(k).locator(".u-value").inner_text()
            # rounded to 3 significant digits (the hovered bucket's value depends on the hour)
            assert re.fullmatch(r"\d+(\.\d+)?", shown), shown
            assert len(shown.replace(".", "").lstrip("0")) <= 3, shown
            assert float(shown) == pytest.approx(want_avg, rel=0.01)
        no_sideways_scroll(page, 1366)
        page.screenshot(path="/tmp/charts-1366-light.png", full_page=True)
        # A range typed in Kathmandu time is that instant: 09:15 local = 03:30 UTC.
        day = (now - timedelta(days=2)).astimezone(KTM).strftime("%Y-%m-%d")
        page.fill("#from", f"{day}T09:15")
        page.fill("#to", f"{day}T21:15")
        page.click("#apply")
        expect(page.locator("#chart-status")).to_contain_text("minute buckets")
        assert f"from={day}T03%3A30%3A00.000Z" in page.url
        assert f"to={day}T15%3A30%3A00.000Z" in page.url
        assert page.input_value("#from") == f"{day}T09:15"
        # Dragging across the chart zooms into that part of the range.
        page.wait_for_selector("#chart canvas")
        box = page.locator("#chart .u-over").bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] * 0.25, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
        page.mouse.up()
        page.wait_for_url(re.compile(r"from=" + day + r"T0[6-7]"))
        page.wait_for_selector("#chart canvas")
        assert errors == []
    finally:
        ctx.close()


def test_one_label_set_dark_with_band(browser: Any, api: ApiServer, dsn: str, nab: Conn) -> None:
    ctx, page, errors = open_page(
        browser, api, dsn, viewport={"width": 1366, "height": 900}, color_scheme="dark"
    )
    try:
        labels = json.dumps({"host": "web-1"})
        page.goto(api.url + "/charts?name=cpu&range=30d&g=day&labels=" + labels)
        page.wait_for_selector("#chart[data-series='1'] canvas")
        assert "cpu {host=web-1}" in page.inner_text("#chart-status")
        names = page.locator("#chart .u-legend .u-label").all_inner_texts()
        assert names == ["Time", "avg", "min", "max"]
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(17, 20, 24)"
        no_sideways_scroll(page, 1366)
        page.screenshot(path="/tmp/charts-1366-dark.png", full_page=True)
        assert errors == []
    finally:
        ctx.close()


@pytest.fixture
def rooms(conn: Conn) -> Iterator[Conn]:
    """Ten label sets of one name (more than a chart overlays) and a series in bytes."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    times = [now - timedelta(minutes=10 * i) for i in range(144, -1, -1)]
    for r in range(10):
        cases.insert_points(
            conn,
            "temp",
            {"room": f"r{r}"},
            [(t, 18 + r + (i % 7) / 3) for i, t in enumerate(times)],
        )
    cases.insert_points(
        conn,
        "disk_used_bytes",
        {"host": "db-1"},
        [(t, 3.5 * 2**30 + i) for i, t in enumerate(times)],
    )
    yield conn


def test_phone_dark_touch_limit_units_and_no_points(
    browser: Any, api: ApiServer, dsn: str, rooms: Conn
) -> None:
    ctx, page, errors = open_page(
        browser,
        api,
        dsn,
        viewport={"width": 390, "height": 844},
        color_scheme="dark",
        is_mobile=True,
        has_touch=True,
        locale="en-US",
    )
    try:
        page.goto(api.url + "/charts?name=temp&range=24h")
        page.wait_for_selector("#chart[data-series='8'] canvas")
        expect(page.locator("#chart-note")).to_contain_text("first 8 of 10 label sets of temp")
        assert "(e.g. temp room=r8)" in page.inner_text("#chart-note")
        status = page.inner_text("#chart-status")
        assert "Tap the chart to read values" in status and "Drag" not in status
        assert page.locator("#chart .u-legend .u-series").count() == 9
        # A tap shows the time (12-hour where the locale is en-US), UTC and exact values.
        box = page.locator("#chart .u-over").bounding_box()
        page.touchscreen.tap(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
        expect(page.locator("#chart-hover")).to_contain_text("UTC")
        text = page.inner_text("#chart-hover")
        assert re.search(r"[AP]M GMT\+5:45", text), text
        _, _, values = hover_parts(text)
        assert values.count(" · ") == 7 and values.startswith("room=r0 ")
        no_sideways_scroll(page, 390)
        page.screenshot(path="/tmp/charts-390-dark.png", full_page=True)
        # Units from the name: bytes in binary multiples, on the axis and in the legend.
        page.goto(api.url + "/charts?name=disk_used_bytes&range=24h")
        page.wait_for_selector("#chart[data-series='1'] canvas")
        box = page.locator("#chart .u-over").bounding_box()
        page.touchscreen.tap(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
        expect(page.locator("#chart-hover")).to_contain_text("UTC")
        avg = page.locator("#chart .u-legend .u-series").nth(1).locator(".u-value").inner_text()
        assert avg == "3.5 GiB"
        # No points in the range: a message and a way to the newest points, not a blank box.
        page.goto(
            api.url
            + "/charts?name=disk_used_bytes&from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z"
        )
        expect(page.locator("#chart-empty")).to_be_visible()
        assert page.is_hidden("#chart")
        text = page.inner_text("#chart-empty-text")
        assert re.search(
            r"No points for disk_used_bytes between 2020-01-01 05:45\sAM GMT\+5:45", text
        )
        assert "newest point is from" in text
        page.screenshot(path="/tmp/charts-390-dark-no-points.png", full_page=True)
        page.click("#chart-empty-action")
        page.wait_for_selector("#chart[data-series='1'] canvas")
        assert page.is_hidden("#chart-empty")
        no_sideways_scroll(page, 390)
        assert errors == []
    finally:
        ctx.close()


def test_first_run_shows_how_to_send(browser: Any, api: ApiServer, dsn: str, token: str) -> None:
    ctx, page, errors = open_page(
        browser, api, dsn, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page.goto(api.url + "/charts")
        expect(page.locator("#chart-first")).to_be_visible()
        assert page.is_hidden("#chart")
        assert page.inner_text("#chart-status") == "No metrics yet."
        curl = page.inner_text("#chart-first pre")
        assert api.url + "/v1/metrics" in curl
        no_sideways_scroll(page, 390)
        page.screenshot(path="/tmp/charts-390-light-empty.png", full_page=True)
        # The example works as shown: send its body with a token, then the series is there.
        body = json.loads(re.search(r"-d '([^']+)'", curl)[1])  # type: ignore[index]
        r = httpx.post(
            api.url + "/v1/metrics", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 201, r.text
        page.goto(api.url + "/charts")
        expect(page.locator("#chart-empty-text")).to_contain_text("Pick a series above")
        page.select_option("#series", label="temperature {room=kitchen}")
        page.wait_for_selector("#chart[data-series='1'] canvas")
        assert "1 minute bucket, 1 point." in page.inner_text("#chart-status")
        box = page.locator("#chart canvas").bounding_box()
        assert box is not None and box["width"] > 300  # the box's width, drawn after hiding
        page.screenshot(path="/tmp/charts-390-light.png", full_page=True)
        no_sideways_scroll(page, 390)
        assert errors == []
    finally:
        ctx.close()
