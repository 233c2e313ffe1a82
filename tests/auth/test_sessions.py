"""Sessions, login links, the page guard, CSRF and security headers (HTTP level)."""

from __future__ import annotations

import httpx
import psycopg

from tests.conftest import ApiServer
from tests.support.login import FORM_TOKEN, csrf_token, login_client, make_login_link

Conn = psycopg.Connection[tuple[object, ...]]


def test_pages_need_a_session(api: ApiServer) -> None:
    r = httpx.get(api.url + "/tokens?x=1")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Ftokens%3Fx%3D1"
    r = httpx.get(api.url + "/", headers={"HX-Request": "true"})
    assert r.status_code == 401
    assert r.headers["hx-redirect"].startswith("/login")
    r = httpx.post(api.url + "/metrics/1/delete")
    assert r.status_code == 303  # no session: to /login, nothing deleted
    login = httpx.get(api.url + "/login")
    assert login.status_code == 200
    assert "Sign in to Vigil" in login.text


def test_login_link_signs_in_once_and_sets_a_safe_cookie(
    api: ApiServer, dsn: str, conn: Conn
) -> None:
    link = make_login_link(api.url, dsn, "Ann@Example.com")
    assert link.startswith(api.url + "/login/link/")
    token = link.rsplit("/", 1)[1]
    with httpx.Client(base_url=api.url) as client:
        page = client.get(link)  # GET does not use the link
        form_token = FORM_TOKEN.search(page.text)
        assert form_token
        r = client.post("/login/link", data={"link": token, "form_token": form_token.group(1)})
        assert r.status_code == 303
        cookie = next(
            v for k, v in r.headers.multi_items() if k == "set-cookie" and "vigil_session" in v
        )
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
        assert "Secure" not in cookie  # plain http on loopback only
        assert client.get("/").status_code == 200
        form_again = FORM_TOKEN.search(client.get(link).text)
        assert form_again
        again = client.post("/login/link", data={"link": token, "form_token": form_again.group(1)})
        assert again.status_code == 400  # one use
    row = conn.execute("select email, last_login_at is not null from vigil.users").fetchone()
    assert row == ("ann@example.com", True)
    assert conn.execute("select count(*) from vigil.sessions").fetchone() == (1,)


def test_login_link_post_without_form_cookie_is_refused(api: ApiServer, dsn: str) -> None:
    token = make_login_link(api.url, dsn, "ann@example.com").rsplit("/", 1)[1]
    r = httpx.post(api.url + "/login/link", data={"link": token, "form_token": "forged"})
    assert r.status_code == 403
    assert "vigil_session" not in r.headers.get("set-cookie", "")


def test_expired_link_and_removed_user(api: ApiServer, dsn: str, conn: Conn) -> None:
    link = make_login_link(api.url, dsn, "bob@example.com")
    conn.execute("update vigil.login_links set expires_at = now() - interval '1 s'")
    with httpx.Client(base_url=api.url) as client:
        form = FORM_TOKEN.search(client.get(link).text)
        assert form
        r = client.post(
            "/login/link", data={"link": link.rsplit("/", 1)[1], "form_token": form.group(1)}
        )
        assert r.status_code == 400
    with login_client(api.url, dsn, "bob@example.com") as client:
        assert client.get("/").status_code == 200
        conn.execute("select vigil.user_remove('bob@example.com')")
        assert client.get("/").status_code == 303  # session ended with the user


def test_csrf_is_required_on_state_changes(api: ApiServer, dsn: str, conn: Conn) -> None:
    conn.execute("select vigil.ingest_metric('web-1', 'backup', 'ping', '5', now())")
    (metric_id,) = conn.execute("select id from vigil.metrics").fetchone() or (None,)
    with login_client(api.url, dsn, "ann@example.com") as client:
        token = csrf_token(client)
        del client.headers["X-CSRF-Token"]
        r = client.post(f"/metrics/{metric_id}/delete", headers={"HX-Request": "true"})
        assert r.status_code == 403
        r = client.post(f"/metrics/{metric_id}/delete", headers={"X-CSRF-Token": "wrong"})
        assert r.status_code == 403
        r = client.post(f"/metrics/{metric_id}/delete", data={"csrf_token": "wrong"})
        assert r.status_code == 403
        assert conn.execute("select count(*) from vigil.metrics").fetchone() == (1,)
        r = client.post(f"/metrics/{metric_id}/delete", data={"csrf_token": token})
        assert r.status_code == 303
        assert conn.execute("select count(*) from vigil.metrics").fetchone() == (0,)


def test_logout_ends_the_session_server_side(api: ApiServer, dsn: str, conn: Conn) -> None:
    with login_client(api.url, dsn, "ann@example.com") as client:
        session = client.cookies["vigil_session"]
        assert client.get("/logout").status_code == 200  # GET only shows a button
        assert client.get("/").status_code == 200
        r = client.post("/logout", data={"csrf_token": csrf_token(client)})
        assert r.status_code == 303
        assert conn.execute("select count(*) from vigil.sessions").fetchone() == (0,)
        stolen = httpx.get(api.url + "/", cookies={"vigil_session": session})
        assert stolen.status_code == 303


def test_a_new_login_replaces_the_session(api: ApiServer, dsn: str, conn: Conn) -> None:
    with login_client(api.url, dsn, "ann@example.com") as client:
        first = client.cookies["vigil_session"]
        link = make_login_link(api.url, dsn, "ann@example.com")
        form = FORM_TOKEN.search(client.get(link).text)
        assert form
        client.post(
            "/login/link", data={"link": link.rsplit("/", 1)[1], "form_token": form.group(1)}
        )
        assert client.cookies["vigil_session"] != first
        assert conn.execute("select count(*) from vigil.sessions").fetchone() == (1,)


def test_security_headers_on_pages(api: ApiServer, dsn: str) -> None:
    r = httpx.get(api.url + "/login")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert "<script>" not in r.text and "style=" not in r.text
    health = httpx.get(api.url + "/health")
    assert health.headers["x-content-type-options"] == "nosniff"


def test_cookie_is_secure_unless_plain_http_loopback(api: ApiServer, dsn: str) -> None:
    link = make_login_link(api.url, dsn, "ann@example.com")
    with httpx.Client(base_url=api.url, headers={"Host": "vigil.example.com"}) as client:
        page = client.get(link)
        form = FORM_TOKEN.search(page.text)
        assert form
        assert "Secure" in page.headers["set-cookie"]
        # A Secure cookie does not travel back over plain http (httpx, like browsers):
        data = {"link": link.rsplit("/", 1)[1], "form_token": form.group(1)}
        assert client.post("/login/link", data=data).status_code == 403
        r = client.post(
            "/login/link", data=data, headers={"Cookie": f"vigil_login_csrf={form.group(1)}"}
        )
        assert r.status_code == 303
        session = next(v for k, v in r.headers.multi_items() if k == "set-cookie")
        assert session.startswith("vigil_session=") and "Secure" in session


def test_only_local_paths_to_return_to() -> None:
    from api.auth.sessions import safe_next

    assert safe_next("/tokens?x=1") == "/tokens?x=1"
    for bad in (
        "//evil.example/x",
        "https://evil.example",
        "/\\evil.example",
        "",
        None,
        "x",
        "/\r\nSet-Cookie: x=1",
        "/a\tb",
    ):
        assert safe_next(bad) == "/"
