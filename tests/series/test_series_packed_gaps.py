"""A regular packed day (portable mode) stores two gaps between its points (the first, then
the step) instead of one per point, and every read still returns exactly the points written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.series import cases

Conn = psycopg.Connection[Any]
DAY = datetime(2026, 3, 9, tzinfo=UTC)
NOW = DAY + timedelta(days=2)


@pytest.mark.parametrize(
    ("gaps", "kept"),
    [
        ([5], [5]),
        ([5, 10], [5, 10]),
        ([10, 10, 10], [10, 10]),
        ([5, 10, 10, 10], [5, 10]),
        ([5, 10, 20, 10, 10], [5, 10, 20, 10, 10]),
        ([5, 10, 10, 20], [5, 10, 10, 20]),
    ],
)
def test_stored_gaps(conn: Conn, gaps: list[int], kept: list[int]) -> None:
    """Points `gaps` microseconds apart (the first from the day start): a regular day (every
    gap after the first equal) keeps two gaps, any other day all of them."""
    at = DAY
    points = []
    for i, gap in enumerate(gaps):
        at += timedelta(microseconds=gap)
        points.append((at, float(i)))
    sid = cases.insert_points(conn, "t", {}, points)
    pack(conn)
    row = conn.execute("select gaps from vigil.points_packed where series_id = %s", (sid,))
    assert row.fetchone() == (kept,)
    assert cases.raw_points(conn, sid) == points


def test_unpack_repeats_the_last_gap(conn: Conn) -> None:
    """Fewer gaps than values: the last gap repeats (any such row reads the same way)."""
    rows = conn.execute(
        "select at, value from vigil._unpack(%s, '{5, 10, 20, 10}', '1,2,3,4.5,-0')", (DAY,)
    ).fetchall()
    us = timedelta(microseconds=1)
    assert rows == [
        (DAY + 5 * us, 1.0),
        (DAY + 15 * us, 2.0),
        (DAY + 35 * us, 3.0),
        (DAY + 45 * us, 4.5),
        (DAY + 55 * us, -0.0),
    ]
    # A zero gap (two points at one time, stored before there was one point per series and
    # time) still reads back.
    zero = conn.execute("select at, value from vigil._unpack(%s, '{5, 0}', '1,2')", (DAY,))
    assert zero.fetchall() == [(DAY + 5 * us, 1.0), (DAY + 5 * us, 2.0)]


def pack(conn: Conn) -> None:
    conn.execute("select vigil.refresh_series_rollups(%s, '{}')", (NOW,))
    conn.execute(
        'select vigil.pack_series_points(%s, \'{"after": "1 hour", "hour_summary_from": 100}\')',
        (NOW,),
    )


def stored(conn: Conn, series_id: int) -> tuple[int, int]:
    """(points, gaps stored) of the series' packed day."""
    row = conn.execute(
        "select n, cardinality(gaps) from vigil.points_packed where series_id = %s", (series_id,)
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_regular_irregular_and_late_points_read_exactly(conn: Conn) -> None:
    start = DAY + timedelta(hours=3, seconds=7)
    regular = [(start + timedelta(seconds=10 * i), float(i % 7) / 4) for i in range(500)]
    jitter = [(at + timedelta(microseconds=(i * 7919) % 900), v) for i, (at, v) in
              enumerate(regular)]  # fmt: skip
    # Three points a microsecond apart at the end (the smallest gap), after two steps.
    end = jitter[-1][0] + timedelta(seconds=20)
    us = timedelta(microseconds=1)
    tail = [(end, 1.5), (end + us, 2.5), (end + 2 * us, 3.5)]
    irregular = jitter + tail
    single = [(DAY + timedelta(hours=23, microseconds=1), -3.25)]
    ids = {
        "regular": cases.insert_points(conn, "g", {"k": "regular"}, regular),
        "irregular": cases.insert_points(conn, "g", {"k": "irregular"}, irregular),
        "single": cases.insert_points(conn, "g", {"k": "single"}, single),
    }
    pack(conn)
    assert conn.execute("select count(*) from vigil.points").fetchone() == (0,)
    assert stored(conn, ids["regular"]) == (500, 2)
    assert stored(conn, ids["irregular"]) == (503, 503)
    assert stored(conn, ids["single"]) == (1, 1)

    def check(points: dict[str, list[tuple[datetime, float]]]) -> None:
        for key, pts in points.items():
            assert cases.raw_points(conn, ids[key]) == sorted(pts), key
        lo, hi = DAY, DAY + timedelta(days=1)
        for g in cases.GRANULARITIES:
            cases.assert_same(
                cases.averages(conn, "g", None, g, lo, hi),
                cases.reference(conn, "g", None, g, lo, hi),
            )

    check({"regular": regular, "irregular": irregular, "single": single})
    # Late points into the packed days: merged by the next pack, the encoding chosen anew; a
    # point sent again for a packed time is read beside the packed one until the next pack
    # replaces it.
    late = [(start + timedelta(seconds=15), 9.0), (regular[-1][0] + timedelta(seconds=10), 9.5)]
    cases.insert_points(conn, "g", {"k": "regular"}, late)
    cases.insert_points(conn, "g", {"k": "single"}, [(single[0][0], 4.0)])
    check({"regular": regular + late, "single": [*single, (single[0][0], 4.0)]})
    pack(conn)
    assert conn.execute("select count(*) from vigil.points").fetchone() == (0,)
    assert stored(conn, ids["regular"]) == (502, 502)  # no longer regular
    check({"regular": regular + late, "irregular": irregular,
           "single": [(single[0][0], 4.0)]})  # fmt: skip
