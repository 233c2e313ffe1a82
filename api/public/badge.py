"""Badges: the words and colours of a state or an uptime, drawn as a Shields-like flat SVG or
given as Shields.io endpoint JSON (https://shields.io/badges/endpoint-badge). Pure functions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

# Shields' named colours and their hex values (what the SVG draws).
COLORS = {
    "brightgreen": "#4c1",
    "green": "#97ca00",
    "yellow": "#dfb317",
    "orange": "#fe7d37",
    "red": "#e05d44",
    "lightgrey": "#9f9f9f",
}
STATE_COLORS = {"up": "brightgreen", "down": "red", "late": "orange", "alert": "red"}
WINDOWS = {"24h": 2, "7d": 3, "30d": 4}
"""Uptime windows of a badge: the column of vigil.badge_read() holding it."""

# Approximate advance widths of Verdana 11 px (Shields' font), in pixels.
_NARROW = {c: 3.1 for c in "ijl.:,;'|!"} | {c: 4.3 for c in "frt() -/[]"}
_WIDE = {c: 9.8 for c in "mwMW%"} | {c: 8.5 for c in "@#&OQDGHNU"}


def text_width(text: str) -> float:
    """The drawn width of `text` in pixels (Verdana 11 px, approximated per character)."""
    width = 0.0
    for c in text:
        if c in _NARROW:
            width += _NARROW[c]
        elif c in _WIDE:
            width += _WIDE[c]
        elif c.isdigit():
            width += 7.0
        elif c.isupper():
            width += 7.5
        else:
            width += 6.5 if c.isascii() else 8.0
    return width


def _xml(text: str) -> str:
    """Text escaped for XML content and double-quoted attributes."""
    return escape(text, {'"': "&quot;"})


@dataclass(frozen=True)
class Badge:
    label: str
    message: str
    color: str
    """A Shields colour name (a key of COLORS)."""


def percent(value: float) -> str:
    """99.95%: two decimals, rounded down (99.999 is not 100%), 100% when always up."""
    if value >= 100:
        return "100%"
    return f"{math.floor(value * 100) / 100:.2f}%"


def uptime_color(value: float) -> str:
    if value >= 99.9:
        return "brightgreen"
    if value >= 99:
        return "green"
    if value >= 95:
        return "yellow"
    if value >= 90:
        return "orange"
    return "red"


def state_badge(label: str, state: str) -> Badge:
    return Badge(label, state, STATE_COLORS.get(state, "lightgrey"))


def uptime_badge(window: str, value: float | None) -> Badge:
    label = f"uptime {window}"
    if value is None:
        return Badge(label, "no data", "lightgrey")
    return Badge(label, percent(value), uptime_color(value))


def shields_json(badge: Badge) -> dict[str, object]:
    """The Shields.io endpoint body (schemaVersion 1)."""
    return {
        "schemaVersion": 1,
        "label": badge.label,
        "message": badge.message,
        "color": badge.color,
    }


def svg(badge: Badge) -> str:
    """A flat badge: grey label, coloured message; widths from the text lengths."""
    left = round(text_width(badge.label) + 10)
    right = round(text_width(badge.message) + 10)
    total = left + right
    color = COLORS.get(badge.color, COLORS["lightgrey"])
    label, message = _xml(badge.label), _xml(badge.message)
    title = _xml(f"{badge.label}: {badge.message}")
    # Text is drawn at 10x and scaled down, as Shields does, for crisp rendering.
    lx, mx = left * 5, (left + right / 2) * 10
    lw, mw = (left - 10) * 10, (right - 10) * 10
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{color}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        'text-rendering="geometricPrecision" font-size="110">'
        f'<text aria-hidden="true" x="{lx}" y="150" fill="#010101" fill-opacity=".3" '
        f'transform="scale(.1)" textLength="{lw}">{label}</text>'
        f'<text x="{lx}" y="140" transform="scale(.1)" textLength="{lw}">{label}</text>'
        f'<text aria-hidden="true" x="{mx:g}" y="150" fill="#010101" fill-opacity=".3" '
        f'transform="scale(.1)" textLength="{mw}">{message}</text>'
        f'<text x="{mx:g}" y="140" transform="scale(.1)" textLength="{mw}">{message}</text>'
        "</g></svg>"
    )
