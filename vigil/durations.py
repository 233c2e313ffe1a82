"""Durations as people type them (seconds, for now), validated in one place."""

from __future__ import annotations

import math

DAY_SECONDS = 86_400.0


def positive_seconds(text: str, maximum: float = DAY_SECONDS) -> float:
    """A number of seconds, finite and 0 < s <= maximum; ValueError with a message that
    names the accepted range otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= maximum:
        raise ValueError(f"{text!r} is not a number of seconds between 0 and {maximum:g}")
    return value
