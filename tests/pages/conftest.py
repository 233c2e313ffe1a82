"""Fixtures for the operator pages: a fake OpenID provider and an API that signs in with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import ApiServer, free_port, make_settings
from tests.support.fake_oidc import FakeOidc


@pytest.fixture
def oidc() -> Iterator[FakeOidc]:
    fake = FakeOidc()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def google_api(dsn: str, oidc: FakeOidc) -> Iterator[ApiServer]:
    """The API with Google sign-in pointed at the fake provider (real authlib code path)."""
    port = free_port()
    settings = make_settings(
        dsn,
        VIGIL_PORT=str(port),
        GOOGLE_CLIENT_ID=oidc.client_id,
        GOOGLE_CLIENT_SECRET=oidc.client_secret,
        GOOGLE_CALLBACK_URL=f"http://127.0.0.1:{port}/auth/google/callback",
        GOOGLE_DISCOVERY_URL=oidc.discovery_url,
        SESSION_SECRET="test-session-secret-0123456789",
    )
    with ApiServer(settings) as server:
        yield server
