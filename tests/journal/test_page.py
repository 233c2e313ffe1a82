"""The journal page in headless Chromium: login, filters, keyset paging, live tail, and
hostile log lines shown literally under a strict CSP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ApiServer, screenshot
from tests.support.login import login, login_client

pytestmark = pytest.mark.browser

BASE_US = int(time.time() * 1_000_000) - 3_600_000_000  # one hour ago


def entry(
    i: int,
    message: str,
    host: str = "web-1",
    unit: str = "nginx.service",
    priority: int = 6,
    **extra: str,
) -> str:
    return json.dumps(
        {
            "__REALTIME_TIMESTAMP": str(BASE_US + i * 60_000_000),
            "_HOSTNAME": host,
            "_SYSTEMD_UNIT": unit,
            "PRIORITY": str(priority),
            "MESSAGE": message,
            "_PID": str(100 + i),
            **extra,
        }
    )


def send(api: ApiServer, token: str, lines: list[str]) -> dict[str, Any]:
    r = httpx.post(f"{api.url}/t/{token}/journal", json={"logs": "\n".join(lines)})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
def ny_page(browser: Any) -> Iterator[Any]:
    """A page whose browser runs in New York time."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id="America/New_York"
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def messages(page: Any) -> list[str]:
    return [str(t) for t in page.locator("#journal-rows .msg").all_inner_texts()]


def test_page_needs_login(api: ApiServer, dsn: str) -> None:
    r = httpx.get(api.url + "/journal?host=x", follow_redirects=False)
    assert r.status_code in (302, 303)
    assert r.headers["location"].startswith("/login")
    with login_client(api.url, dsn, "ann@example.com") as client:
        r = client.get("/journal?start=bad")
        assert r.status_code == 400
        assert "start must be YYYY-MM-DDTHH:MM, e.g. 2026-03-01T14:30" in r.text
        r = client.get("/journal")
        assert r.status_code == 200
        assert "script-src 'self'" in r.headers["content-security-policy"]


def test_filters_and_keyset_paging(ny_page: Any, api: ApiServer, dsn: str, token: str) -> None:
    page = ny_page
    lines = [entry(i, f"request {i:02d} ok", host="web-1" if i % 2 else "db-1") for i in range(12)]
    lines.append(
        entry(
            12,
            "disk FULL on /var",
            host="db-1",
            unit="disk.service",
            priority=2,
            CONTAINER_NAME="pg",
        )
    )
    assert send(api, token, lines)["accepted"] == 13
    login(page, api.url, dsn, "ann@example.com")
    page.goto(api.url + "/journal")
    assert messages(page)[0] == "disk FULL on /var"
    assert len(messages(page)) == 13
    assert page.locator("[data-tz-name]").inner_text() == "America/New_York"
    first = page.locator("#journal-rows time").first
    utc = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime((BASE_US + 12 * 60_000_000) / 1e6))
    assert first.get_attribute("title").startswith(utc)
    ny = time.strftime("%Y-%m-%d %H:%M", time.gmtime((BASE_US + 12 * 60_000_000) / 1e6 - 5 * 3600))
    assert first.inner_text().startswith(ny)  # New York is UTC-5 in November
    assert first.inner_text().endswith((" EST", " GMT-5"))
    # filters: case-insensitive substring, host, priority, unit
    page.fill("input[name=filter]", "full")
    page.click("#journal-filters button[type=submit]")
    assert messages(page) == ["disk FULL on /var"]
    page.goto(api.url + "/journal?host=web-1&pageSize=2")
    assert messages(page) == ["request 11 ok", "request 09 ok"]
    page.goto(api.url + "/journal?priority=3")
    assert messages(page) == ["disk FULL on /var"]
    page.goto(api.url + "/journal?unit=disk.service&container=pg")
    assert messages(page) == ["disk FULL on /var"]
    # the full entry expands
    page.locator("#journal-rows summary").first.click()
    assert '"CONTAINER_NAME": "pg"' in page.locator("#journal-rows .fields").first.inner_text()
    screenshot(page, "journal_filters")
    # keyset paging, 5 per page, while new lines arrive
    first_page = ["disk FULL on /var", *(f"request {i:02d} ok" for i in (11, 10, 9, 8))]
    page.goto(api.url + "/journal?pageSize=5")
    assert messages(page) == first_page
    send(api, token, [entry(30, "newer line arrived")])
    page.click("#page-older")
    assert messages(page) == [f"request {i:02d} ok" for i in (7, 6, 5, 4, 3)]
    page.click("#page-older")
    assert messages(page) == [f"request {i:02d} ok" for i in (2, 1, 0)]
    assert page.locator("#page-older").count() == 0
    page.click("#page-newer")
    assert messages(page) == [f"request {i:02d} ok" for i in (7, 6, 5, 4, 3)]
    screenshot(page, "journal_paging")
    page.click("#page-newer")  # exactly the 5 lines above the page, not shifted by the new one
    assert messages(page) == first_page
    page.click("#page-newer")  # the start: a full first page, with the line that arrived
    assert messages(page)[:2] == ["newer line arrived", "disk FULL on /var"]
    assert len(messages(page)) == 5
    assert page.locator("#page-newer").count() == 0
    # oldest first, with an inclusive time range in the seed's format (UTC without tz) ...
    start = time.strftime("%Y-%m-%dT%H:%M", time.gmtime((BASE_US + 60_000_000) / 1e6))
    end = time.strftime("%Y-%m-%dT%H:%M", time.gmtime((BASE_US + 3 * 60_000_000) / 1e6))
    page.goto(api.url + f"/journal?order=oldest&start={start}&end={end}&page=3")
    assert messages(page) == ["request 01 ok", "request 02 ok", "request 03 ok"]
    # ... and typed in the form in the viewer's zone (journal.js fills in tz)
    page.goto(api.url + "/journal?order=oldest")
    local = time.strftime("%Y-%m-%dT%H:%M", time.gmtime((BASE_US + 60_000_000) / 1e6 - 5 * 3600))
    page.fill("input[name=start]", local)
    page.fill("input[name=end]", local)
    page.click("#journal-filters button[type=submit]")
    assert "tz=America%2FNew_York" in page.url
    assert messages(page) == ["request 01 ok"]


def test_live_tail(page: Any, api: ApiServer, dsn: str, token: str) -> None:
    send(api, token, [entry(1, "before tail")])
    login(page, api.url, dsn, "ann@example.com")
    page.goto(api.url + "/journal")
    page.click("#tail-toggle")
    page.wait_for_selector("#live-state")
    late = json.dumps(
        {
            "__REALTIME_TIMESTAMP": str(int(time.time() * 1e6)),
            "_HOSTNAME": "web-9",
            "MESSAGE": "tailed line",
        }
    )
    send(api, token, [late])
    page.wait_for_selector("#journal-rows li.entry >> text=tailed line", timeout=10_000)
    assert messages(page) == ["tailed line", "before tail"]
    screenshot(page, "journal_live_tail")


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "\x1b[31mred alert\x1b[0m",
    "invoice \u202efdp.exe",
]


def test_hostile_lines_shown_literally(page: Any, api: ApiServer, dsn: str, token: str) -> None:
    send(api, token, [entry(i, m, host="<b>evil</b>") for i, m in enumerate(HOSTILE)])
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    login(page, api.url, dsn, "ann@example.com")
    page.goto(api.url + "/journal?order=oldest")
    shown = messages(page)
    assert shown == [
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
        "\\x1b[31mred alert\\x1b[0m",
        "invoice \\u202efdp.exe",
    ]
    assert page.locator("#journal-rows img, #journal-rows script, #journal-rows b").count() == 0
    assert page.locator("#journal-rows .host").first.inner_text() == "<b>evil</b>"
    page.locator("#journal-rows summary").nth(3).click()
    assert "\\u202e" in page.locator("#journal-rows .fields").nth(3).inner_text()
    page.wait_for_timeout(300)
    assert dialogs == []
    screenshot(page, "journal_hostile")
