"""Shared by the Chromium page tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

BACKGROUND = {"light": "rgb(255, 255, 255)", "dark": "rgb(17, 20, 24)"}
PHONE = 390


def console_errors(page: Any) -> list[str]:
    """The page's console errors from now on, collected into the returned list."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


class View(NamedTuple):
    """One viewport and colour scheme: its width, scheme, a fresh page, its console errors."""

    width: int
    scheme: str
    page: Any
    errors: list[str]


def views(
    browser: Any,
    *,
    desktop: int = 1366,
    height: int = 900,
    page_errors: bool = False,
    options: Callable[[int, str], dict[str, Any]] | None = None,
    **context: Any,
) -> Iterator[View]:
    """A page in a new browser context at desktop and phone width, light and dark (four in
    all), closed after each. `page_errors` also collects uncaught exceptions; `options` gives
    more context options per (width, scheme), `context` the same for all."""
    for width, scheme in ((desktop, "light"), (desktop, "dark"), (PHONE, "light"), (PHONE, "dark")):
        extra = options(width, scheme) if options else {}
        ctx = browser.new_context(
            viewport={"width": width, "height": height},
            color_scheme=scheme,
            is_mobile=width < 500,
            **context,
            **extra,
        )
        try:
            page = ctx.new_page()
            errors = console_errors(page)
            if page_errors:
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            yield View(width, scheme, page, errors)
        finally:
            ctx.close()


def assert_fits(page: Any, width: int, scheme: str, what: object = None) -> None:
    """The scheme's background colour, and nothing wider than the viewport (no sideways
    scrolling)."""
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == BACKGROUND[scheme], (what, scheme, background)
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= width, (what, width, overflow)
