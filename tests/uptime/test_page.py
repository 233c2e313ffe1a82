"""The services page in headless Chromium: states, uptime, sparkline, events, add/remove."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import ApiServer, screenshot
from tests.support.login import login, login_client
from tests.support.uptime import Conn, add

pytestmark = pytest.mark.browser


def seed(conn: Conn) -> None:
    now = datetime.now(UTC)
    shop = add(conn, "shop", "https://shop.example/health", retries=0)
    api = add(conn, "api", "https://api.example/ping", retries=0)
    for i in range(40):
        at = now - timedelta(minutes=80 - 2 * i)
        ok = not 20 <= i < 25
        conn.execute(
            "select vigil.record_check(%s, %s, %s, %s, %s, null)",
            (shop, at, 200 if ok else 503, 80.0 + (i % 7) * 15 if ok else 40.0, None),
        )
        down = i >= 35
        conn.execute(
            "select vigil.record_check(%s, %s, %s, %s, %s, null)",
            (
                api,
                at,
                None if down else 200,
                None if down else 20.0 + i,
                "timeout" if down else None,
            ),
        )


def test_services_page(api: ApiServer, dsn: str, conn: Conn, page: object) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    seed(conn)
    login(page, api.url, dsn, "ann@example.com")
    page.goto(api.url + "/services")
    rows = page.locator("#services > tbody > tr")
    expect(rows).to_have_count(2)
    api_row = page.locator("#services > tbody > tr").nth(0)
    expect(api_row).to_contain_text("api")
    expect(api_row.locator(".state").first).to_have_text("down")
    expect(api_row).to_contain_text("timeout")
    shop_row = page.locator("#services > tbody > tr").nth(1)
    expect(shop_row.locator(".state").first).to_have_text("up")
    # 10 of 80 minutes down: 87.50% over 24 h when the page is read at once; the up time
    # goes on while a busy machine renders it (87.51% two seconds later).
    expect(shop_row).to_contain_text(re.compile(r"87\.5[0-9]%"))
    assert shop_row.locator("svg.spark polyline").count() == 1
    assert shop_row.locator("svg.spark rect").count() == 5  # the five failed checks
    shop_row.locator("summary").click()
    expect(shop_row.locator("table.events tr")).to_have_count(3)
    screenshot(page, "services-page")

    page.fill("#add-service input[name=name]", "blog")
    page.fill("#add-service input[name=url]", "https://blog.example/")
    page.click("#add-service button[type=submit]")
    expect(page.locator(".notice.success")).to_contain_text("Service added")
    expect(page.locator("#services > tbody > tr")).to_have_count(3)
    page.fill("#add-service input[name=name]", "blog")
    page.fill("#add-service input[name=url]", "https://blog2.example/")
    page.click("#add-service button[type=submit]")
    expect(page.locator(".notice.error")).to_contain_text('a service named "blog" exists already')
    screenshot(page, "services-page-error")


def test_forms_need_login_and_csrf(api: ApiServer, dsn: str, conn: Conn) -> None:
    import httpx

    r = httpx.get(api.url + "/services", timeout=10)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    with login_client(api.url, dsn, "ann@example.com") as client:
        data = {"name": "x", "url": "https://x.example/"}
        del client.headers["X-CSRF-Token"]
        assert client.post("/services", data=data).status_code == 403
        assert conn.execute("select count(*) from vigil.services").fetchone() == (0,)
    with login_client(api.url, dsn, "ann@example.com") as client:
        assert client.post("/services", data=data).status_code == 303
        r = client.post("/services", data={"name": "bad", "url": "ftp://x/"})
        assert r.status_code == 400 and "is not an http(s) URL" in r.text
        for interval in ("nan", "inf", "1e20", "-5", "abc"):
            r = client.post(
                "/services", data={"name": "y", "url": "https://y.example/", "interval": interval}
            )
            assert r.status_code == 400 and "Interval and timeout are seconds" in r.text
        assert client.post("/services/remove", data={"name": "x"}).status_code == 303
        assert conn.execute("select count(*) from vigil.services").fetchone() == (0,)
    # The read API accepts the operator session too.
    with login_client(api.url, dsn, "ann@example.com") as client:
        assert client.get("/v1/services").status_code == 200
