"""Settings are validated at start with messages that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.settings import Settings, SettingsError


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.database_url, s.telegram_configured) == (
        "127.0.0.1",
        8080,
        None,
        False,
    )
    assert s.telegram_api_base == "https://api.telegram.org"
    assert s.poll_seconds <= 5


def test_seed_database_name_is_accepted() -> None:
    s = Settings.from_env({"TIMESCALE_DATABASE_URL": "postgresql://x@db/vigil"})
    assert s.database_url == "postgresql://x@db/vigil"


def test_secrets_from_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("123:abc\n")
    s = Settings.from_env(
        {"TELEGRAM_TOKEN_FILE": str(tmp_path / "token"), "TELEGRAM_CHAT_ID": "42"}
    )
    assert s.telegram_token == "123:abc"
    assert s.telegram_configured


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VIGIL_PORT": "http"}, "VIGIL_PORT='http' is not an integer"),
        ({"VIGIL_POLL_SECONDS": "30"}, "at most 5"),
        ({"TELEGRAM_TOKEN": "x"}, "set both TELEGRAM_TOKEN and TELEGRAM_CHAT_ID"),
        ({"VIGIL_ALLOW_TOKENLESS_LOOPBACK": "maybe"}, "must be true or false"),
        ({"TELEGRAM_TOKEN_FILE": "/nonexistent/x"}, "TELEGRAM_TOKEN_FILE='/nonexistent/x' cannot"),
        ({"TELEGRAM_API_BASE": "ftp://x"}, "must be an http(s) URL"),
    ],
)
def test_invalid_settings_say_what_to_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)
