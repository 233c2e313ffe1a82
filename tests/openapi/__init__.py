"""The OpenAPI document (/openapi.json, /docs) and schemathesis' run against the API."""

from __future__ import annotations

import tempfile

from api.app import create_litestar
from vigil.settings import Settings


def openapi_document() -> dict[str, object]:
    """The app's OpenAPI document, as /openapi.json serves it (built without a server; no
    database is reached: the pool is never opened)."""
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql:///unused", "VIGIL_DATA_DIR": tempfile.gettempdir()}
    )
    return create_litestar(settings).openapi_schema.to_schema()
