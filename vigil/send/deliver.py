"""Posting journal lines and reading the reply."""

from __future__ import annotations

import json
import logging
from typing import Any

from vigil.send.client import Client, Refused

log = logging.getLogger("vigil.send")
NDJSON = "application/x-ndjson"


def encode(obj: dict[str, Any]) -> bytes:
    """One NDJSON line (UTF-8; \\u escapes only for what UTF-8 cannot carry)."""
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate from a JSON line's \\ud800 escape
        return json.dumps(obj, separators=(",", ":")).encode()


def post_lines(client: Client, route: str, lines: list[bytes]) -> dict[str, int]:
    """POSTs lines as NDJSON; a body the server finds too large (413) goes in halves.
    Returns the summed counts of the replies (accepted, duplicated, rejected)."""
    try:
        reply = client.post(route, b"\n".join(lines) + b"\n", NDJSON)
    except Refused as exc:
        if exc.status != 413 or len(lines) < 2:
            raise
        half = len(lines) // 2
        first = post_lines(client, route, lines[:half])
        second = post_lines(client, route, lines[half:])
        return {k: first.get(k, 0) + second.get(k, 0) for k in {*first, *second}}
    counts: dict[str, int] = {}
    try:
        outcome = reply.json()
    except ValueError:
        return counts
    if isinstance(outcome, dict):
        for key in ("accepted", "duplicated", "rejected"):
            if isinstance(outcome.get(key), int):
                counts[key] = outcome[key]
        if outcome.get("rejected"):
            log.warning(
                "Vigil rejected %s of %d lines: %s",
                outcome["rejected"],
                len(lines),
                "; ".join(f"{n} {reason}" for reason, n in (outcome.get("reasons") or {}).items()),
            )
    return counts
