"""The public status page in headless Chromium without a login, at desktop and phone width,
light and dark: no horizontal scroll, no console errors, the colour scheme followed.
Screenshots: /tmp/public-WIDTH-SCHEME.png and test-artifacts/."""

from __future__ import annotations

import shutil
from typing import Any

import psycopg
import pytest

from tests.conftest import ApiServer, screenshot
from tests.public.scenario import API_URL, HOST, seed

pytestmark = pytest.mark.browser
Conn = psycopg.Connection[tuple[object, ...]]


def view(browser: Any, url: str, width: int, height: int, scheme: str) -> str:
    """Opens the page at that size and colour scheme, checks it, saves a screenshot and
    returns the body's background colour."""
    context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
    problems: list[str] = []
    try:
        page = context.new_page()

        def console(message: Any) -> None:
            if message.type in ("error", "warning"):
                problems.append(str(message.text))

        page.on("console", console)
        page.on("pageerror", lambda e: problems.append(str(e)))
        response = page.goto(url)
        assert response is not None and response.status == 200
        assert page.locator("h1").inner_text() == "Acme production"
        assert page.locator(".item").count() == 3
        assert page.locator(".item .bar").count() == 270
        scroll = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert scroll[0] <= scroll[1], (width, scheme, scroll)
        bar = page.locator(".item .bar").first.bounding_box()  # every bar visible
        assert bar is not None and bar["width"] >= 2, bar
        text = page.locator("body").inner_text()
        assert HOST not in text and API_URL not in text
        background = str(page.evaluate("getComputedStyle(document.body).backgroundColor"))
        path = screenshot(page, f"public-{width}-{scheme}")
        shutil.copy(path, f"/tmp/public-{width}-{scheme}.png")
    finally:
        context.close()
    assert problems == [], problems
    return background


def test_status_page_in_chromium(browser: Any, api: ApiServer, conn: Conn) -> None:
    seed(conn)
    conn.execute(
        "select vigil.status_page_add('acme', 'Acme production', array['api', 'db'], array[%s])",
        (f"{HOST}/backup",),
    )
    url = api.url + "/status/acme"
    backgrounds = {
        f"{width}-{scheme}": view(browser, url, width, height, scheme)
        for width, height in ((1280, 900), (390, 844))
        for scheme in ("light", "dark")
    }
    assert backgrounds["1280-light"] == "rgb(246, 247, 249)"
    assert backgrounds["1280-dark"] == "rgb(17, 20, 24)"
    assert backgrounds["390-dark"] == backgrounds["1280-dark"]
