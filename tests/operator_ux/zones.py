"""Shared by the time-zone tests: the viewer's zone, and the per-user zone's SQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

Conn = psycopg.Connection[tuple[object, ...]]
ZONE = "Asia/Kathmandu"
ZONE_NAMES = (ZONE, "Asia/Katmandu")  # Chromium's ICU reports the older spelling
KATHMANDU = timedelta(hours=5, minutes=45)


def check_title(title: str, offset: timedelta = KATHMANDU, suffix: str = "+05:45") -> None:
    """A clock title of vigil.js: 'YYYY-MM-DD HH:MM:SS UTC' then the same instant in the
    viewer's zone, 'YYYY-MM-DD HH:MM:SS +05:45 (Asia/Kathmandu)'."""
    utc, local = title.split("\n")
    assert utc.endswith(" UTC"), title
    assert f" {suffix} (" in local, title
    lt = datetime.strptime(local[:19], "%Y-%m-%d %H:%M:%S")
    ut = datetime.strptime(utc[:19], "%Y-%m-%d %H:%M:%S")
    assert lt - ut == offset, title
