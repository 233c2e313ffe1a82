"""Schemathesis against a real server: every operation of the OpenAPI document, with examples
made from its schema (valid and invalid ones), must answer as documented and never with a 5xx.

The document is the app's own (the one /openapi.json serves; test_schema.py checks they are
the same), built here without a server so that pytest collects one test per operation; each
test runs against its own server and database (`api`). (schemathesis.pytest.from_fixture, which
would load it from the server, sets `request.node._nodeid`, gone in pytest 9.2.) Phases:
schemathesis' explicit examples, coverage (boundary and invalid values) and fuzzing. The run is
bounded and reproducible: MAX_EXAMPLES fuzzed per operation, no deadline, a fixed seed, no
example database on disk.
"""

from __future__ import annotations

import json
from typing import Any

import cramjam
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ApiServer
from tests.openapi import openapi_document

MAX_EXAMPLES = 50
SEED = 20261122

CHECKS = [
    not_a_server_error,  # no 5xx at all: with the database up, not even a 503
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# Bodies in media types schemathesis has no serializer for.


def ndjson(_: schemathesis.SerializationContext, value: Any) -> bytes:
    """application/x-ndjson: documented as the array of its lines' values; one JSON per line."""
    lines = value if isinstance(value, list) else [value]
    return b"".join(
        json.dumps(line, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n"
        for line in lines
    )


def journal_export(_: schemathesis.SerializationContext, value: Any) -> bytes:
    """application/vnd.fdo.journal: documented as a string (the Journal Export Format)."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogatepass")


def snappy_protobuf(_: schemathesis.SerializationContext, value: Any) -> bytes:
    """application/x-protobuf (remote_write, Loki push): documented as binary; the bytes are
    snappy-compressed as those clients send them, so that the protobuf decoder sees them."""
    data = getattr(value, "data", None)
    if not isinstance(data, bytes):
        data = (value if isinstance(value, str) else json.dumps(value)).encode(
            "utf-8", "surrogatepass"
        )
    return bytes(cramjam.snappy.compress_raw(data))


schemathesis.serializer("application/x-ndjson")(ndjson)
schemathesis.serializer("application/x-protobuf")(snappy_protobuf)
schemathesis.serializer("application/vnd.fdo.journal")(journal_export)


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            # The token is sent by the test (below), not generated.
            "with-security-parameters": False,
        },
    }
)
schema = schemathesis.openapi.from_dict(openapi_document(), config=CONFIG)


@schema.parametrize()
@settings(
    deadline=None,
    # `api` is one server for all the examples of an operation, on purpose (one database).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(
    case: schemathesis.Case[Any], api: ApiServer, token: str
) -> None:
    case.call_and_validate(
        base_url=api.url,
        headers={"Authorization": f"Bearer {token}"},
        checks=CHECKS,
        timeout=30,
    )
