"""Google sign-in through authlib against a local fake OpenID provider."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg

from tests.conftest import ApiServer
from tests.support.fake_oidc import FakeOidc

Conn = psycopg.Connection[tuple[object, ...]]


def start(client: httpx.Client, next_path: str = "/") -> str:
    """/auth/google -> provider (consents at once) -> the callback URL it sends us back to."""
    r = client.get("/auth/google", params={"next": next_path})
    assert r.status_code == 303, r.text
    authorize = r.headers["location"]
    back = httpx.get(authorize)
    assert back.status_code == 302, back.text
    return str(back.headers["location"])


def sign_in(api: ApiServer) -> httpx.Response:
    """A whole sign-in in a browser of its own: the reply to the provider's callback."""
    with httpx.Client(base_url=api.url) as client:
        return client.get(start(client))


def assert_refused(api: ApiServer, conn: Conn, reason: str) -> None:
    """A sign-in whose callback is refused (403, giving `reason`): no session is made."""
    r = sign_in(api)
    assert r.status_code == 403
    assert reason in r.text
    assert sessions(conn) == 0


def sessions(conn: Conn) -> int:
    row = conn.execute("select count(*) from vigil.sessions").fetchone()
    assert row is not None
    return int(str(row[0]))


def allow(conn: Conn, email: str = "ann@example.com") -> None:
    conn.execute("select vigil.user_add(%s)", (email,))


def test_sign_in_success_with_state_nonce_pkce(
    google_api: ApiServer, oidc: FakeOidc, conn: Conn
) -> None:
    allow(conn)
    with httpx.Client(base_url=google_api.url) as client:
        callback = start(client, "/tokens")
        asked = oidc.authorize_requests[0]
        assert asked["redirect_uri"] == google_api.url + "/auth/google/callback"
        assert asked["code_challenge_method"] == "S256" and asked["nonce"] and asked["state"]
        assert asked["scope"] == "openid email"
        r = client.get(callback)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/tokens"
        assert "vigil_session" in client.cookies
        assert client.get("/tokens").status_code == 200
    assert oidc.token_requests[0]["code_verifier"]
    assert sessions(conn) == 1


def test_wrong_state_gives_no_session(google_api: ApiServer, oidc: FakeOidc, conn: Conn) -> None:
    allow(conn)
    with httpx.Client(base_url=google_api.url) as client:
        callback = start(client)
        tampered = callback.replace("state=", "state=x")
        r = client.get(tampered)
        assert r.status_code == 403
        assert "state" in r.text
        assert "vigil_session" not in client.cookies
    assert sessions(conn) == 0
    assert oidc.token_requests == []  # the code was never exchanged


def test_callback_without_the_flow_cookie_is_refused(
    google_api: ApiServer, oidc: FakeOidc, conn: Conn
) -> None:
    """Login CSRF: a callback URL made in another browser does not sign this one in."""
    allow(conn)
    with httpx.Client(base_url=google_api.url) as attacker:
        callback = start(attacker)
    r = httpx.get(callback)
    assert r.status_code == 403
    assert sessions(conn) == 0


def test_replayed_code_gives_no_session(google_api: ApiServer, oidc: FakeOidc, conn: Conn) -> None:
    allow(conn)
    with httpx.Client(base_url=google_api.url) as client:
        first = start(client)
        assert client.get(first).status_code == 303
    assert sessions(conn) == 1
    # The same callback again (its flow is consumed) ...
    with httpx.Client(base_url=google_api.url) as client:
        r = client.get(first)
        assert r.status_code == 403
        # ... and the old code with a fresh, valid flow: the provider refuses the code.
        fresh = start(client)
        old_code = parse_qs(urlsplit(first).query)["code"][0]
        new_code = parse_qs(urlsplit(fresh).query)["code"][0]
        r = client.get(fresh.replace(new_code, old_code))
        assert r.status_code == 403
        assert "vigil_session" not in client.cookies
    assert sessions(conn) == 1


def test_wrong_audience_gives_no_session(google_api: ApiServer, oidc: FakeOidc, conn: Conn) -> None:
    allow(conn)
    oidc.overrides = {"aud": "someone-else.apps.example"}
    assert_refused(google_api, conn, "aud")


def test_wrong_issuer_expired_or_wrong_nonce_give_no_session(
    google_api: ApiServer, oidc: FakeOidc, conn: Conn
) -> None:
    allow(conn)
    for override in ({"iss": "https://evil.example"}, {"exp": 1_000_000}, {"nonce": "replayed"}):
        oidc.overrides = override
        assert sign_in(google_api).status_code == 403, override
    assert sessions(conn) == 0


def test_unverified_email_gives_no_session(
    google_api: ApiServer, oidc: FakeOidc, conn: Conn
) -> None:
    allow(conn)
    oidc.email_verified = False
    assert_refused(google_api, conn, "not verified")


def test_email_not_allowed_gives_no_session(
    google_api: ApiServer, oidc: FakeOidc, conn: Conn
) -> None:
    allow(conn, "someone@example.com")
    oidc.email = "mallory@example.com"
    with httpx.Client(base_url=google_api.url) as client:
        r = client.get(start(client))
        assert r.status_code == 403
        assert "mallory@example.com is not allowed" in r.text
        assert client.get("/").status_code == 303
    assert sessions(conn) == 0


def test_google_routes_404_when_not_configured(api: ApiServer) -> None:
    assert httpx.get(api.url + "/auth/google").status_code == 404
