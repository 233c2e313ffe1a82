"""The operator pages in headless Chromium: Google sign-in via the fake provider, the
dashboard turning red and back, auto-refresh keeping the filter, delete, metric page,
tokens, and a CSRF-less POST rejected."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.conftest import ApiServer, screenshot
from tests.support.fake_oidc import FakeOidc
from tests.support.login import login

Conn = psycopg.Connection[tuple[object, ...]]

pytestmark = pytest.mark.browser


def report(conn: Conn, *metrics: tuple[str, str, str, str]) -> None:
    """Reports each (host, name, type, value) as metrics-sender does, at the database's now."""
    for metric in metrics:
        conn.execute("select vigil.ingest_metric(%s, %s, %s, %s, now())", metric)


def row_class(page: Any, text: str) -> str:
    return str(page.locator("#metrics tbody tr", has_text=text).get_attribute("class"))


def test_google_sign_in_in_the_browser(
    page: Any, google_api: ApiServer, oidc: FakeOidc, conn: Conn
) -> None:
    conn.execute("select vigil.user_add('ann@example.com')")
    page.goto(google_api.url + "/tokens")
    page.wait_for_url("**/login?next=*")
    screenshot(page, "login-google")
    page.click("#google")
    page.wait_for_url(google_api.url + "/tokens")
    assert page.locator(".who").inner_text() == "ann@example.com"
    page.click("header form.logout button")
    page.wait_for_url("**/login?out=1")
    assert "You are signed out" in page.content()
    assert conn.execute("select count(*) from vigil.sessions").fetchone() == (0,)


def test_google_sign_in_refused_for_unknown_email(
    page: Any, google_api: ApiServer, oidc: FakeOidc, conn: Conn
) -> None:
    oidc.email = "mallory@example.com"
    page.goto(google_api.url + "/login")
    page.click("#google")
    page.wait_for_selector(".notice.error")
    assert "mallory@example.com is not allowed" in page.inner_text(".notice.error")
    screenshot(page, "login-refused")
    page.goto(google_api.url + "/")
    assert "/login" in page.url


def test_dashboard_turns_red_on_alert_and_back(
    page: Any, api: ApiServer, dsn: str, conn: Conn
) -> None:
    report(conn, ("web-1", "backup", "ping", "60"), ("db-1", "disk /", "disk", "42"))
    login(page, api.url, dsn, "ann@example.com")
    assert row_class(page, "disk /") == "ok"
    screenshot(page, "dashboard-ok")

    report(conn, ("db-1", "disk /", "disk", "97"))
    page.reload()
    first = page.locator("#metrics tbody tr").first
    assert "disk /" in first.inner_text()  # alerts first
    assert first.get_attribute("class") == "alert"
    bg = first.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert bg not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
    screenshot(page, "dashboard-alert")

    report(conn, ("db-1", "disk /", "disk", "50"))
    page.reload()
    assert row_class(page, "disk /") == "ok"


def test_auto_refresh_in_place_keeps_the_filter(
    page: Any, api: ApiServer, dsn: str, conn: Conn
) -> None:
    report(conn, ("db-1", "disk /", "disk", "42"), ("web-1", "disk /", "disk", "10"))
    login(page, api.url, dsn, "ann@example.com")
    page.select_option("select[name=host]", "db-1")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/?host=db-1*")
    page.evaluate("document.body.dataset.marker = 'same-page'")
    report(conn, ("db-1", "disk /", "disk", "99"), ("web-1", "disk /", "disk", "99"))
    page.wait_for_selector("#metrics tbody tr.alert", timeout=15_000)
    assert page.evaluate("document.body.dataset.marker") == "same-page"  # no reload
    rows = page.locator("#metrics tbody tr")
    assert rows.count() == 1 and "db-1" in rows.first.inner_text()
    assert page.inner_text("#alert-count") == "1"
    # The session ends (e.g. the user was removed): the next refresh goes to /login.
    conn.execute("delete from vigil.sessions")
    page.wait_for_url("**/login?next=%2F%3Fhost%3Ddb-1*", timeout=15_000)


def test_delete_with_confirmation(page: Any, api: ApiServer, dsn: str, conn: Conn) -> None:
    report(conn, ("web-1", "backup", "ping", "60"), ("web-2", "backup", "ping", "60"))
    login(page, api.url, dsn, "ann@example.com")
    messages: list[str] = []

    def answer(dialog: Any) -> None:
        messages.append(dialog.message)
        if len(messages) == 1:
            dialog.dismiss()
        else:
            dialog.accept()

    page.on("dialog", answer)
    button = page.locator("#metrics tr", has_text="web-1").get_by_role("button", name="Delete")
    button.click()
    assert messages == ["Really delete metric web-1 - backup?"]
    page.wait_for_timeout(300)
    assert conn.execute("select count(*) from vigil.metrics").fetchone() == (2,)
    button.click()
    page.wait_for_selector("#metrics tr:has-text('web-1')", state="detached")
    assert conn.execute("select host from vigil.metrics").fetchall() == [("web-2",)]
    screenshot(page, "dashboard-deleted")


def test_metric_page_shows_transitions_and_delivery(
    page: Any, api: ApiServer, dsn: str, conn: Conn
) -> None:
    report(
        conn,
        ("db-1", "disk /", "disk", "97"),
        ("db-1", "disk /", "disk", "40"),
        ("db-1", "disk /", "disk", "98"),
    )
    ids = [r[0] for r in conn.execute("select id from vigil.outbox order by id").fetchall()]
    conn.execute(
        "update vigil.outbox set status = 'delivered', delivered_at = now() where id = %s",
        (ids[0],),
    )
    conn.execute(
        "update vigil.outbox set status = 'dead', last_error = 'chat not found' where id = %s",
        (ids[1],),
    )
    conn.execute(
        "update vigil.outbox set attempts = 3, last_error = 'HTTP 502',"
        " next_attempt_at = now() + interval '5 min' where id = %s",
        (ids[2],),
    )
    login(page, api.url, dsn, "ann@example.com")
    page.click("#metrics a:has-text('disk /')")
    page.wait_for_selector("#transitions")
    cells = page.locator("#transitions td.delivery").all_inner_texts()
    assert len(cells) == 3
    assert cells[0].startswith("retrying, next attempt at") and "HTTP 502" in cells[0]
    assert cells[1].startswith("dead letter: chat not found")
    assert cells[2].startswith("delivered at")
    assert "Alert: db-1 - disk / Value: 98" in page.inner_text("#transitions")
    screenshot(page, "metric-page")


def test_tokens_create_once_and_revoke(page: Any, api: ApiServer, dsn: str, conn: Conn) -> None:
    import httpx

    login(page, api.url, dsn, "ann@example.com")
    page.click("nav >> text=Tokens")
    page.fill("#create-token input[name=name]", "web-1 backups")
    page.click("#create-token button[type=submit]")
    token = page.inner_text("#token-value").strip()
    assert token.startswith("vgl_")
    screenshot(page, "tokens-created")
    sent = httpx.post(
        api.url + "/metric",
        headers={"Authorization": f"Bearer {token}"},
        json={"host": "h", "name": "n", "type": "ping"},
    )
    assert sent.status_code == 200
    page.goto(api.url + "/tokens")
    assert token not in page.content()  # shown only once
    row = page.locator("#tokens tr", has_text="web-1 backups")
    assert "ago" in row.locator("td").nth(2).inner_text()  # last use
    page.on("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Revoke").click()
    page.wait_for_url("**/tokens?revoked=*")
    assert "revoked" in row.inner_text()
    screenshot(page, "tokens-revoked")
    revoked = conn.execute("select revoked_at is not null from vigil.tokens").fetchone()
    assert revoked == (True,)


def test_csrf_less_post_is_rejected(page: Any, api: ApiServer, dsn: str, conn: Conn) -> None:
    report(conn, ("web-1", "backup", "ping", "60"))
    row = conn.execute("select id from vigil.metrics").fetchone()
    assert row is not None
    login(page, api.url, dsn, "ann@example.com")
    status = page.evaluate(
        """async (id) => {
             const r = await fetch('/metrics/' + id + '/delete', {method: 'POST'});
             return r.status;
           }""",
        row[0],
    )
    assert status == 403
    status = page.evaluate(
        """async () => {
             const body = new URLSearchParams({name: 'sneaky'});
             const r = await fetch('/tokens', {method: 'POST', body});
             return r.status;
           }"""
    )
    assert status == 403
    assert conn.execute("select count(*) from vigil.metrics").fetchone() == (1,)
    assert conn.execute("select count(*) from vigil.tokens").fetchone() == (0,)


def test_phone_and_dark_mode(browser: Any, api: ApiServer, dsn: str, conn: Conn) -> None:
    report(conn, ("db-1", "disk /", "disk", "97"), ("web-1", "nightly backup", "ping", "1440"))
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True
    )
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        login(page, api.url, dsn, "ann@example.com")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(17, 20, 24)"
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # no sideways scrolling of the page (tables scroll in place)
        screenshot(page, "dashboard-phone-dark")
        assert errors == []  # e.g. no CSP violations
    finally:
        context.close()
