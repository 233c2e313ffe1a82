"""The Requests page in headless Chromium: login, filters, keyset paging, hostile text shown
literally, desktop and phone width in light and dark, no sideways scroll, no console errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ApiServer
from tests.requests.test_api import NOW
from tests.support.browser import assert_fits, views
from tests.support.login import login, login_client

pytestmark = pytest.mark.browser
EMAIL = "ann@example.com"


def seed(api: ApiServer, token: str) -> None:
    lines = [
        f"10.{i % 2}.0.{i} - - [{NOW - timedelta(minutes=i):%d/%b/%Y:%H:%M:%S} +0000] "
        f'"{("GET", "POST")[i % 2]} /{"api" if i % 3 else "static"}/item-{i}?page={i} HTTP/1.1" '
        f'{(200, 404, 502)[i % 3]} {i * 100} "https://example.com/" "Mozilla/5.0 (X11; Linux)"'
        for i in range(1, 71)
    ]
    hostile = (
        f'203.0.113.66 - - [{NOW:%d/%b/%Y:%H:%M:%S} +0000] "GET /<script>alert(1)</script>'
        "/\u202eevil/" + "very-long-segment-" * 40 + ' HTTP/1.1" 400 0 "-" "<b>bold</b>"'
    )
    body = "\n".join([*lines, hostile]).encode()
    r = httpx.post(
        api.url + "/v1/requests?host=web-1",
        content=body,
        headers={"authorization": f"Bearer {token}", "content-type": "text/plain"},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 71, r.text


def test_page_needs_login_and_says_what_is_wrong(api: ApiServer, dsn: str) -> None:
    r = httpx.get(api.url + "/requests", follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    with login_client(api.url, dsn, EMAIL) as client:
        r = client.get("/requests?ip=not-an-ip")
        assert r.status_code == 400 and "ip must be an address" in r.text
        r = client.get("/requests?status=7xx")
        assert r.status_code == 400 and "status must be" in r.text


def test_requests_page_in_chromium(browser: Any, api: ApiServer, dsn: str, token: str) -> None:
    from playwright.sync_api import expect

    seed(api, token)
    for width, scheme, page, errors in views(browser, desktop=1280):
        login(page, api.url, dsn, EMAIL)
        page.goto(api.url + "/requests")
        rows = page.locator("#request-rows li")
        expect(rows).to_have_count(71)
        expect(page.locator("nav[aria-label=main] a[aria-current=page]")).to_have_text("Requests")
        # the hostile line: shown literally, its bidi control as a visible escape
        first = rows.first
        expect(first.locator(".path")).to_contain_text("/<script>alert(1)</script>/")
        expect(first.locator(".path .esc")).to_have_text("\\u202e")
        expect(first.locator(".ua")).to_have_text("<b>bold</b>")
        assert page.locator("script:text('alert(1)')").count() == 0
        assert_fits(page, width, scheme)
        page.screenshot(path=f"/tmp/requests-{width}-{scheme}.png", full_page=False)
        if width == 1280 and scheme == "light":
            filters_and_paging(page, api)
        assert errors == [], errors  # e.g. no CSP violations
    assert Path("/tmp/requests-390-dark.png").exists()


def filters_and_paging(page: Any, api: ApiServer) -> None:
    from playwright.sync_api import expect

    rows = page.locator("#request-rows li")
    form = page.locator("#requests-filters")
    form.locator("select[name=status]").select_option("5xx")
    form.locator("select[name=method]").select_option("POST")
    form.locator("input[name=path]").fill("/api/")
    form.locator("input[name=ip]").fill("10.1.0.0/16")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/requests?*status=5xx*")
    # 502 and /api/: i % 3 == 2; POST and 10.1.x: odd i; so i = 5, 11, ..., 65
    expect(rows).to_have_count(11)
    assert set(rows.locator(".method").all_inner_texts()) == {"POST"}
    assert all(p.startswith("/api/") for p in rows.locator(".path").all_inner_texts())
    page.goto(api.url + "/requests?status=404&ip=10.0.0.0/16")
    expect(rows).to_have_count(12)  # i = 4, 10, ..., 70
    assert set(rows.locator(".status").all_inner_texts()) == {"404"}
    page.goto(api.url + "/requests?path=/static/&status=5xx")
    expect(page.locator("#requests-empty")).to_be_visible()
    page.screenshot(path="/tmp/requests-filtered.png", full_page=False)
    # keyset paging: 50 per page, then the rest, then no further page
    page.goto(api.url + "/requests?pageSize=50")
    expect(rows).to_have_count(50)
    first_page = rows.locator("time").all_inner_texts()
    page.locator("#page-older").click()
    expect(rows).to_have_count(21)
    second_page = rows.locator("time").all_inner_texts()
    assert page.locator("#page-older").count() == 0
    assert not set(first_page) & set(second_page[1:])
    page.locator("#page-first").click()
    expect(rows).to_have_count(50)
