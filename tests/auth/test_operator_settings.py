"""Validation of the sign-in settings."""

from __future__ import annotations

import pytest

from vigil.settings import GOOGLE_DISCOVERY, Settings, SettingsError

GOOGLE = {
    "GOOGLE_CLIENT_ID": "id.apps.googleusercontent.com",
    "GOOGLE_CLIENT_SECRET": "secret",
    "GOOGLE_CALLBACK_URL": "https://vigil.example.com/auth/google/callback",
    "SESSION_SECRET": "0123456789abcdef0123",
}


def test_defaults() -> None:
    s = Settings.from_env({})
    assert not s.google_configured
    assert s.google_discovery_url == GOOGLE_DISCOVERY
    assert (s.session_hours, s.login_link_minutes) == (12, 15)
    assert s.base_url == "http://127.0.0.1:8080"
    assert Settings.from_env({"VIGIL_PUBLIC_URL": "https://v.example/"}).base_url == (
        "https://v.example"
    )


def test_google_settings_come_together() -> None:
    assert Settings.from_env(GOOGLE).google_configured
    for missing in ("GOOGLE_CLIENT_SECRET", "GOOGLE_CALLBACK_URL"):
        env = {k: v for k, v in GOOGLE.items() if k != missing}
        with pytest.raises(SettingsError, match="together"):
            Settings.from_env(env)
    with pytest.raises(SettingsError, match="SESSION_SECRET"):
        Settings.from_env({**GOOGLE, "SESSION_SECRET": "short"})
    with pytest.raises(SettingsError, match="GOOGLE_CALLBACK_URL must be an http"):
        Settings.from_env({**GOOGLE, "GOOGLE_CALLBACK_URL": "vigil.example.com/cb"})
    with pytest.raises(SettingsError, match="VIGIL_SESSION_HOURS"):
        Settings.from_env({"VIGIL_SESSION_HOURS": "10000"})
