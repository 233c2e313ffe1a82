"""The Trace page in headless Chromium: the search box, items of both kinds oldest first
with the host and service summary, hostile text shown literally, an unknown id, desktop
and phone width in light and dark, no sideways scroll, no console errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import ApiServer
from tests.support.browser import assert_fits, views
from tests.support.login import login, login_client
from tests.trace.data import NOW, TRACE, journal, seed

pytestmark = pytest.mark.browser
EMAIL = "ann@example.com"
HOSTILE = "<script>alert(1)</script> \u202eevil " + "long-segment-" * 30


def test_page_needs_login_and_says_what_is_wrong(api: ApiServer, dsn: str, conn: Any) -> None:
    seed(conn)
    r = httpx.get(api.url + "/trace/" + TRACE, follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    with login_client(api.url, dsn, EMAIL) as client:
        r = client.get("/trace", params={"id": "x" * 201})
        assert r.status_code == 400 and "at most 200 characters" in r.text
        r = client.get("/trace", params={"id": " req-7 "}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/trace/req-7"
        # in the main navigation, marked as the current page
        r = client.get("/trace/req-7")
        assert '<a href="/trace" aria-current="page">Trace</a>' in r.text
        r = client.get("/requests")
        assert '<a href="/trace">Trace</a>' in r.text
        # the Requests page links a record's ids to this page
        assert f'href="/trace/{TRACE}"' in r.text and 'href="/trace/req-1"' in r.text


def test_trace_page_in_chromium(browser: Any, api: ApiServer, dsn: str, conn: Any) -> None:
    from playwright.sync_api import expect

    seed(conn)
    journal(conn, [(NOW - timedelta(minutes=1), "app-3", None, HOSTILE, {"TRACE_ID": TRACE})])
    for width, scheme, page, errors in views(browser):
        login(page, api.url, dsn, EMAIL)
        page.goto(api.url + "/trace")
        page.locator("#trace-search input[name=id]").fill(TRACE.upper())
        page.locator("#trace-search button[type=submit]").click()
        page.wait_for_url(f"**/trace/{TRACE.upper()}")
        rows = page.locator("#trace-rows li")
        expect(rows).to_have_count(6)
        assert rows.locator(".kind").all_inner_texts() == ["request"] + ["journal"] * 5
        expect(rows.first.locator(".message")).to_have_text("GET /cart?a=1 200")
        times = rows.locator("time").all_inner_texts()
        assert times == sorted(times)
        groups = page.locator("#trace-groups li").all_inner_texts()
        assert groups == [
            "edge · shop.example: 1",
            "app-1 · shop.service: 2",
            "app-2 · pay.service: 2",
            "app-3: 1",
        ]
        last = rows.last
        expect(last.locator(".message")).to_contain_text("<script>alert(1)</script>")
        expect(last.locator(".message .esc")).to_have_text("\\u202e")
        assert page.locator("script:text('alert(1)')").count() == 0
        assert_fits(page, width, scheme)
        page.screenshot(path=f"/tmp/trace-{width}-{scheme}.png", full_page=True)
        if width == 1366 and scheme == "light":
            page.goto(api.url + "/trace/no-such-id")
            expect(page.locator("#trace-empty")).to_have_text("No logs for this id.")
            page.screenshot(path="/tmp/trace-unknown.png")
        assert errors == [], errors  # e.g. no CSP violations
