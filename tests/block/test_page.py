"""The /blocks page in Chromium: an operator blocks an address, sees it listed, allows a
network, and is refused with the database's reason when blocking inside it; then removes the
block. Desktop (1366) and phone (390) width, light and dark, no sideways scrolling, no
console errors (CSP); screenshots in test-artifacts/. And the forms' CSRF check."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.conftest import ApiServer, screenshot
from tests.support.browser import assert_fits, views
from tests.support.login import login, login_client

Conn = psycopg.Connection[tuple[object, ...]]
EMAIL = "ops@example.com"


@pytest.mark.browser
def test_block_allow_and_remove_in_chromium(
    browser: Any, api: ApiServer, dsn: str, conn: Conn
) -> None:
    from playwright.sync_api import expect

    conn.execute("select vigil.block_add('198.51.100.0/24', '7 days', 'botnet <script>x</script>')")
    conn.execute(
        "insert into vigil.blocked_networks (network, reason, added_at, expires_at)"
        " values ('198.18.0.1', 'old', now() - interval '2 hours', now() - interval '1 hour')"
    )
    for width, scheme, page, errors in views(browser):
        page.on("dialog", lambda d: d.accept())
        login(page, api.url, dsn, EMAIL)
        page.goto(api.url + "/blocks")
        expect(page.locator("nav[aria-label=main] a[aria-current=page]")).to_have_text("Blocks")
        # Autoescaped: the reason is text, not markup.
        expect(page.locator("#blocks")).to_contain_text("botnet <script>x</script>")
        expect(page.locator("#expired-blocks")).to_contain_text("198.18.0.1")
        if width == 1366 and scheme == "light":
            page.fill("#b-network", "203.0.113.7")
            page.fill("#b-duration", "2h")
            page.fill("#b-reason", "scanning wp-login")
            page.click("#add-block button[type=submit]")
            expect(page.locator("#done")).to_contain_text("Blocked")
            row = page.locator("#blocks tr", has_text="203.0.113.7")
            expect(row).to_contain_text("scanning wp-login")
            expect(row).to_contain_text(EMAIL)
            page.fill("#a-network", "192.0.2.0/24")
            page.fill("#a-reason", "office")
            page.click("#add-allow button[type=submit]")
            expect(page.locator("#allowed")).to_contain_text("192.0.2.0/24")
            page.fill("#b-network", "192.0.2.9")
            page.click("#add-block button[type=submit]")
            expect(page.locator("#form-error")).to_contain_text(
                "192.0.2.9 overlaps the allow list entry 192.0.2.0/24 (office)"
            )
            expect(page.locator("#b-network")).to_have_value("192.0.2.9")  # kept
            errors.remove(  # the refusal's own 400, expected
                "Failed to load resource: the server responded with a status of 400 (Bad Request)"
            )
        assert_fits(page, width, scheme)
        screenshot(page, f"blocks-{width}-{scheme}")
        if width == 390 and scheme == "dark":
            page.locator("#blocks tr", has_text="203.0.113.7").locator("button").click()
            expect(page.locator("#done")).to_contain_text("Block removed")
            expect(page.locator("#blocks")).not_to_contain_text("203.0.113.7")
        assert errors == []
    rows = conn.execute("select network::text from vigil.active_blocks order by 1").fetchall()
    assert rows == [("198.51.100.0/24",)]


def test_forms_need_the_csrf_token(api: ApiServer, dsn: str, conn: Conn) -> None:
    with login_client(api.url, dsn, EMAIL) as client:
        r = client.post("/blocks", data={"network": "203.0.113.7", "duration": "1h"})
        assert r.status_code == 303
        del client.headers["X-CSRF-Token"]
        r = client.post("/blocks/remove", data={"network": "203.0.113.7"})
        assert r.status_code == 403
        assert conn.execute("select count(*) from vigil.active_blocks").fetchone() == (1,)
        r = client.post("/blocks", data={"network": "nonsense", "csrf_token": "wrong"})
        assert r.status_code == 403
