"""The public views' SQL in both database modes (metric_history is a hypertable in
TimescaleDB mode): the same states, uptimes, bars and incidents."""

from __future__ import annotations

import pytest

from tests.public.scenario import HOST, Conn, seed


def test_public_reads_in_both_modes(db: Conn) -> None:
    world = seed(db)
    db.execute(
        "select vigil.status_page_add('p', 'P', array['api', 'db'], array[%s])", (f"{HOST}/backup",)
    )
    rows = db.execute(
        "select label, detail, state, uptime_7d from vigil.status_page_read('p', %s)",
        (world.now,),
    ).fetchall()
    assert [r[:3] for r in rows] == [
        ("api", None, "up"),
        ("db", None, "down"),
        ("backup", None, "late"),
    ]
    assert rows[0][3] == pytest.approx(100 * 71 / 72)
    assert rows[1][3] == pytest.approx(50)
    ok_secs = (world.late_at - world.now).total_seconds() + 5 * 3600
    assert rows[2][3] == pytest.approx(100 * ok_secs / (5 * 3600))
    incidents = db.execute(
        "select label, state, ended is null from vigil.status_page_incidents('p', 90, %s)",
        (world.now,),
    ).fetchall()
    assert incidents == [("db", "down", True), ("backup", "late", True), ("api", "down", False)]
    assert db.execute("select count(*) from vigil.status_page_days('p')").fetchone() == (270,)
    key = db.execute("select vigil.badge_key(null, %s)", (f"{HOST}/backup",)).fetchone()
    assert key is not None
    badge = db.execute("select label, state from vigil.badge_read(%s)", key).fetchone()
    assert badge == ("backup", "late")
