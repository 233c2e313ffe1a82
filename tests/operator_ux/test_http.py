"""HEAD wherever GET is served, the 404 page for browsers (text for everyone else), the
journal's time error in ISO 8601 terms, and the 404 page in Chromium (desktop and phone
width, light and dark)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import get
from litestar.testing import TestClient

from api.app import create_litestar
from tests.conftest import ApiServer, make_settings
from tests.support.login import login_client

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_head_answers_like_get_without_a_body(api: ApiServer) -> None:
    get = httpx.get(api.url + "/health")
    head = httpx.head(api.url + "/health")
    assert (get.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"] == "application/json"
    assert int(head.headers["content-length"]) > 0
    # A page and the static files too; an unknown path stays a 404, with no body either.
    assert httpx.head(api.url + "/login").status_code == 200
    assert httpx.head(api.url + "/static/vigil.css").status_code == 200
    missing = httpx.head(api.url + "/no/such/page", headers={"accept": BROWSER_ACCEPT})
    assert (missing.status_code, missing.content) == (404, b"")
    # POST-only routes still refuse HEAD, as they refuse GET.
    assert httpx.head(api.url + "/metric").status_code == 405


def test_404_is_a_page_for_browsers_and_text_for_clients(api: ApiServer) -> None:
    page = httpx.get(api.url + "/no/<b>such</b>", headers={"accept": BROWSER_ACCEPT})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in page.text
    assert "<code>/no/&lt;b&gt;such&lt;/b&gt;</code>" in page.text  # escaped, never markup
    assert 'href="/static/vigil.css"' in page.text  # the site's style
    for accept in (None, "*/*", "application/json", "text/plain"):
        headers = {"accept": accept} if accept else {}
        r = httpx.get(api.url + "/no/such", headers=headers)
        assert (r.status_code, r.headers["content-type"], r.text) == (
            404,
            "text/plain; charset=utf-8",
            "404 Not Found\n",
        ), accept


def test_journal_time_error_in_iso_terms(api: ApiServer, dsn: str) -> None:
    with login_client(api.url, dsn, "ops@example.com") as client:
        r = client.get("/journal?end=30/11/2026")
    assert r.status_code == 400
    assert "end must be YYYY-MM-DDTHH:MM, e.g. 2026-03-01T14:30" in r.text
    assert "2006" not in r.text


@pytest.mark.browser
def test_404_page_in_chromium(browser: Any, api: ApiServer) -> None:
    backgrounds = set()
    for width, height in ((1366, 900), (390, 844)):
        for scheme in ("light", "dark"):
            context = browser.new_context(
                viewport={"width": width, "height": height}, color_scheme=scheme
            )
            try:
                page = context.new_page()
                response = page.goto(api.url + "/metrics/" + "long" * 40)  # no hyphen to break at
                assert response is not None and response.status == 404
                card = page.locator("#not-found")
                assert card.is_visible()
                assert page.locator("#not-found a.button").inner_text() == "Go to the dashboard"
                box = card.bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
                scroll = page.evaluate("document.documentElement.scrollWidth")
                assert scroll <= width, (width, scroll)  # no horizontal scroll on a phone
                backgrounds.add(page.evaluate("getComputedStyle(document.body).backgroundColor"))
                path = Path(f"/tmp/ux-404-{width}-{scheme}.png")
                page.screenshot(path=str(path), full_page=True)
                assert path.stat().st_size > 0
            finally:
                context.close()
    assert len(backgrounds) == 2  # light and dark differ: the stylesheet's schemes apply


def test_server_errors_are_a_page_for_browsers_and_text_for_clients(dsn: str) -> None:
    """An unexpected exception in a route: 500, logged, never its text; a page for browsers."""

    @get("/boom", sync_to_thread=False)
    def boom() -> str:
        raise RuntimeError("secret internals")

    app = create_litestar(make_settings(dsn))
    app.register(boom)
    with TestClient(app) as client:
        page = client.get("/boom", headers={"accept": BROWSER_ACCEPT})
        assert page.status_code == 500
        assert page.headers["content-type"].startswith("text/html")
        assert "<h1>Something went wrong</h1>" in page.text
        assert 'href="/static/vigil.css"' in page.text
        text = client.get("/boom")
        assert (text.status_code, text.text) == (500, "500 Internal Server Error\n")
        for r in (page, text):
            assert "secret internals" not in r.text
