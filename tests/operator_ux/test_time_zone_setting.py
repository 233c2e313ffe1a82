"""The per-user time zone: vigil.user_set_time_zone (IANA names PostgreSQL knows, null = the
browser's zone), the Settings page (CSRF, validation, post/redirect/get), the zone named in
every page's <meta name="vigil-tz"> for that user only, and a local time typed into a form
(the silence's end) read in the viewer's zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import ApiServer
from tests.operator_ux.zones import ZONE, Conn
from tests.support.login import login, login_client

EMAIL = "ann@example.com"
META = re.compile(r'<meta name="vigil-tz" content="([^"]*)">')


def zone_of(conn: Conn, email: str) -> object:
    row = conn.execute("select time_zone from vigil.users where email = %s", (email,)).fetchone()
    assert row is not None
    return row[0]


def test_the_zone_is_stored_per_user_and_checked(conn: Conn) -> None:
    conn.execute("select vigil.user_add('ann@example.com'), vigil.user_add('bob@example.com')")
    assert zone_of(conn, EMAIL) is None  # the browser's zone until chosen
    set_zone = "select vigil.user_set_time_zone(%s, %s)"
    assert conn.execute(set_zone, (" Ann@Example.com ", ZONE)).fetchone() == (True,)
    assert (zone_of(conn, EMAIL), zone_of(conn, "bob@example.com")) == (ZONE, None)
    with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
        conn.execute(set_zone, (EMAIL, "Mars/Olympus_Mons"))
    assert refused.value.diag.message_primary == 'unknown time zone "Mars/Olympus_Mons"'
    assert zone_of(conn, EMAIL) == ZONE  # unchanged
    assert conn.execute(set_zone, ("nobody@example.com", ZONE)).fetchone() == (False,)
    assert conn.execute(set_zone, (EMAIL, "")).fetchone() == (True,)
    assert zone_of(conn, EMAIL) is None
    with pytest.raises(psycopg.errors.CheckViolation):  # the column's own limit
        conn.execute("update vigil.users set time_zone = '' where email = %s", (EMAIL,))


def test_settings_page_sets_the_zone_of_every_page(api: ApiServer, dsn: str, conn: Conn) -> None:
    with login_client(api.url, dsn, EMAIL) as ann, login_client(api.url, dsn, "bob@x.org") as bob:
        page = ann.get("/settings")
        assert page.status_code == 200
        assert '<option value="" selected>Browser default</option>' in page.text
        assert f"<option>{ZONE}</option>" in page.text and "<option>UTC</option>" in page.text
        assert "posix/" not in page.text and META.search(page.text) is None
        assert 'href="/settings"' in ann.get("/").text  # the user menu links to it
        # CSRF: refused without the session's token
        refused = ann.post("/settings", data={"time_zone": ZONE}, headers={"X-CSRF-Token": ""})
        assert refused.status_code == 403 and zone_of(conn, EMAIL) is None
        saved = ann.post("/settings", data={"time_zone": ZONE})
        assert saved.status_code == 303 and saved.headers["location"] == "/settings?saved=1"
        assert zone_of(conn, EMAIL) == ZONE
        shown = ann.get("/settings?saved=1").text
        assert f"<option selected>{ZONE}</option>" in shown
        assert f"pages now show times in <strong>{ZONE}</strong>" in " ".join(shown.split())
        for path in ("/", "/alerts", "/journal", "/charts", "/services", "/tokens", "/trace"):
            r = ann.get(path)
            assert r.status_code == 200, path
            assert META.findall(r.text) == [ZONE], path
            assert META.search(bob.get(path).text) is None, path  # only for its user
        bad = ann.post("/settings", data={"time_zone": "Mars/Olympus_Mons"})
        assert bad.status_code == 400
        assert "unknown time zone &#34;Mars/Olympus_Mons&#34;" in bad.text
        assert ann.post("/settings", data={"time_zone": "x" * 65}).status_code == 400
        assert zone_of(conn, EMAIL) == ZONE
        assert ann.post("/settings", data={"time_zone": ""}).status_code == 303
        assert zone_of(conn, EMAIL) is None and META.search(ann.get("/").text) is None
    assert httpx.get(api.url + "/settings").status_code == 303  # sign in first


@pytest.mark.browser
def test_a_silence_ends_at_the_local_time_typed(
    browser: Any, api: ApiServer, dsn: str, conn: Conn
) -> None:
    """The silence form's "until" is read in the viewer's zone (Kathmandu, +05:45)."""
    context = browser.new_context(timezone_id=ZONE, locale="en-GB")
    try:
        page = context.new_page()
        login(page, api.url, dsn, EMAIL)
        page.goto(api.url + "/silences")
        assert page.locator("#add-silence [data-tz-name]").inner_text() in (ZONE, "Asia/Katmandu")
        page.fill("#s-until", "2999-01-01T10:00")
        page.fill("#s-comment", "until a local ten o'clock")
        page.click("#add-silence button[type=submit]")
        page.wait_for_url("**/silences?done=added")
        row = conn.execute("select ends_at from vigil.silences").fetchone()
        assert row is not None
        assert row[0] == datetime(2999, 1, 1, 4, 15, tzinfo=UTC)  # 10:00 in Kathmandu
    finally:
        context.close()
