"""A service's page in headless Chromium: chart, uptime 24 h / 7 d / 30 d / 90 d, incidents
with start, end and duration; edit with every setting, pause and resume; the refusal of an
internal URL in the form; desktop and phone width, light and dark, without horizontal
scroll or console errors. Screenshots: /tmp/service-*.png."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import ApiServer
from tests.support.login import login, login_client
from tests.support.uptime import Conn, add

pytestmark = pytest.mark.browser
EMAIL = "ann@example.com"


def seed(conn: Conn) -> int:
    now = datetime.now(UTC)
    shop = add(conn, "shop", "https://shop.example/health", retries=0, allow_internal=False)
    for i in range(60):
        at = now - timedelta(hours=20) + timedelta(minutes=20 * i)
        ok = not 30 <= i < 33  # one hour down (3 checks, 20 min apart)
        conn.execute(
            "select vigil.record_check(%s, %s, %s, %s, %s, null)",
            (shop, at, 200 if ok else None, 80.0 + (i % 7) * 15 if ok else None,
             None if ok else "timeout"),
        )  # fmt: skip
    return shop


def no_horizontal_scroll(page: Any) -> bool:
    return bool(
        page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
def test_service_page_layouts(
    browser: Any, api: ApiServer, dsn: str, conn: Conn, width: int, scheme: str
) -> None:
    from playwright.sync_api import expect

    shop = seed(conn)
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        login(page, api.url, dsn, EMAIL)
        page.goto(api.url + "/services")
        page.click("#services a:text-is('shop')")
        expect(page).to_have_url(f"{api.url}/services/{shop}")
        expect(page.locator("h1")).to_contain_text("shop")
        expect(page.locator("#service-state")).to_have_text("up")
        cells = page.locator("#uptime tbody td")
        expect(cells).to_have_count(4)
        # 1 h down out of the 20 h known (first check until now): 95 % over every window.
        for i in range(4):
            expect(cells.nth(i)).to_have_text("95.00%")
        rows = page.locator("#incidents tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.nth(0).locator("td").nth(2)).to_have_text("60 min")
        expect(rows.nth(0)).to_contain_text("timeout")
        # in the viewer's zone (vigil.js), UTC on hover
        expect(rows.nth(0).locator("td time").first).to_have_attribute("title", re.compile(" UTC"))
        expect(page.locator("#chart canvas").first).to_be_visible()
        assert page.locator("#chart .u-legend").count() == 1
        assert no_horizontal_scroll(page), f"horizontal scroll at {width}px {scheme}"
        if scheme == "dark":
            bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert bg == "rgb(17, 20, 24)"
        page.screenshot(path=f"/tmp/service-{width}-{scheme}.png", full_page=True)
        assert errors == []
    finally:
        context.close()


def test_edit_pause_resume_in_the_page(api: ApiServer, dsn: str, conn: Conn, page: Any) -> None:
    from playwright.sync_api import expect

    shop = seed(conn)
    login(page, api.url, dsn, EMAIL)
    page.goto(f"{api.url}/services/shop")
    form = page.locator("#edit-service")
    expect(form.locator("input[name=retries]")).to_have_value("0")
    form.locator("input[name=expected_status]").fill("204")
    form.locator("input[name=body_contains]").fill("ready")
    form.locator("input[name=retries]").fill("3")
    form.locator("input[name=interval]").fill("45")
    form.locator("input[name=timeout]").fill("4")
    form.locator("button[type=submit]").click()
    expect(page.locator(".notice.success")).to_contain_text("Settings saved")
    row = conn.execute(
        "select extract(epoch from check_interval)::int, extract(epoch from timeout)::int, "
        "expected_status, body_contains, retries from vigil.services where id = %s",
        (shop,),
    ).fetchone()
    assert row == (45, 4, 204, "ready", 3)
    expect(page.locator("main, body").first).to_contain_text("expects HTTP 204")

    # An internal URL without "internal": a form error, nothing saved, no CLI flag named.
    form.locator("input[name=url]").fill("http://127.0.0.1:9/health")
    form.locator("input[name=allow_internal]").uncheck()
    form.locator("button[type=submit]").click()
    error = page.locator(".notice.error")
    expect(error).to_contain_text("127.0.0.1 is a loopback address")
    expect(error).to_contain_text("Tick “Internal”")
    assert "--" not in error.inner_text()
    expect(page.locator("#edit-service input[name=url]")).to_have_value("http://127.0.0.1:9/health")
    assert conn.execute("select url from vigil.services").fetchone() == (
        "https://shop.example/health",
    )
    page.screenshot(path="/tmp/service-edit-error.png", full_page=True)
    page.locator("#edit-service input[name=allow_internal]").check()
    page.locator("#edit-service button[type=submit]").click()
    expect(page.locator(".notice.success")).to_contain_text("Settings saved")
    assert conn.execute("select url, allow_internal from vigil.services").fetchone() == (
        "http://127.0.0.1:9/health",
        True,
    )

    page.click("#pause-service button")
    expect(page.locator(".notice.success")).to_contain_text("Paused")
    expect(page.locator("#service-state")).to_have_text("paused")
    assert conn.execute("select enabled from vigil.services").fetchone() == (False,)
    page.goto(api.url + "/services")
    expect(page.locator(f"#service-{shop}")).to_contain_text("paused")
    page.goto(f"{api.url}/services/{shop}")
    page.click("#pause-service button")
    expect(page.locator(".notice.success")).to_contain_text("Resumed")
    assert conn.execute("select enabled from vigil.services").fetchone() == (True,)

    # A service not checked yet: the chart says so; uptime and incidents are empty.
    add(conn, "fresh", "https://fresh.example/", allow_internal=False)
    page.goto(f"{api.url}/services/fresh")
    expect(page.locator("#chart")).to_have_text("No checks in the last 24 hours yet.")
    expect(page.locator("#uptime tbody td").first).to_have_text("\u2013")
    expect(page.locator("#incidents tbody")).to_contain_text("No downtime in the last 90 days")
    page.screenshot(path="/tmp/service-empty.png", full_page=True)


def test_add_form_has_every_setting_and_refuses_internal(
    api: ApiServer, dsn: str, conn: Conn
) -> None:
    with login_client(api.url, dsn, EMAIL) as client:
        form = {"name": "lan", "url": "http://10.1.2.3/health", "interval": "30",
                "timeout": "5", "expected_status": "204", "body_contains": "ok",
                "retries": "4"}  # fmt: skip
        r = client.post("/services", data=form)
        assert r.status_code == 400
        assert "10.1.2.3 is a private address" in r.text and "--allow" not in r.text
        r = client.post("/services", data={**form, "url": "http://localhost:1/"})
        assert r.status_code == 400 and "localhost resolves to" in r.text
        assert conn.execute("select count(*) from vigil.services").fetchone() == (0,)
        r = client.post("/services", data={**form, "allow_internal": "on"})
        assert r.status_code == 303
        row = conn.execute(
            "select extract(epoch from check_interval)::int, extract(epoch from timeout)::int, "
            "expected_status, body_contains, retries, allow_internal from vigil.services"
        ).fetchone()
        assert row == (30, 5, 204, "ok", 4, True)
        for bad, reason in (
            ({"expected_status": "abc"}, "whole numbers"),
            ({"expected_status": "700"}, "use 100 to 599"),
            ({"retries": "11"}, "use 0 to 10"),
        ):
            r = client.post("/services", data={**form, "name": "x", **bad, "allow_internal": "on"})
            assert r.status_code == 400 and reason in r.text, r.text[:200]
        # Unknown services: a 404 page, and edits of them are refused.
        assert client.get("/services/nope").status_code == 404
        assert client.post("/services/nope/edit", data=form).status_code == 404
        assert client.post("/services/nope/pause", data={}).status_code == 404
        # A check refused by the prober's guard: the page names the setting, not a CLI flag.
        lan = conn.execute("select id from vigil.services where name = 'lan'").fetchone()
        assert lan is not None
        conn.execute("update vigil.services set allow_internal = false")
        conn.execute(
            "select vigil.record_check(%s, now(), null, null, %s, null)",
            (lan[0], "refused: 10.1.2.3 is a private address (allow with --allow-internal)"),
        )
        for path in ("/services", "/services/lan"):
            text = client.get(path).text
            assert "10.1.2.3 is a private address (tick “Internal”" in text
            assert "--allow-internal" not in text
    # Without the CSRF token: refused, nothing changes.
    with login_client(api.url, dsn, EMAIL) as client:
        del client.headers["X-CSRF-Token"]
        assert client.post("/services/lan/pause", data={"paused": "true"}).status_code == 403
        assert client.post("/services/lan/edit", data={**form, "retries": "1"}).status_code == 403
    assert conn.execute("select enabled, retries from vigil.services").fetchone() == (True, 4)
    # Signed out: to the login page.
    r = httpx.get(api.url + "/services/lan", timeout=10)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
