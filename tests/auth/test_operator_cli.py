"""`vigil user add|list|remove`, `vigil login-link`, and the link `vigil run` prints."""

from __future__ import annotations

import subprocess

import httpx
import psycopg
import pytest

from tests.conftest import ApiServer, make_settings
from tests.support.login import FORM_TOKEN
from tests.support.processes import vigil_in_process
from vigil.cli.operators import print_first_login_link


def vigil(dsn: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return vigil_in_process(dsn, *args, **env)


def test_user_commands(dsn: str) -> None:
    added = vigil(dsn, "user", "add", " Ann@Example.com ")
    assert added.returncode == 0, added.stderr
    assert "ann@example.com added" in added.stdout
    assert "allowed already" in vigil(dsn, "user", "add", "ann@example.com").stdout
    bad = vigil(dsn, "user", "add", "not-an-email")
    assert bad.returncode == 2 and "not an email address" in bad.stderr
    listed = vigil(dsn, "user", "list")
    assert "ann@example.com" in listed.stdout
    assert vigil(dsn, "user", "remove", "ann@example.com").returncode == 0
    assert vigil(dsn, "user", "remove", "ann@example.com").returncode == 1
    assert "ann@example.com" not in vigil(dsn, "user", "list").stdout


def test_login_link_command(api: ApiServer, dsn: str) -> None:
    refused = vigil(dsn, "login-link", "bob@example.com")
    assert refused.returncode == 1
    assert '"bob@example.com" is not an allowed user' in refused.stderr
    assert "vigil user add EMAIL" in refused.stderr
    vigil(dsn, "user", "add", "bob@example.com")
    made = vigil(dsn, "login-link", "bob@example.com", VIGIL_PUBLIC_URL=api.url)
    assert made.returncode == 0, made.stderr
    link = made.stdout.strip().splitlines()[-1]
    assert link.startswith(api.url + "/login/link/")
    with httpx.Client(base_url=api.url) as client:
        form = FORM_TOKEN.search(client.get(link).text)
        assert form
        token = link.rsplit("/", 1)[1]
        r = client.post("/login/link", data={"link": token, "form_token": form.group(1)})
        assert r.status_code == 303
        assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    ("env", "existing", "expected"),
    [
        ({}, None, "admin@localhost"),
        ({}, "first@example.com", "first@example.com"),
        ({"VIGIL_ADMIN_EMAIL": "Boss@Example.com"}, "first@example.com", "boss@example.com"),
    ],
)
def test_vigil_run_prints_a_login_link_for_the_first_user(
    dsn: str,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    existing: str | None,
    expected: str,
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        if existing:
            conn.execute("select vigil.user_add(%s)", (existing,))
        print_first_login_link(dsn, make_settings(dsn, **env))
        users = {r[0] for r in conn.execute("select email from vigil.users").fetchall()}
        links = conn.execute("select email from vigil.login_links").fetchall()
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("http://127.0.0.1:8080/login/link/")
    assert f"sign in as {expected}" in out[-2]
    assert expected in users and links == [(expected,)]
