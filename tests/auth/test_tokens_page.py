"""The tokens page over HTTP: shown once, duplicates and bad names, revoke."""

from __future__ import annotations

import re

import psycopg

from tests.conftest import ApiServer
from tests.support.login import login_client

Conn = psycopg.Connection[tuple[object, ...]]


def test_create_duplicate_bad_name_and_revoke(api: ApiServer, dsn: str, conn: Conn) -> None:
    with login_client(api.url, dsn, "ann@example.com") as client:
        r = client.post("/tokens", data={"name": "a&b <x>"})
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store"
        token = re.search(r'id="token-value">(vgl_[^<]+)<', r.text)
        assert token
        assert "a&amp;b &lt;x&gt;" in r.text  # autoescaped
        row = conn.execute("select token_hash from vigil.api_tokens").fetchone()
        assert row is not None and token.group(1).encode() not in bytes(str(row[0]), "utf-8")
        assert token.group(1) not in client.get("/tokens").text
        again = client.post("/tokens", data={"name": "a&b <x>"})
        assert again.status_code == 409
        assert "exists already" in again.text
        assert client.post("/tokens", data={"name": " "}).status_code == 400
        r = client.post("/tokens/revoke", data={"name": "a&b <x>"})
        assert r.status_code == 303
        assert r.headers["location"] == "/tokens?revoked=a%26b+%3Cx%3E"
        assert client.post("/tokens/revoke", data={"name": "a&b <x>"}).status_code == 404
