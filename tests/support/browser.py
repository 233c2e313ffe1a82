"""Shared by the Chromium page tests."""

from __future__ import annotations

from typing import Any


def console_errors(page: Any) -> list[str]:
    """The page's console errors from now on, collected into the returned list."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors
