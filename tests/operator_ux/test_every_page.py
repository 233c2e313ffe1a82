"""Every page in headless Chromium, at 1366 px and 390 px, light and dark, for a viewer in
Asia/Kathmandu (+05:45): the operator's pages signed in, the public status page, the login
page and the 404 page without a login. On each: no console errors, no sideways scrolling on
a phone, the theme's background, and every time on the page (<time datetime>) shown in the
viewer's zone with UTC on hover. Then the per-user zone: a viewer whose browser is in New
York who chose Asia/Kathmandu in Settings sees +05:45 everywhere, charts included.
Screenshots: $TMPDIR/vigil-pages/<page>-<width>-<scheme>.png.

New pages go into PAGES (signed in) or PUBLIC_PAGES (no login); a path may name the seeded
ids ({metric}, {service}, {rule}, {trace}, {slug})."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import ApiServer
from tests.operator_ux.zones import ZONE, ZONE_NAMES, Conn, check_title
from tests.public.scenario import seed as seed_public
from tests.series import cases
from tests.support.browser import console_errors, views
from tests.support.login import login
from tests.trace.data import TRACE
from tests.trace.data import seed as seed_trace

pytestmark = pytest.mark.browser
EMAIL = "ann@example.com"
KTM = ZoneInfo(ZONE)
SHOTS = Path(tempfile.gettempdir()) / "vigil-pages"

# (name, path): the pages behind the login, then those anyone may open.
PAGES: tuple[tuple[str, str], ...] = (
    ("dashboard", "/"),
    ("metric", "/metrics/{metric}"),
    ("alerts", "/alerts"),
    ("rules", "/rules"),
    ("rule-new", "/rules/new"),
    ("rule-edit", "/rules/{rule}/edit"),
    ("silences", "/silences"),
    ("journal", "/journal"),
    ("requests", "/requests"),
    ("requests-overview", "/requests/overview"),
    ("trace", "/trace/{trace}"),
    ("charts", "/charts?name=cpu&range=24h"),
    ("services", "/services"),
    ("service", "/services/{service}"),
    ("blocks", "/blocks"),
    ("tokens", "/tokens"),
    ("settings", "/settings"),
)
PUBLIC_PAGES: tuple[tuple[str, str], ...] = (
    ("status", "/status/{slug}"),
    ("login", "/login"),
    ("not-found", "/no-such-page"),
)
# the per-user zone is checked on these (each renders times with a different script)
OVERRIDE_CHECKED = ("dashboard", "metric", "alerts", "journal", "trace", "service")
# pages whose times are drawn after the page loaded (by a fetch), waited for by this selector
READY = {"charts": "#chart canvas", "metric": "#metric-chart canvas"}


def seed(api: ApiServer, token: str, conn: Conn) -> dict[str, str]:
    """Something on every page: metrics (one late ping with its alert), services with an
    incident, journal lines and web requests of one trace, a series, a silence, a status
    page, a blocked network. Returns the ids the paths name."""
    scenario = seed_public(conn)
    seed_trace(conn)
    for name, kind, value in (("backup-nightly-database-dump", "ping", None), ("/", "disk", "91")):
        body: dict[str, Any] = {"host": "web-1.example.org", "name": name, "type": kind}
        if value is not None:
            body["value"] = value
        r = httpx.post(api.url + "/metric", json=body, headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    points = [(now - timedelta(minutes=10 * i), 40 + (i * 7) % 23 + 0.123) for i in range(144)]
    cases.insert_points(conn, "cpu", {"host": "web-1"}, points)
    cases.insert_points(conn, "cpu", {"host": "db-1"}, [(t, v / 2) for t, v in points])
    conn.execute("select vigil.refresh_series_rollups(now(), '{}')")
    conn.execute(
        "select vigil.silence_add('disk', '{\"host\": \"web-1.example.org\"}', '2 hours',"
        " 'kernel upgrade on web-1', %s)",
        (EMAIL,),
    )
    conn.execute("select vigil.block_add('198.51.100.0/24', '7 days', 'scanner')")
    conn.execute(
        "select vigil.status_page_add('acme', 'Acme status', array['api', 'db'],"
        " array['secret-host-7/backup'])"
    )
    rule = conn.execute("select name from vigil.alert_rules order by name limit 1").fetchone()
    assert rule is not None
    return {
        "metric": str(scenario.metric_id),
        "service": str(scenario.db_id),
        "rule": str(rule[0]),
        "trace": TRACE,
        "slug": "acme",
    }


def check_times(page: Any, name: str) -> int:
    """Every rendered time on the page is in the viewer's zone (its local hour and minute in
    the text or the hover title) with UTC on hover; returns how many there are."""
    times = page.eval_on_selector_all(
        "time[datetime]",
        "els => els.map(e => [e.getAttribute('datetime'), e.textContent.trim(), e.title,"
        " e.hasAttribute('data-clock')])",
    )
    for stamp, text, title, clock in times:
        at = datetime.fromisoformat(stamp)
        local = at.astimezone(KTM).strftime("%H:%M")
        utc = at.astimezone(UTC).strftime("%H:%M")
        assert "UTC" in title and utc in title, (name, stamp, text, title)  # UTC on hover
        assert local in text or local in title, (name, stamp, text, title)  # the viewer's zone
        if clock:  # rendered by vigil.js: UTC, then the local time with its offset
            check_title(title)
    return len(times)


def visit(page: Any, url: str, name: str, width: int, scheme: str) -> int:
    page.goto(url)
    if name in READY:
        page.wait_for_selector(READY[name])
    page.wait_for_load_state("load")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgba(0, 0, 0, 0)", name
    dark = sum(int(c) for c in background[4:-1].split(",")[:3]) < 3 * 80
    assert dark == (scheme == "dark"), (name, scheme, background)
    # no sideways scrolling: neither the page nor, on a phone, a table inside it
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, (name, width, scroll)
    if width < 500:
        wide = page.eval_on_selector_all(
            ".table-wrap",
            "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e =>"
            " (e.querySelector('table') || e).id || e.className)",
        )
        assert wide == [], (name, wide)
    page.screenshot(path=str(SHOTS / f"{name}-{width}-{scheme}.png"), full_page=True)
    if width < 500 and name == "services":  # the list first; the add form behind a button
        from playwright.sync_api import expect

        expect(page.locator("#add-service")).to_be_hidden()
        page.click("#add-service-toggle")
        expect(page.locator("#add-service")).to_be_visible()
    return check_times(page, name)


def test_every_page_at_desktop_and_phone_width_light_and_dark(
    browser: Any, api: ApiServer, dsn: str, token: str, conn: Conn
) -> None:
    ids = seed(api, token, conn)
    SHOTS.mkdir(exist_ok=True)
    counts: dict[str, int] = {}
    for width, scheme, page, errors in views(
        browser, height=860, page_errors=True, timezone_id=ZONE, locale="en-GB"
    ):
        for name, path in PUBLIC_PAGES:
            counts[name] = visit(page, api.url + path.format(**ids), name, width, scheme)
            if name == "not-found":  # the 404 itself is logged by Chromium as an error
                errors[:] = [e for e in errors if "404" not in e]
        assert page.evaluate("window.vigilClock.zone") in ZONE_NAMES  # the browser's zone
        login(page, api.url, dsn, EMAIL)
        for name, path in PAGES:
            counts[name] = visit(page, api.url + path.format(**ids), name, width, scheme)
        assert errors == [], errors  # e.g. no CSP violations
    # the seeded times are on the pages that show them
    shown = ("dashboard", "metric", "alerts", "silences", "journal", "requests", "trace")
    for name in (*shown, "services", "service", "blocks", "tokens", "settings"):
        assert counts[name] > 0, (name, counts)
    assert counts["status"] >= 2, counts


def test_the_users_zone_overrides_the_browsers(
    browser: Any, api: ApiServer, dsn: str, token: str, conn: Conn
) -> None:
    ids = seed(api, token, conn)
    from playwright.sync_api import expect

    context = browser.new_context(
        viewport={"width": 1366, "height": 860}, timezone_id="America/New_York", locale="en-GB"
    )
    try:
        page = context.new_page()
        errors = console_errors(page)
        login(page, api.url, dsn, EMAIL)
        # the browser's zone until the user chooses one
        assert page.locator('meta[name="vigil-tz"]').count() == 0
        assert page.evaluate("window.vigilClock.zone") == "America/New_York"
        page.click("a.who")  # the user menu: the email in the header opens Settings
        expect(page.locator("#time-zone")).to_have_value("")  # "Browser default"
        page.select_option("#time-zone", ZONE)
        page.click("#settings button[type=submit]")
        saved = page.locator(".notice.success")
        expect(saved).to_contain_text(f"Saved: pages now show times in {ZONE}")
        expect(page.locator("#time-zone")).to_have_value(ZONE)
        assert page.locator('meta[name="vigil-tz"]').get_attribute("content") == ZONE
        for name, path in PAGES:
            if name not in OVERRIDE_CHECKED:
                continue
            page.goto(api.url + path.format(**ids))
            if name in READY:
                page.wait_for_selector(READY[name])
            assert check_times(page, name) > 0, name
        # forms read their local times in the chosen zone: the journal's From/To, a silence's end
        page.goto(api.url + "/journal")
        expect(page.locator("#journal-filters input[name=tz]")).to_have_value(ZONE)
        page.goto(api.url + "/silences")
        expect(page.locator("#add-silence input[name=tz]")).to_have_value(ZONE)
        # the charts' From/To inputs and legend are in the chosen zone, not the browser's
        frm = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
        to = frm + timedelta(hours=6)
        page.goto(f"{api.url}/charts?name=cpu&from={frm:%Y-%m-%dT%H:%MZ}&to={to:%Y-%m-%dT%H:%MZ}")
        expect(page.locator("#from")).to_have_value("2026-11-22T15:45")
        expect(page.locator("#to")).to_have_value("2026-11-22T21:45")
        expect(page.locator(".zone-name").first).to_have_text("GMT+5:45")
        # the service chart's legend: the chosen zone
        page.goto(f"{api.url}/services/{ids['service']}")
        page.wait_for_selector("#chart canvas")
        assert page.evaluate("document.querySelector('#chart .u-legend th').textContent") == "Time"
        # "Browser default" gives the browser's zone back
        page.goto(api.url + "/settings")
        page.select_option("#time-zone", "")
        page.click("#settings button[type=submit]")
        expect(page.locator(".notice.success")).to_contain_text("your browser")
        assert page.locator('meta[name="vigil-tz"]').count() == 0
        page.goto(api.url + "/alerts")
        title = page.locator("main time[data-clock]").first.get_attribute("title") or ""
        check_title(title, -timedelta(hours=5), "-05:00")
        assert errors == [], errors
    finally:
        context.close()
