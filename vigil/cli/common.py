"""What the operator commands share: reporting a statement the database refused, and a
command that is one statement on a named thing."""

from __future__ import annotations

import sys
from typing import Any

import psycopg
from psycopg.abc import Params

from vigil.db import fetch_bool

# What the database refuses with a reason the operator can act on (a bad value, a name
# already taken, a broken constraint): reported as `vigil: REASON (HINT)`, exit status 1.
DB_ERRORS = (
    psycopg.errors.InvalidParameterValue,
    psycopg.errors.UniqueViolation,
    psycopg.errors.CheckViolation,
)


def db_error(exc: psycopg.Error) -> int:
    """Prints the database's reason (and hint) for refusing; the exit status 1."""
    hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
    print(f"vigil: {exc.diag.message_primary}{hint}", file=sys.stderr)
    return 1


def found_or_missing(
    conn: psycopg.Connection[Any], query: str, params: Params, missing: str, done: str
) -> int:
    """Runs a statement that answers true when it found what it names (a delete, a removal):
    prints `done` (exit status 0), or `missing` to stderr (exit status 1)."""
    if not fetch_bool(conn, query, params):
        print(missing, file=sys.stderr)
        return 1
    print(done)
    return 0
