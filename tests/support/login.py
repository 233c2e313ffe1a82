"""Signing a test browser or HTTP client in to the operator pages (via a one-time login link).

login(page, api.url, dsn, "ann@example.com")          # Playwright page, now signed in
client = login_client(api.url, dsn, "ann@example.com")  # httpx.Client, signed in
client.post("/tokens", data={"name": "x"})              # X-CSRF-Token header is preset
csrf_token(client)                                       # the token, e.g. for form fields
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import psycopg

from vigil.cli.operators import add_user, create_login_link

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def make_login_link(base_url: str, dsn: str, email: str) -> str:
    """Allow-lists `email` (if needed) and returns a fresh one-time login link."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        add_user(conn, email)
        return create_login_link(conn, email, 15, base_url)


def login(page: Any, base_url: str, dsn: str, email: str) -> None:
    """Signs the Playwright `page` in as `email`; the page ends on the dashboard."""
    page.goto(make_login_link(base_url, dsn, email))
    page.click("#sign-in")
    page.wait_for_url(base_url.rstrip("/") + "/")


def login_client(base_url: str, dsn: str, email: str) -> httpx.Client:
    """An httpx.Client signed in as `email`, with the session's CSRF token preset as the
    X-CSRF-Token header (delete that header to test CSRF rejection)."""
    link = make_login_link(base_url, dsn, email)
    with httpx.Client(base_url=base_url, timeout=10) as first:
        form = first.get(link)
        form.raise_for_status()
        match = FORM_TOKEN.search(form.text)
        assert match, "login link page has no form token"
        token = link.rsplit("/", 1)[1]
        done = first.post(
            "/login/link", data={"link": token, "form_token": match.group(1)}, follow_redirects=True
        )
        done.raise_for_status()
        meta = CSRF_META.search(done.text)
        assert meta, f"not signed in: {done.url} {done.text[:200]}"
        cookies = httpx.Cookies(first.cookies)
    # A fresh (unopened) client, so callers can use it in a `with` block.
    return httpx.Client(
        base_url=base_url,
        timeout=10,
        cookies=cookies,
        headers={"X-CSRF-Token": meta.group(1)},
    )


def csrf_token(client: httpx.Client) -> str:
    """The CSRF token of a client made by login_client."""
    return client.headers["X-CSRF-Token"]
