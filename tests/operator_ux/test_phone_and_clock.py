"""Phone layouts and one clock, in headless Chromium: the dashboard, journal, services list and
tokens pages at 1366 px and 390 px, light and dark, for a viewer in Asia/Kathmandu (+05:45):
cards instead of wide tables on a phone, the journal's filters behind a button and its lines at
most two rows, no sideways scrolling, times in the viewer's zone with UTC on hover, relative
times with the absolute time on hover, no console errors. Screenshots: /tmp/phone-*.png."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import ApiServer
from tests.support.browser import assert_fits, views
from tests.support.login import login
from tests.support.uptime import Conn, add

pytestmark = pytest.mark.browser
EMAIL = "ann@example.com"
ZONE = "Asia/Kathmandu"
ZONE_NAMES = (ZONE, "Asia/Katmandu")  # Chromium's ICU reports the older spelling
# a journal line at a known instant: 2026-11-22 10:00:00.123 UTC is 15:45:00.123 in Kathmandu
JOURNAL_AT_US = 1_795_341_600_123_000
PAGES = ("/", "/journal", "/services", "/tokens")


def seed(api: ApiServer, token: str, conn: Conn) -> None:
    for i, (name, kind, value) in enumerate(
        (("backup-nightly-database-dump", "ping", None), ("/dev/sda1", "disk", "91"))
    ):
        body: dict[str, Any] = {"host": f"web-{i + 1}.example.org", "name": name, "type": kind}
        if value is not None:
            body["value"] = value
        r = httpx.post(api.url + "/metric", json=body, headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    lines = [
        json.dumps(
            {
                "__REALTIME_TIMESTAMP": str(JOURNAL_AT_US - i * 60_000_000),
                "_HOSTNAME": "web-1.example.org",
                "_SYSTEMD_UNIT": "nginx.service",
                "PRIORITY": str(3 if i % 5 == 0 else 6),
                "MESSAGE": f"request {i} served " + "with a fairly long message " * 6,
            }
        )
        for i in range(12)
    ]
    r = httpx.post(f"{api.url}/t/{token}/journal", json={"logs": "\n".join(lines)})
    assert r.status_code == 200, r.text
    now = datetime.now(UTC)
    shop = add(conn, "shop", "https://shop.example/health", retries=0)
    for i in range(10):
        conn.execute(
            "select vigil.record_check(%s, %s, %s, %s, %s, null)",
            (shop, now - timedelta(minutes=20 - 2 * i), 200 if i != 4 else 503, 90.0, None),
        )


def check_clock(page: Any) -> None:
    # the journal's absolute times: in the viewer's zone, UTC and the offset on hover
    if page.url.endswith("/journal"):
        first = page.locator("#journal-rows time").first
        assert first.inner_text().startswith("2026-11-22 15:45:00.123"), first.inner_text()
        title = first.get_attribute("title") or ""
        assert "2026-11-22 15:45:00 +05:45" in title and "2026-11-22 10:00:00 UTC" in title
        assert page.locator("[data-tz-name]").first.inner_text() in ZONE_NAMES
        return
    # relative times keep their text and carry the absolute local + UTC time in the title
    times = page.locator("main time[data-rel]")
    assert times.count() > 0
    for i in range(times.count()):
        el = times.nth(i)
        text = (el.text_content() or "").strip()
        assert "ago" in text or text.startswith("in "), text
        title = el.get_attribute("title") or ""
        utc, local = title.split("\n")
        assert utc.endswith(" UTC") and any(local.endswith(f"+05:45 ({z})") for z in ZONE_NAMES)
        # the two stamps are the same instant, 5 h 45 min apart on the wall clock
        lt = datetime.strptime(local[:19], "%Y-%m-%d %H:%M:%S")
        ut = datetime.strptime(utc[:19], "%Y-%m-%d %H:%M:%S")
        assert lt - ut == timedelta(hours=5, minutes=45), title


def check_phone(page: Any, path: str) -> None:
    from playwright.sync_api import expect

    if path == "/journal":
        form = page.locator("#journal-filters")
        expect(form).to_be_hidden()  # filters behind a button
        toggle = page.locator("#filters-toggle")
        toggle.click()
        expect(form).to_be_visible()
        assert toggle.get_attribute("aria-expanded") == "true"
        toggle.click()
        expect(form).to_be_hidden()
        line_height = page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('.journal summary')).lineHeight)"
        )
        for box in page.eval_on_selector_all(
            ".journal summary", "els => els.map(e => e.getBoundingClientRect().height)"
        ):
            assert box <= 2 * line_height + 12, (box, line_height)  # two rows at most
        return
    table = {"/": "#metrics", "/services": "#services", "/tokens": "#tokens"}[path]
    rows = page.locator(f"{table} > tbody > tr")
    assert rows.count() > 0
    for i in range(rows.count()):
        row = rows.nth(i)
        assert row.evaluate("r => getComputedStyle(r).display") == "grid"  # a card
        # every cell of the card lies within the screen: state and buttons are not cut off
        for right in row.evaluate(
            "r => [...r.children].filter(c => c.offsetParent).map("
            "c => c.getBoundingClientRect().right)"
        ):
            assert right <= 390, right
    if path == "/":
        expect(rows.first.locator(".state")).to_be_in_viewport()
    if path == "/tokens":
        expect(rows.first.get_by_role("button", name="Revoke")).to_be_in_viewport()


def filters_on_phone(page: Any, api: ApiServer) -> None:
    """The folded journal filters say when one is set, and open by themselves on a bad one."""
    from playwright.sync_api import expect

    page.goto(api.url + "/journal?host=web-1.example.org")
    expect(page.locator("#filters-toggle")).to_have_text("Filters (active)")
    expect(page.locator("#journal-filters")).to_be_hidden()
    page.goto(api.url + "/journal?start=yesterday")
    expect(page.locator("[role=alert]")).to_be_visible()
    expect(page.locator("#journal-filters")).to_be_visible()
    assert page.locator("#filters-toggle").get_attribute("aria-expanded") == "true"


def test_pages_on_phone_and_desktop_in_the_viewers_zone(
    browser: Any, api: ApiServer, dsn: str, token: str, conn: Conn
) -> None:
    seed(api, token, conn)
    started = time.monotonic()
    for width, scheme, page, errors in views(
        browser, height=860, page_errors=True, timezone_id=ZONE, locale="en-GB"
    ):
        login(page, api.url, dsn, EMAIL)
        for path in PAGES:
            page.goto(api.url + path)
            page.wait_for_function("document.querySelector('time[data-clock], time[data-local]')")
            assert_fits(page, width, scheme, path)
            check_clock(page)
            if width == 390:
                check_phone(page, path)
            name = path.strip("/") or "dashboard"
            page.screenshot(path=f"/tmp/phone-{name}-{width}-{scheme}.png", full_page=True)
        assert errors == [], errors  # e.g. no CSP violations
        if width == 390 and scheme == "light":
            filters_on_phone(page, api)
    assert time.monotonic() - started < 60
