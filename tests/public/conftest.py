"""The public routes keep reads in the process for a while (api.public.routes.cached); these
tests change states between requests, so they read through (the cache has its own test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api.public import routes


@pytest.fixture(autouse=True)
def read_through(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(routes, "READ_TTL", 0.0)
    routes._reads.clear()
    yield
    routes._reads.clear()
