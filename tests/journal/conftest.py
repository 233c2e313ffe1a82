"""Fixtures for the journal tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import ApiServer, free_port, make_settings


@pytest.fixture
def api_limit(dsn: str) -> Iterator[ApiServer]:
    """An API whose body limit is 64 KiB."""
    settings = make_settings(dsn, VIGIL_PORT=str(free_port()), VIGIL_MAX_BODY_BYTES="65536")
    with ApiServer(settings) as server:
        yield server
