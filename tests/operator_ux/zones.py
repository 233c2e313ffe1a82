"""Shared by the time-zone tests: the viewer's zone, and the per-user zone's SQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from vigil import SQL_DIR

Conn = psycopg.Connection[tuple[object, ...]]
ZONE = "Asia/Kathmandu"
ZONE_NAMES = (ZONE, "Asia/Katmandu")  # Chromium's ICU reports the older spelling
KATHMANDU = timedelta(hours=5, minutes=45)


def ensure_time_zone(conn: Conn) -> None:
    """Loads sql/40_auth.sql into a database migrated before a revision froze it (a no-op
    once vigil.user_set_time_zone exists)."""
    row = conn.execute("select to_regprocedure('vigil.user_set_time_zone(text, text)')").fetchone()
    if row is None or row[0] is None:
        conn.execute((SQL_DIR / "40_auth.sql").read_text().encode())


def check_title(title: str, offset: timedelta = KATHMANDU, suffix: str = "+05:45") -> None:
    """A clock title of vigil.js: 'YYYY-MM-DD HH:MM:SS UTC' then the same instant in the
    viewer's zone, 'YYYY-MM-DD HH:MM:SS +05:45 (Asia/Kathmandu)'."""
    utc, local = title.split("\n")
    assert utc.endswith(" UTC"), title
    assert f" {suffix} (" in local, title
    lt = datetime.strptime(local[:19], "%Y-%m-%d %H:%M:%S")
    ut = datetime.strptime(utc[:19], "%Y-%m-%d %H:%M:%S")
    assert lt - ut == offset, title
